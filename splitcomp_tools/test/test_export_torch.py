"""export: the ONNX file matches PyTorch; every way of naming a model works; bad input leaves no file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from splitcomp_tools import export
from splitcomp_tools.model import export as export_library
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.export import ExportError, export_torch_module

MODEL_SOURCE = """
import torch
from torch import nn


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)  # over 1 KiB, so it goes to the sidecar when asked
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def build():
    torch.manual_seed(0)
    return Small()


def not_a_module():
    return 42
"""


@pytest.fixture()
def model_package(tmp_path, monkeypatch) -> str:
    """An importable module `h4_export_models` with a factory, as users point export at their own code."""
    (tmp_path / "h4_export_models.py").write_text(MODEL_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "h4_export_models", raising=False)
    return "h4_export_models"


def _onnx_run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _torch_run(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.eval()(torch.from_numpy(x)).numpy()


def _small(package: str) -> nn.Module:
    module = __import__(package).build()
    module.bn.running_mean.uniform_(-1, 1)  # non-trivial statistics, so eval-mode folding is really checked
    module.bn.running_var.uniform_(0.5, 2)
    return module


def test_export_matches_pytorch(model_package, tmp_path):
    module = _small(model_package)
    out = tmp_path / "small.onnx"
    diff = export_torch_module(module, torch.randn(1, 3, 16, 16), out)
    assert 0 <= diff < 1e-4
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_onnx_run(out, x), _torch_run(module, x), rtol=1e-4, atol=1e-5)
    model = onnx.load(str(out))
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["output"]
    assert model.opset_import[0].version == 17
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h4_export_models.py", "small.onnx"]


@pytest.mark.parametrize("dynamo", [False, True])
def test_dynamic_batch_with_both_exporters(model_package, tmp_path, dynamo):
    module = _small(model_package)
    out = tmp_path / "dynamic.onnx"
    export_torch_module(module, torch.randn(1, 3, 16, 16), out, dynamic_batch=True, dynamo=dynamo)
    x = np.random.default_rng(1).standard_normal((3, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_onnx_run(out, x), _torch_run(module, x), rtol=1e-4, atol=1e-5)


class _ViewsBatch(nn.Module):
    """Flattens with the batch size read from the input, as EfficientNet-Lite does (`x.view(bs, -1)`)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 4)
        return self.fc(features.view(x.size(0), -1))


@pytest.mark.parametrize("dynamo", [False, True])
def test_dynamic_batch_export_reads_the_batch_from_the_reshaped_tensor(tmp_path, dynamo):
    torch.manual_seed(0)
    module = _ViewsBatch()
    out = tmp_path / "view.onnx"
    export_torch_module(module, torch.randn(1, 3, 16, 16), out, dynamic_batch=True, dynamo=dynamo)
    model = onnx.load(str(out))
    g = gr.build_graph(model)
    assert gr.input_shape_reads(model, g) == []
    assert not any(n.op_type == "Shape" and n.input[0] == "input" for n in model.graph.node)
    cuts = [c[0] for c in gr.find_cuts(g)]
    conv = next(n.output[0] for n in g.nodes if n.op_type == "Conv")
    assert conv in cuts and len(cuts) >= 4
    x = np.random.default_rng(1).standard_normal((3, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_onnx_run(out, x), _torch_run(module, x), rtol=1e-4, atol=1e-5)


def test_dynamo_defaults_to_opset_18_and_refuses_older_ones(model_package, tmp_path, capsys):
    module = _small(model_package)
    out = tmp_path / "dynamo.onnx"
    export_torch_module(module, torch.randn(1, 3, 16, 16), out, dynamo=True)
    assert onnx.load(str(out)).opset_import[0].version == 18
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dynamo.onnx", "h4_export_models.py"]  # weights inline
    refused = tmp_path / "old.onnx"
    argv = [f"{model_package}:build", "--input-shape", "1,3,16,16", "--exporter", "dynamo", "--opset", "17"]
    assert export.main([*argv, "--out", str(refused)]) == 2
    err = capsys.readouterr().err
    expected = (
        "error: the dynamo exporter writes opset 18 or newer; use --opset 18, or --exporter torchscript for opset 17"
    )
    assert err.strip() == expected and not refused.exists()


def test_a_file_at_another_opset_than_asked_is_refused(model_package, tmp_path, monkeypatch):
    real_export = torch.onnx.export

    def export_at_18(*args, **kwargs):
        return real_export(*args, **{**kwargs, "opset_version": 18})

    monkeypatch.setattr(torch.onnx, "export", export_at_18)
    out = tmp_path / "wrong.onnx"
    with pytest.raises(ExportError, match="wrote opset 18 although opset 19 was asked for"):
        export_torch_module(_small(model_package), torch.randn(1, 3, 16, 16), out, opset=19)
    assert not out.exists()


def test_large_models_keep_weights_in_one_sidecar(model_package, tmp_path, monkeypatch):
    monkeypatch.setattr(export_library, "EXTERNAL_DATA_THRESHOLD_BYTES", 1)
    module = _small(model_package)
    out = tmp_path / "big.onnx"
    export_torch_module(module, torch.randn(1, 3, 16, 16), out)
    sidecar = tmp_path / "big.onnx.data"
    assert sidecar.stat().st_size >= 4 * module.conv.weight.numel()
    structure = onnx.load(str(out), load_external_data=False)
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in structure.graph.initializer)
    x = np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_onnx_run(out, x), _torch_run(module, x), rtol=1e-4, atol=1e-5)


