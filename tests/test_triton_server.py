"""TritonSession against a real tritonserver (the pytriton wheel's, python backend running ONNX Runtime).

The repository is written here by hand until `triton_repo` exists; where the server cannot start, the
tests skip and say why.
"""

import time

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper
from tiny_models import TINY_FC_W, onnx_model, save
from triton_server import TritonServer, find_server

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed (requirements/python.txt)")

from splitcomp_core.errors import BackendUnavailable
from splitcomp_core.triton_session import TritonSession

CONFIG = """name: "tail"
backend: "python"
max_batch_size: 8
input [{ name: "feat" data_type: TYPE_FP32 dims: [4, 16, 16] }]
output [{ name: "logits" data_type: TYPE_FP32 dims: [5] }]
dynamic_batching { max_queue_delay_microseconds: 20000 }
instance_group [{ kind: KIND_CPU count: 1 }]
"""
MODEL_PY = """import os, sys
sys.path[:0] = [p for p in os.environ.get("SPLITCOMP_TRITON_SITE_PACKAGES", "").split(os.pathsep) if p]
import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb


class TritonPythonModel:
    def initialize(self, args):
        path = os.path.join(args["model_repository"], args["model_version"], "tail.onnx")
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])

    def execute(self, requests):
        rows = [pb.get_input_tensor_by_name(r, "feat").as_numpy() for r in requests]
        scores = self.session.run(["logits"], {"feat": np.concatenate(rows)})[0]
        answers, start = [], 0
        for row in rows:
            part = np.ascontiguousarray(scores[start : start + len(row)])
            answers.append(pb.InferenceResponse(output_tensors=[pb.Tensor("logits", part)]))
            start += len(row)
        return answers
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    info, why = find_server()
    if info is None:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("triton")
    version = work / "repo" / "tail" / "1"
    version.mkdir(parents=True)
    nodes = [
        helper.make_node("GlobalAveragePool", ["feat"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["logits"]),
    ]
    save(onnx_model(nodes, {"feat": ["N", 4, 16, 16]}, {"logits": ["N", 5]}, {"fc": TINY_FC_W}), version / "tail.onnx")
    (version / "model.py").write_text(MODEL_PY)
    (version.parent / "config.pbtxt").write_text(CONFIG)
    triton = TritonServer(info, work / "repo", work)
    try:
        triton.start()
    except RuntimeError as exc:
        pytest.skip(f"tritonserver did not start: {exc}")
    yield triton
    triton.stop()


def frames(n):
    return np.random.default_rng(3).random((n, 4, 16, 16), dtype=np.float32)


def test_answers_equal_onnx_runtime_and_overlapping_requests_are_batched(server):
    session = TritonSession(server.url, "tail", timeout_s=5.0)
    assert session.ready()
    x = frames(8)
    got = session.run({"feat": x})["logits"]
    want = ort.InferenceSession(str(server.repo / "tail/1/tail.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"feat": x}
    )[0]
    assert got.shape == (8, 5)
    np.testing.assert_allclose(got, want, atol=1e-4)
    import tritonclient.grpc as grpcclient

    stats = grpcclient.InferenceServerClient(server.url).get_inference_statistics("tail").model_stats[0]
    assert stats.execution_count < stats.inference_count


def test_an_unknown_model_is_not_ready_and_a_wrong_shape_is_refused(server):
    with pytest.raises(BackendUnavailable) as caught:
        TritonSession(server.url, "nope", timeout_s=5.0).run({"feat": frames(1)})
    assert caught.value.reason == "triton_not_ready"
    with pytest.raises(BackendUnavailable) as caught:
        TritonSession(server.url, "tail", timeout_s=5.0).run({"feat": frames(1)[:, :3]})
    assert caught.value.reason == "triton_refused"


def test_a_stopped_server_is_down_quickly_and_a_restarted_one_answers_the_same_session(server):
    session = TritonSession(server.url, "tail", timeout_s=1.0)
    assert session.run({"feat": frames(2)})["logits"].shape == (2, 5)
    server.stop()
    start = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        session.run({"feat": frames(2)})
    assert caught.value.reason == "triton_down"
    assert time.monotonic() - start < 1.0
    server.start()
    assert session.ready()
    assert session.run({"feat": frames(2)})["logits"].shape == (2, 5)
