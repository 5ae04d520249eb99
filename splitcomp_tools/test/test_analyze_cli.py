"""analyze: cut listing, sizes, FLOPs shares, module names, external-data models and bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper
from tiny_models import onnx_model

from splitcomp_tools import analyze
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.analyze import analyze_model
from splitcomp_tools.model.costs import module_name, node_flops


def _intermediate_shapes(path: Path, names: list[str], feeds: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Shapes of intermediate tensors measured by running the model, independently of analyze."""
    model = onnx.load(str(path))
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return {n: v.shape for n, v in zip(names, session.run(names, feeds))}


def test_json_lists_every_cut_with_true_shapes_and_sizes(resnet_model, capsys):
    assert analyze.main([str(resnet_model.path), "--json"]) == 0
    cuts = json.loads(capsys.readouterr().out)
    assert isinstance(cuts, list) and cuts
    names = [c["tensors"][0] for c in cuts]
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    measured = _intermediate_shapes(resnet_model.path, names, {"input": x})
    for cut in cuts:
        (shape,) = cut["shapes"]
        assert tuple(shape) == measured[cut["tensors"][0]]
        n = math.prod(shape)
        assert cut["fp32_bytes"] == 4 * n
        assert cut["bytes_4bit"] == math.ceil(n * 4 / 8)
        assert cut["bytes_2bit"] == math.ceil(n * 2 / 8)
        assert cut["bytes_8bit"] == n
        assert 0.0 < cut["head_flops_share"] <= 1.0
    shares = [c["head_flops_share"] for c in cuts]
    assert shares == sorted(shares)
    params = [c["head_params_share"] for c in cuts]
    assert params == sorted(params) and params[0] < 0.2
    first_add = next(c for c in cuts if c["tensors"][0].startswith("/layer1/Add"))
    assert first_add["modules"] == ["layer1"]


def test_conv_flops_match_the_textbook_formula(mobilenet_model):
    """Whole-model FLOPs equal a hand count over the module's layers (2 per multiply-add)."""
    result = analyze_model(mobilenet_model.path)
    module = mobilenet_model.module
    expected_convs = 0
    size = 32
    for m in module.modules():
        if isinstance(m, __import__("torch").nn.Conv2d):
            size = (size + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
            outputs = m.out_channels * size * size
            expected_convs += 2 * outputs * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
    linear = module.classifier
    expected_fc = 2 * linear.in_features * linear.out_features
    # everything else (bias adds, activations, residual adds, pooling) counts one per output element
    assert expected_convs + expected_fc < result.total_flops < 1.2 * (expected_convs + expected_fc)


def test_node_flops_formulas():
    types = {
        "x": gr.TensorType("float32", (1, 4, 8, 8)),
        "w": gr.TensorType("float32", (6, 2, 3, 3)),
        "y": gr.TensorType("float32", (1, 6, 8, 8)),
        "a": gr.TensorType("float32", (2, 5, 7)),
        "b": gr.TensorType("float32", (7, 3)),
        "ab": gr.TensorType("float32", (2, 5, 3)),
        "g": gr.TensorType("float32", (7, 5)),
        "gw": gr.TensorType("float32", (7, 4)),
        "go": gr.TensorType("float32", (5, 4)),
    }
    conv = helper.make_node("Conv", ["x", "w"], ["y"], group=2)
    assert node_flops(conv, types) == 2 * (6 * 8 * 8) * (2 * 3 * 3)
    assert node_flops(helper.make_node("MatMul", ["a", "b"], ["ab"]), types) == 2 * 2 * 5 * 3 * 7
    gemm = helper.make_node("Gemm", ["g", "gw"], ["go"], transA=1)
    assert node_flops(gemm, types) == 2 * 5 * 4 * 7
    assert node_flops(helper.make_node("Relu", ["y"], ["y2"]), types | {"y2": types["y"]}) == 6 * 8 * 8


def test_module_names_from_both_exporters():
    torchscript = helper.make_node("Relu", ["a"], ["b"], name="/layer1/layer1.0/conv1/Conv")
    assert module_name(torchscript) == "layer1.0.conv1"
    assert module_name(helper.make_node("Relu", ["a"], ["b"], name="/Relu")) is None
    dynamo = helper.make_node("Relu", ["a"], ["b"], name="node_relu_1")
    dynamo.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'layer1', 'layer1.0', 'relu_1']")
    assert module_name(dynamo) == "layer1.0"


