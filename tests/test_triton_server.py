"""TritonSession against a real tritonserver (the pytriton wheel's), over a repository written by `triton_repo`.

The python platform runs ONNX Runtime inside Triton's python backend; where the server cannot start,
the tests skip and say why.
"""

import time

import numpy as np
import onnxruntime as ort
import pytest

from splitcomp_tools.run.triton_run import TritonServer, find_server

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed (requirements/python.txt)")

from splitcomp_core.errors import BackendUnavailable
from splitcomp_core.triton_session import TritonSession, triton_model_name
from splitcomp_tools import triton_repo


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_batch_bundle, tiny_multi_cut_bundle):
    info, why = find_server()
    if info is None:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("triton")
    repo = work / "repo"
    batching = [str(tiny_batch_bundle.path), "--out", str(repo), "--max-batch", "8", "--queue-delay-us", "20000"]
    assert triton_repo.main(batching) == 0
    assert triton_repo.main([str(tiny_multi_cut_bundle.path), "--out", str(repo)]) == 0
    triton = TritonServer(info, repo, work)
    try:
        triton.start()
    except RuntimeError as exc:
        pytest.skip(f"tritonserver did not start: {exc}")
    yield triton
    triton.stop()


@pytest.fixture(scope="module")
def tail(tiny_batch_bundle):
    return triton_model_name(tiny_batch_bundle)


def frames(n, shape=(4, 16, 16)):
    return np.random.default_rng(3).random((n, *shape), dtype=np.float32)


def onnx_runtime(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def test_answers_equal_onnx_runtime_and_overlapping_requests_are_batched(server, tail, tiny_batch_bundle):
    session = TritonSession(server.url, tail, timeout_s=5.0)
    assert session.ready()
    x = frames(8)
    got = session.run({"feat": x})["logits"]
    assert got.shape == (8, 5)
    np.testing.assert_allclose(got, onnx_runtime(tiny_batch_bundle.tail_path, {"feat": x}), atol=1e-4)
    import tritonclient.grpc as grpcclient

    stats = grpcclient.InferenceServerClient(server.url).get_inference_statistics(tail).model_stats[0]
    assert stats.execution_count < stats.inference_count


def test_every_cut_of_a_multi_cut_bundle_is_served_by_its_own_model(server, tiny_multi_cut_bundle):
    names = set()
    for cut in tiny_multi_cut_bundle.cuts:
        name = triton_model_name(tiny_multi_cut_bundle, cut.cut_id)
        names.add(name)
        (spec,) = cut.bundle.manifest.cut
        x = frames(3, tuple(spec.shape[1:]))
        got = TritonSession(server.url, name, timeout_s=5.0).run({spec.name: x})["logits"]
        want = np.concatenate([onnx_runtime(cut.bundle.tail_path, {spec.name: x[k : k + 1]}) for k in range(3)])
        assert got.shape == (3, 5)
        np.testing.assert_allclose(got, want, atol=1e-4)
    assert len(names) == len(tiny_multi_cut_bundle.cuts) == 2
    assert triton_model_name(tiny_multi_cut_bundle) == triton_model_name(tiny_multi_cut_bundle, "feat")


def test_an_unknown_model_is_not_ready_and_a_wrong_shape_is_refused(server, tail):
    with pytest.raises(BackendUnavailable) as caught:
        TritonSession(server.url, "nope", timeout_s=5.0).run({"feat": frames(1)})
    assert caught.value.reason == "triton_not_ready"
    with pytest.raises(BackendUnavailable) as caught:
        TritonSession(server.url, tail, timeout_s=5.0).run({"feat": frames(1)[:, :3]})
    assert caught.value.reason == "triton_refused"


def test_a_stopped_server_is_down_quickly_and_a_restarted_one_answers_the_same_session(server, tail):
    session = TritonSession(server.url, tail, timeout_s=1.0)
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


def test_a_tail_pipeline_over_triton_answers_as_over_onnx_runtime(server, tail, tiny_batch_bundle):
    """Real frames encoded by the head, decoded by the tail, run as one batch on Triton or in ONNX Runtime."""
    from splitcomp_core.head import HeadPipeline
    from splitcomp_core.tail import TailPipeline
    from splitcomp_tools.frames.generator import GeneratorSource

    head = HeadPipeline(tiny_batch_bundle, providers=["cpu"])
    local = TailPipeline(tiny_batch_bundle, ["cpu"])
    remote = TailPipeline(tiny_batch_bundle, session=TritonSession(server.url, tail, timeout_s=5.0), batch_any=True)
    model_id = tiny_batch_bundle.manifest.model_id
    decoded = [local.decode(model_id, head(GeneratorSource(32, 32, seed=s).read()).tensors) for s in range(5)]
    for want, got in zip(local.answer_batch(decoded), remote.answer_batch(decoded)):
        assert [r[0] for r in got.results] == [r[0] for r in want.results]
        assert [r[2] for r in got.results] == pytest.approx([r[2] for r in want.results], abs=1e-4)