class _Noisy(nn.Module):
    """Random even in eval mode: ONNX Runtime draws different numbers, so the check must fail."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


def test_mismatch_with_pytorch_is_refused_and_leaves_nothing(tmp_path):
    out = tmp_path / "noisy.onnx"
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_torch_module(_Noisy(), torch.randn(1, 3, 8, 8), out)
    assert list(tmp_path.iterdir()) == []


def test_cli_factory_with_state_dict(model_package, tmp_path, capsys):
    module = _small(model_package)
    with torch.no_grad():
        module.fc.bias.fill_(3.0)
    weights = tmp_path / "weights.pt"
    torch.save(module.state_dict(), weights)
    out = tmp_path / "factory.onnx"
    argv = [f"{model_package}:build", "--state-dict", str(weights), "--input-shape", "1,3,16,16", "--out", str(out)]
    assert export.main(argv) == 0
    assert "max abs difference" in capsys.readouterr().out
    x = np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_onnx_run(out, x), _torch_run(module, x), rtol=1e-4, atol=1e-5)


def test_cli_torchscript_file(model_package, tmp_path):
    module = _small(model_package).eval()
    scripted = tmp_path / "scripted.pt"
    torch.jit.trace(module, torch.randn(1, 3, 16, 16)).save(str(scripted))
    out = tmp_path / "scripted.onnx"
    assert export.main([str(scripted), "--input-shape", "1,3,16,16", "--out", str(out), "--opset", "18"]) == 0
    x = np.random.default_rng(4).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_onnx_run(out, x), _torch_run(module, x), rtol=1e-4, atol=1e-5)
    assert onnx.load(str(out)).opset_import[0].version == 18


def test_cli_pickled_model_needs_trust(model_package, tmp_path, capsys):
    module = _small(model_package)
    pickled = tmp_path / "full.pt"
    torch.save(module, pickled)
    out = tmp_path / "pickled.onnx"
    argv = [str(pickled), "--input-shape", "1,3,16,16", "--out", str(out)]
    assert export.main(argv) == 2
    assert "--trust-pickle" in capsys.readouterr().err and not out.exists()
    assert export.main([*argv, "--trust-pickle"]) == 0
    x = np.random.default_rng(5).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_onnx_run(out, x), _torch_run(module, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{pkg}:build", "--input-shape", "1,3,16,16", "--opset", "16"], "--opset: must be from 17 to"),
        (["{pkg}:build", "--input-shape", "1,3,x"], "comma-separated integers"),
        (["{pkg}:build", "--input-shape", "1,0,16,16"], "must be positive"),
        (["{pkg}:missing", "--input-shape", "1,3,16,16"], "no callable 'missing'"),
        (["{pkg}:not_a_module", "--input-shape", "1,3,16,16"], "not a torch.nn.Module"),
        (["no_such_package_h4:build", "--input-shape", "1,3,16,16"], "cannot import 'no_such_package_h4'"),
        (["{tmp}/nothing.pt", "--input-shape", "1,3,16,16"], "no such file"),
        (["torchvision:resnet18", "--input-shape", "1,3,16,16"], "need the torchvision package"),
        (["{pkg}:build", "--state-dict", "{tmp}/none.pt", "--input-shape", "1,3,16,16"], "state_dict file not found"),
    ],
)
def test_cli_bad_input(model_package, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # never download or build real torchvision models here
    out = tmp_path / "out.onnx"
    argv = [a.format(pkg=model_package, tmp=tmp_path) for a in argv]
    assert export.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not out.exists()


def test_state_dict_that_does_not_fit(model_package, tmp_path, capsys):
    weights = tmp_path / "other.pt"
    torch.save(nn.Linear(2, 2).state_dict(), weights)
    argv = [
        f"{model_package}:build",
        "--state-dict",
        str(weights),
        "--input-shape",
        "1,3,16,16",
        "--out",
        str(tmp_path / "x.onnx"),
    ]
    assert export.main(argv) == 2
    assert "does not fit the model" in capsys.readouterr().err


def test_help_lists_the_sources(capsys):
    with pytest.raises(SystemExit) as stop:
        export.main(["--help"])
    assert stop.value.code == 0
    help_text = capsys.readouterr().out
    assert "--trust-pickle" in help_text and "package.module:factory" in help_text