def test_human_table_and_plot(parallel_model, tmp_path, capsys):
    plot = tmp_path / "cuts.png"
    assert analyze.main([str(parallel_model.path), "--max-tensors", "2", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "/left/left.0/Conv_output_0" in out and "/right/right.0/Conv_output_0" in out
    assert "head FLOPs" in out.splitlines()[1]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cuts.png"]


def test_model_with_no_single_cut_suggests_more_tensors(tmp_path, capsys):
    """x feeds both a long branch and the final Add: nothing but the output separates them."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Neg", ["a"], ["b"]),
        helper.make_node("Add", ["x", "b"], ["y"]),
    ]
    path = tmp_path / "skip.onnx"
    onnx.save(onnx_model(nodes, {"x": [1, 2]}, {"y": [1, 2]}, name="skip", ir_version=None, check=False), str(path))
    assert analyze.main([str(path)]) == 0
    assert "--max-tensors" in capsys.readouterr().out


def test_legacy_graph_with_dynamic_batch_and_input_shape(legacy_model, tmp_path, capsys):
    model = onnx.load(str(legacy_model.path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    path = tmp_path / "dynamic.onnx"
    onnx.save(model, str(path))
    assert analyze.main([str(path)]) == 2
    assert "dynamic dimension 2" in capsys.readouterr().err
    assert analyze.main([str(path), "--json", "--input-shape", "images:0=2,3,8,8"]) == 0
    cuts = json.loads(capsys.readouterr().out)
    assert [c["tensors"] for c in cuts] == [
        ["block.1/conv:0"],
        ["block.1/relu:0"],
        ["block.1/drop:0"],
        ["block.1/id:0"],
        ["block.2/mul:0"],
    ]
    assert all(c["shapes"] == [[2, 4, 8, 8]] for c in cuts)


@pytest.fixture()
def external_data_model(resnet_model, tmp_path) -> Path:
    """The ResNet with every weight in a sidecar file, as exporters store models over 2 GB."""
    model = onnx.load(str(resnet_model.path))
    path = tmp_path / "big" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (path.parent / "weights.bin").stat().st_size > path.stat().st_size
    return path


def test_external_data_model_is_analysed_without_loading_weights(external_data_model, resnet_model, monkeypatch):
    expected = analyze_model(resnet_model.path)

    def refuse(*args, **kwargs):
        raise AssertionError("analyze loaded the weights into memory")

    monkeypatch.setattr(onnx, "load_external_data_for_model", refuse)
    monkeypatch.setattr(onnx.external_data_helper, "load_external_data_for_model", refuse)
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", refuse)
    result = analyze_model(external_data_model)
    assert [c.tensors for c in result.cuts] == [c.tensors for c in expected.cuts]
    assert [c.shapes for c in result.cuts] == [c.shapes for c in expected.cuts]
    assert result.total_params == expected.total_params


def test_shapes_fall_back_to_one_onnx_runtime_run(external_data_model, resnet_model, monkeypatch):
    """When shape inference gives nothing, shapes come from running the model (external data found in place)."""
    expected = analyze_model(resnet_model.path)

    def no_inference(*args, **kwargs):
        raise onnx.shape_inference.InferenceError("forced")

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes_path", no_inference)
    result = analyze_model(external_data_model)
    assert [c.shapes for c in result.cuts] == [c.shapes for c in expected.cuts]
    assert result.total_flops == expected.total_flops


def test_missing_external_data_is_reported(external_data_model, capsys):
    (external_data_model.parent / "weights.bin").unlink()
    assert analyze.main([str(external_data_model)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "weights.bin" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), (b"this is not a model\n", "not an ONNX model"), (b"", "not a valid ONNX model")],
)
def test_bad_model_files(tmp_path, capsys, content, message):
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    assert analyze.main([str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and message in captured.err and "Traceback" not in captured.err


def test_bad_options(legacy_model, capsys):
    assert analyze.main([str(legacy_model.path), "--max-tensors", "4"]) == 2
    assert "--max-tensors: must be from 1 to 3" in capsys.readouterr().err
    assert analyze.main([str(legacy_model.path), "--input-shape", "1,3,x"]) == 2
    assert "comma-separated integers" in capsys.readouterr().err
    assert analyze.main([str(legacy_model.path), "--input-shape", "other=1,3,8,8"]) == 2
    assert "images:0" in capsys.readouterr().err


def test_help_runs_as_a_module():
    here = Path(__file__).resolve()
    package_roots = [str(here.parents[1]), str(here.parents[2] / "splitcomp_core")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*package_roots, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "splitcomp_tools.analyze", "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0
    assert "--max-tensors" in result.stdout and "--json" in result.stdout
