"""train_shapes: refuses bad settings cleanly (no training here), and lists the shipped model's cuts."""

from pathlib import Path

import pytest

from splitcomp_tools.shapes.train import stage_outputs
from splitcomp_tools.train_shapes import main

SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "shapes" / "model.onnx"


def test_existing_output_is_kept_without_overwrite(tmp_path, capsys):
    out = tmp_path / "shapes"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"previous")
    assert main(["--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (out / "model.onnx").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes"], "no temp directory left behind"


@pytest.mark.parametrize("option", ["--epochs", "--steps-per-epoch", "--batch-size", "--threads", "--lr"])
def test_non_positive_settings_are_refused(tmp_path, capsys, option):
    assert main(["--out", str(tmp_path / "shapes"), option, "0"]) == 2
    assert f"{option}: must be" in capsys.readouterr().err
    assert not (tmp_path / "shapes").exists()


def test_stage_outputs_of_the_shipped_model_are_the_stem_and_stage_ends():
    cuts = stage_outputs(SHIPPED_MODEL)
    names = [c["tensor"] for c in cuts]
    assert names == [
        "/stem/pool/MaxPool_output_0",
        "/stage1/block1/relu/Relu_output_0",
        "/stage2/block1/relu/Relu_output_0",
        "/stage3/block1/relu/Relu_output_0",
        "/stage4/block1/relu/Relu_output_0",
    ]
    dims = [c["shape"][1:] for c in cuts]
    assert dims == [[16, 32, 32], [16, 32, 32], [32, 16, 16], [96, 8, 8], [192, 4, 4]]
    assert all(isinstance(c["shape"][0], str) for c in cuts), "batch dimension stays symbolic"
