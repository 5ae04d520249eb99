"""triton_repo without a server: each platform's config.pbtxt parses as Triton's ModelConfig, files lie where
Triton looks, a TensorRT plan gets its trtexec command, every cut its own model, and other models stay."""

from __future__ import annotations

import py_compile

import pytest

from splitcomp_core.triton_session import triton_model_name
from splitcomp_tools import triton_repo

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] is not installed (requirements/python.txt)"
)
from google.protobuf import text_format  # noqa: E402  (tritonclient brings protobuf)


def parsed(folder):
    return text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


@pytest.mark.parametrize("platform", ["python", "onnxruntime_onnx", "tensorrt_plan"])
def test_each_platform_writes_a_config_triton_parses_and_the_files_it_loads(tiny_batch_bundle, tmp_path, platform):
    repo = tmp_path / "repo"
    argv = [str(tiny_batch_bundle.path), "--out", str(repo), "--platform", platform, "--queue-delay-us", "500"]
    assert triton_repo.main(argv) == 0
    name = triton_model_name(tiny_batch_bundle)
    folder = repo / name
    config = parsed(folder)
    assert config.name == name and config.max_batch_size == 16
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    assert [(t.name, list(t.dims), t.data_type) for t in config.input] == [("feat", [4, 16, 16], 11)]  # TYPE_FP32
    assert [(t.name, list(t.dims)) for t in config.output] == [("logits", [5])]
    kind = config.instance_group[0].kind
    version = folder / "1"
    if platform == "python":
        assert config.backend == "python" and kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
        assert sorted(p.name for p in version.iterdir()) == ["model.py", "tail.onnx"]
        assert (version / "tail.onnx").read_bytes() == tiny_batch_bundle.tail_path.read_bytes()
        py_compile.compile(str(version / "model.py"), doraise=True)
    else:
        assert config.platform == platform and kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    if platform == "onnxruntime_onnx":
        assert [p.name for p in version.iterdir()] == ["model.onnx"]
        assert (version / "model.onnx").read_bytes() == tiny_batch_bundle.tail_path.read_bytes()
    if platform == "tensorrt_plan":
        assert list(version.iterdir()) == []  # the plan is built on the serving GPU
        script = (folder / "build_plan.sh").read_text()
        assert (folder / "tail.onnx").read_bytes() == tiny_batch_bundle.tail_path.read_bytes()
        assert (
            "trtexec --onnx=tail.onnx --saveEngine=1/model.plan --minShapes=feat:1x4x16x16 "
            "--optShapes=feat:16x4x16x16 --maxShapes=feat:16x4x16x16"
        ) in script


def test_a_multi_cut_bundle_gets_one_model_per_cut_and_other_models_stay(
    tiny_multi_cut_bundle, tiny_batch_bundle, tmp_path
):
    repo = tmp_path / "repo"
    assert triton_repo.main([str(tiny_batch_bundle.path), "--out", str(repo), "--max-batch", "4"]) == 0
    assert (
        triton_repo.main([str(tiny_multi_cut_bundle.path), "--out", str(repo), "--platform", "onnxruntime_onnx"]) == 0
    )
    names = {triton_model_name(tiny_multi_cut_bundle, c.cut_id): c for c in tiny_multi_cut_bundle.cuts}
    assert {p.name for p in repo.iterdir()} == {*names, triton_model_name(tiny_batch_bundle)}
    assert parsed(repo / triton_model_name(tiny_batch_bundle)).max_batch_size == 4
    for name, cut in names.items():
        config = parsed(repo / name)
        assert name == f"splitcomp-{cut.cut_id}-{cut.bundle.manifest.model_id.split(':')[1][:12]}"
        # a static-batch tail serves one frame per run, without a batcher, its dims the full shapes
        assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
        assert [list(t.dims) for t in config.input] == [cut.bundle.manifest.cut[0].shape]
        assert [list(t.dims) for t in config.output] == [[1, 5]]
        assert (repo / name / "1" / "model.onnx").read_bytes() == cut.bundle.tail_path.read_bytes()
    assert triton_repo.main([str(tiny_multi_cut_bundle.path), "--out", str(repo), "--overwrite"]) == 0
    assert all(parsed(repo / name).backend == "python" for name in names)


def test_the_model_name_is_one_rule_for_every_cut(tiny_bundle, tiny_multi_cut_bundle):
    from splitcomp_core.errors import BundleError

    digest = tiny_bundle.manifest.model_id.split(":")[1][:12]
    assert triton_model_name(tiny_bundle) == f"splitcomp-{digest}"
    assert triton_model_name(tiny_multi_cut_bundle, "feat") == f"splitcomp-feat-{digest}"
    assert triton_model_name(tiny_multi_cut_bundle.cuts[1].bundle) == triton_model_name(tiny_multi_cut_bundle, "pooled")
    with pytest.raises(BundleError, match="no cut 'nope'"):
        triton_model_name(tiny_multi_cut_bundle, "nope")
    with pytest.raises(BundleError, match="single-cut"):
        triton_model_name(tiny_bundle, "feat")


def test_a_static_tail_gets_a_plan_without_a_batch_profile(tiny_bundle, tmp_path):
    repo = tmp_path / "repo"
    assert triton_repo.main([str(tiny_bundle.path), "--out", str(repo), "--platform", "tensorrt_plan"]) == 0
    folder = repo / triton_model_name(tiny_bundle)
    assert parsed(folder).max_batch_size == 0
    assert "trtexec --onnx=tail.onnx --saveEngine=1/model.plan\n" in (folder / "build_plan.sh").read_text()
