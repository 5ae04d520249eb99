"""Conformance: every architecture family goes through export, analyze, split, calibrate and classify.

One tiny network per family (tests/support/conformance_models.py, random weights), exported by
both exporters (TorchScript at opset 17, dynamo at opset 18), with a static and a dynamic batch.
Each export is analysed, split at an early, a middle and a late cut, and every bundle must record
the shapes its head really computes (only a dynamic batch may stay -1), calibrate on generated
frames, and classify an image as the unsplit model does.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from conformance_models import CLASSES, EXPORTERS, FAMILIES, export_family

from splitcomp_core.bundle import DYNAMIC, load_bundle
from splitcomp_core.codec import packed_size_for
from splitcomp_core.head import HeadPipeline
from splitcomp_core.postprocess import softmax
from splitcomp_core.preprocess import Preprocessor
from splitcomp_core.runtime import InferenceSession
from splitcomp_core.tail import TailPipeline, TailResult
from splitcomp_tools import analyze as analyze_tool
from splitcomp_tools import calibrate, classify
from splitcomp_tools import split as split_tool
from splitcomp_tools.frames.generator import GeneratorSource
from splitcomp_tools.model import analyze, split

pytestmark = [
    pytest.mark.slow,  # the conformance suite: `make test-fast` leaves it out
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),  # the computed padding, as in EfficientNet
]
COMBINATIONS = [(f, e, d) for f in FAMILIES for e in EXPORTERS for d in (False, True)]
CALIBRATION_FRAMES = 6


@pytest.fixture(scope="session")
def conformance_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance")


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated camera frame as a PNG file, what `classify` reads."""
    path = tmp_path_factory.mktemp("photo") / "frame.png"
    cv2.imwrite(str(path), cv2.cvtColor(GeneratorSource(96, 72, seed=5).read(), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "labels.json"
    path.write_text(json.dumps([f"class {i}" for i in range(CLASSES)]))
    return path


def _declared(part: Path) -> dict[str, list[int]]:
    """Inputs and outputs of an ONNX file as the manifest writes shapes: a symbolic dim is -1."""
    graph = onnx.load(str(part), load_external_data=False).graph
    return {
        v.name: [d.dim_value if d.HasField("dim_value") else DYNAMIC for d in v.type.tensor_type.shape.dim]
        for v in (*graph.input, *graph.output)
    }


def _three_cuts(cuts: list[dict]) -> list[dict]:
    """An early, a middle and a late single-tensor cut."""
    singles = [c for c in cuts if len(c["tensors"]) == 1]
    assert len(singles) >= 3, [c["tensors"] for c in cuts]
    return [singles[0], singles[len(singles) // 2], singles[-1]]


@pytest.mark.parametrize(
    ("family", "exporter", "dynamic"),
    COMBINATIONS,
    ids=[f"{f}-{e}-{'dynamic' if d else 'static'}" for f, e, d in COMBINATIONS],
)
def test_family_exports_splits_calibrates_and_classifies(
    family, exporter, dynamic, conformance_root, photo, labels, tmp_path, capsys
):
    model = export_family(family, exporter, dynamic, conformance_root)  # compared with PyTorch by export
    structure = onnx.load(str(model.path), load_external_data=False)
    assert [o.version for o in structure.opset_import if o.domain in ("", "ai.onnx")] == [EXPORTERS[exporter]]
    onnx.checker.check_model(structure, full_check=True)
    batch_dim = structure.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.HasField("dim_value") != dynamic

    capsys.readouterr()
    assert analyze_tool.main([str(model.path), "--json"]) == 0
    captured = capsys.readouterr()
    assert "note:" not in captured.err  # no cut is bypassed by a read of the input's size
    full = InferenceSession(model.path, ["cpu"])
    for k, cut in enumerate(_three_cuts(json.loads(captured.out))):
        (name,), (measured,) = cut["tensors"], cut["shapes"]
        out = tmp_path / f"bundle{k}"
        argv = [str(model.path), "--at", name, "--out", str(out), "--samples", "2", "--labels", str(labels)]
        assert split_tool.main(argv) == 0
        bundle = load_bundle(out)
        (spec,) = bundle.manifest.cut
        batch = DYNAMIC if dynamic else 1
        assert spec.shape == [batch, *measured[1:]], f"{name}: manifest {spec.shape}, analyze {measured}"
        assert all(d > 0 for d in spec.shape[1:])
        output = bundle.manifest.output
        assert output.name == model.outputs[0] and output.shape == [batch, CLASSES]
        assert _declared(bundle.head_path)[name] == spec.shape == _declared(bundle.tail_path)[name]
        assert _declared(bundle.tail_path)[output.name] == output.shape

        # the video rows are not the family's business (test_calibrate_tool encodes them); they cost 80 % here
        argv = [str(out), "--images", "generator", "--count", str(CALIBRATION_FRAMES), "--video-codecs", "none"]
        argv.append("--quiet")
        assert calibrate.main(argv) == 0
        quantization = load_bundle(out).manifest.quantization
        assert quantization.mode == "calibrated" and list(quantization.calibrated) == [name]
        assert quantization.calibrated[name]["frames"] == CALIBRATION_FRAMES

        x = Preprocessor(bundle.manifest.input)(cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB))
        expected = softmax(full.run({bundle.manifest.input.name: x})[output.name][0])
        capsys.readouterr()
        assert classify.main([str(out), str(photo), "--json", "--bits", "32", "--top-k", "3"]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        best = row["results"][0]
        assert best["class_id"] == int(np.argmax(expected))
        assert best["score"] == pytest.approx(float(expected.max()), abs=1e-4)
        assert classify.main([str(out), str(photo), "--json"]) == 0  # the calibrated 4 bits the nodes send
        (row,) = json.loads(capsys.readouterr().out)
        assert row["feature_bytes"] == packed_size_for(int(np.prod(spec.shape[1:])), 4)
        assert [r["label"] for r in row["results"]] == [f"class {r['class_id']}" for r in row["results"]]


def test_efficientnet_lite0_with_a_dynamic_batch_keeps_its_cuts_and_concrete_shapes(tmp_path):
    """The real architecture (random weights): 56 cuts, not 1, and its 80x14x14 cut recorded as such."""
    lite = pytest.importorskip(
        "efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch (requirements/tools.txt) is not installed"
    )
    torch = pytest.importorskip("torch")
    from splitcomp_tools.model.export import export_torch_module

    torch.manual_seed(0)
    path = tmp_path / "lite0.onnx"
    export_torch_module(
        lite.EfficientNet.from_name("efficientnet-lite0").eval(), torch.randn(1, 3, 224, 224), path, dynamic_batch=True
    )
    analysis = analyze.analyze_model(path)
    assert len(analysis.cuts) == 56 and not analysis.notes
    bundle, _ = split.split_model(path, ["/_blocks.6/Add_output_0"], tmp_path / "bundle", random_samples=1)
    assert bundle.manifest.cut[0].shape == [DYNAMIC, 80, 14, 14]


DYNAMIC_BATCH_CASES = [("efficientnet", "dynamo"), ("shuffle", "dynamo"), ("vit", "torchscript")]


@pytest.mark.parametrize(("family", "exporter"), DYNAMIC_BATCH_CASES, ids=[f"{f}-{e}" for f, e in DYNAMIC_BATCH_CASES])
def test_static_batch_split_with_dynamic_batch_answers_a_batch_as_each_frame(
    family, exporter, conformance_root, tmp_path
):
    """A batch-1 export split with --dynamic-batch: -1 batch in manifest and parts, 4 frames in one run as 4 alone.

    The families whose batch-1 exports hold the batch as constants: a flatten's [1, -1], a channel
    shuffle's [1, 2, C/2, H, W], a cls token concatenated at batch 1.
    """
    model = export_family(family, exporter, False, conformance_root)
    singles = [c.tensors for c in analyze.analyze_model(model.path).cuts if len(c.tensors) == 1]
    cut = singles[len(singles) // 2]
    out = tmp_path / "bundle"
    assert split_tool.main([str(model.path), "--at", ",".join(cut), "--out", str(out), "--dynamic-batch"]) == 0
    bundle = load_bundle(out)
    assert bundle.manifest.input.shape[0] == DYNAMIC and bundle.manifest.output.shape[0] == DYNAMIC
    assert all(t.shape[0] == DYNAMIC and all(d > 0 for d in t.shape[1:]) for t in bundle.manifest.cut)
    declared = {**_declared(bundle.head_path), **_declared(bundle.tail_path)}
    assert all(declared[t.name] == t.shape for t in bundle.manifest.cut)
    head, tail = HeadPipeline(bundle, providers=["cpu"]), TailPipeline(bundle, ["cpu"], top_k=3)
    assert tail.batches
    frames = [GeneratorSource(64, 48, seed=s).read() for s in range(4)]
    decoded = [tail.decode(bundle.manifest.model_id, head(f).tensors) for f in frames]
    together = tail.answer_batch(decoded)
    for alone, batched in zip((tail.answer(d) for d in decoded), together):
        assert isinstance(batched, TailResult)
        assert [r[0] for r in batched.results] == [r[0] for r in alone.results]
        assert [r[2] for r in batched.results] == pytest.approx([r[2] for r in alone.results], abs=1e-4)
