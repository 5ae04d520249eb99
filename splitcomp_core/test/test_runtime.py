"""ONNX Runtime wrapper: real CPU sessions on tiny models, provider resolution, and clear setup errors."""

import logging

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper
from tiny_models import onnx_model, save

from splitcomp_core.errors import RuntimeSetupError
from splitcomp_core.runtime import CPU, InferenceSession, provider_name, resolve_providers

CUDA, TRT = "CUDAExecutionProvider", "TensorrtExecutionProvider"
W = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]], dtype=np.float32)
B = np.array([0.5, -1.0], dtype=np.float32)


@pytest.fixture(scope="module")
def dense_relu(tmp_path_factory):
    """y = relu(x @ W + b), x: [batch, 3] with a symbolic batch size."""
    model = onnx_model(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["pre"]),
            helper.make_node("Relu", ["pre"], ["y"]),
        ],
        {"x": ["batch", 3]},
        {"y": ["batch", 2], "pre": ["batch", 2]},
        {"W": W, "B": B},
        name="dense",
    )
    path = save(model, tmp_path_factory.mktemp("models") / "dense.onnx")
    return path


def _unavailable_accelerator() -> str:
    available = ort.get_available_providers()
    return next(n for n in ("cuda", "tensorrt", "rocm", "migraphx") if provider_name(n) not in available)


def test_cpu_run_matches_numpy(dense_relu):
    session = InferenceSession(dense_relu, providers=("cpu",), intra_op_threads=1)
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 4.0], [0.1, -0.2, 0.3], [2.0, 2.0, -2.0]], dtype=np.float32)
    out = session.run({"x": x})
    pre = x.astype(np.float64) @ W + B
    assert set(out) == {"y", "pre"}
    np.testing.assert_allclose(out["pre"], pre, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["y"], np.maximum(pre, 0.0), rtol=1e-6, atol=1e-6)
    assert out["y"].min() == 0.0 and out["y"].max() > 0.0
    assert session.input_names == ["x"] and session.output_names == ["y", "pre"]
    assert session.provider == CPU and session.providers[0] == CPU


def test_logs_the_provider_that_actually_runs(dense_relu, caplog):
    missing = _unavailable_accelerator()
    with caplog.at_level(logging.INFO, logger="splitcomp"):
        session = InferenceSession(dense_relu, providers=(missing, "cpu"), warmup_runs=0)
    assert session.provider == CPU
    lines = [r.getMessage() for r in caplog.records if r.name == "splitcomp"]
    assert len(lines) == 1
    assert "dense.onnx runs on CPUExecutionProvider" in lines[0] and missing in lines[0]


def test_gpu_only_without_cpu_fallback_is_refused(dense_relu):
    missing = _unavailable_accelerator()
    with pytest.raises(RuntimeSetupError, match="onnxruntime-gpu") as info:
        InferenceSession(dense_relu, providers=(missing,), allow_cpu_fallback=False)
    assert provider_name(missing) in str(info.value)


def test_gpu_first_with_fallback_runs_on_cpu(dense_relu):
    session = InferenceSession(dense_relu, providers=(_unavailable_accelerator(),), warmup_runs=1)
    assert session.provider == CPU
    assert session.run({"x": np.ones((1, 3), np.float32)})["y"].shape == (1, 2)


def test_explicit_cpu_is_fine_without_fallback(dense_relu):
    assert InferenceSession(dense_relu, providers=("CPUExecutionProvider",), allow_cpu_fallback=False).provider == CPU


def test_provider_resolution_keeps_requested_order():
    available = [CPU, CUDA, TRT]
    assert resolve_providers(["tensorrt", "cuda", "cpu"], available) == [TRT, CUDA, CPU]
    assert resolve_providers(["cuda", "TensorrtExecutionProvider"], available) == [CUDA, TRT, CPU]
    assert resolve_providers(["TRT", "cuda", "trt"], available, allow_cpu_fallback=False) == [TRT, CUDA]
    assert resolve_providers(["tensorrt", "cuda"], [CUDA, CPU]) == [CUDA, CPU]
    assert resolve_providers(["openvino", "cuda"], [CPU]) == [CPU]
    assert resolve_providers(["cuda"], [CUDA, CPU], allow_cpu_fallback=False) == [CUDA]
    assert resolve_providers("tensorrt, cuda,", available) == [TRT, CUDA, CPU]


def test_provider_resolution_errors():
    with pytest.raises(RuntimeSetupError, match="none of the requested execution providers"):
        resolve_providers(["tensorrt", "cuda"], [CPU], allow_cpu_fallback=False)
    with pytest.raises(RuntimeSetupError, match=r"unknown execution provider 'gpu'.*cuda"):
        resolve_providers(["gpu"], [CPU])
    with pytest.raises(RuntimeSetupError, match="no execution provider requested"):
        resolve_providers([], [CPU])
    assert provider_name(" OpenVINO ") == "OpenVINOExecutionProvider"
    assert provider_name("SomeVendorExecutionProvider") == "SomeVendorExecutionProvider"


def test_missing_and_invalid_model_files_name_the_file(tmp_path):
    with pytest.raises(RuntimeSetupError, match="model file not found") as info:
        InferenceSession(tmp_path / "absent.onnx")
    assert str(tmp_path / "absent.onnx") in str(info.value)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(RuntimeSetupError, match="cannot load this model") as info:
        InferenceSession(garbage, providers=("cpu",))
    assert str(info.value).startswith(str(garbage))


def test_bad_thread_count_is_refused(dense_relu):
    with pytest.raises(RuntimeSetupError, match="intra_op_threads"):
        InferenceSession(dense_relu, intra_op_threads=-1)


def test_warmup_failure_says_how_to_avoid_it(tmp_path):
    """A Reshape to a fixed size fails on the warm-up's batch of 1: the error says to use warmup_runs=0."""
    model = onnx_model(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        {"x": ["n", 4]},
        {"y": [2, 4]},
        {"shape": np.array([2, 4], np.int64)},
        name="reshape",
        check=False,
    )
    path = save(model, tmp_path / "reshape.onnx")
    with pytest.raises(RuntimeSetupError, match="warmup_runs=0"):
        InferenceSession(path, providers=("cpu",))
    session = InferenceSession(path, providers=("cpu",), warmup_runs=0)
    np.testing.assert_array_equal(
        session.run({"x": np.arange(8, dtype=np.float32).reshape(2, 4)})["y"], np.arange(8).reshape(2, 4)
    )


def test_run_errors_are_inference_errors(tmp_path):
    """A bad feed must surface as a SplitcompError, so a node can count it and keep serving."""
    from splitcomp_core.errors import InferenceError, SplitcompError

    path = tmp_path / "relu.onnx"
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=8), path)
    session = InferenceSession(path, ["cpu"], warmup_runs=0)
    with pytest.raises(InferenceError, match=r"relu\.onnx") as info:
        session.run({"x": np.zeros((2, 5), np.float32)})
    assert isinstance(info.value, SplitcompError)
