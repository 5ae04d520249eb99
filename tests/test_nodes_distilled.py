"""A distilled bundle between real head_node and tail_node processes over real DDS, with no parameter of its own.

The manifest alone says what to do (symbols quantized by clip 0..15, codec entropy with the bundle's tables), so
the nodes start with just the bundle and answer each frame exactly as HeadPipeline -> TailPipeline does.
"""

from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from ros_harness import NodeProcess, Probe
from sensor_msgs.msg import Image

from splitcomp_core.bundle import load_bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_msgs.msg import Classification, SplitFeatures
from splitcomp_ros.images import array_to_image
from splitcomp_tools import distill
from splitcomp_tools.frames.registry import open_source
from splitcomp_tools.model.split import split_model

pytestmark = pytest.mark.slow  # nodes as processes over DDS: `make test-fast` leaves it out

SHAPES = Path(__file__).resolve().parents[1] / "splitcomp_tools" / "models" / "shapes" / "model.onnx"
FAST = ["--train-images", "generator", "--train-count", "40", "--eval-images", "generator", "--eval-count", "8"]
FAST += ["--warmup-epochs", "2", "--epochs", "1", "--channels", "4", "--quiet"]


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distilled")
    split = split_model(SHAPES, ["/stage2/block1/relu/Relu_output_0"], folder / "split")[0]
    assert distill.main([str(split.path), "--out", str(folder / "bundle"), *FAST]) == 0
    return load_bundle(folder / "bundle")


def test_nodes_run_a_distilled_bundle_unchanged(distilled, tmp_path):
    common = {"bundle": str(distilled.path), "providers": ["cpu"]}
    (tmp_path / "tail").mkdir()
    tail_node = NodeProcess("splitcomp_tail_node", "tail_node", common, tmp_path / "tail")
    head_node = NodeProcess("splitcomp_head_node", "head_node", common, tmp_path)
    probe = Probe("distilled_probe")
    answers: dict[int, Classification] = {}
    features: dict[int, SplitFeatures] = {}
    probe.node.create_subscription(
        Classification, "splitcomp/classification", lambda m: answers.setdefault(m.header.stamp.sec, m), 20
    )
    probe.node.create_subscription(
        SplitFeatures, "splitcomp/features", lambda m: features.setdefault(m.header.stamp.sec, m), 20
    )
    camera = probe.node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    frames = list(open_source("generator", 128, 128, 3).frames(6))
    try:
        assert probe.wait_for_subscriber(camera), head_node.log()
        for stamp, frame in enumerate(frames, start=1):
            msg = array_to_image(frame, "rgb8")
            msg.header.stamp.sec = stamp
            for _ in range(3):  # the first frame may meet a tail still matching the head
                camera.publish(msg)
                if probe.spin_until(lambda s=stamp: s in answers and s in features, 10.0):
                    break  # both: the answer can reach the probe before the features it answers
            assert stamp in answers and stamp in features, head_node.log() + tail_node.log()
    finally:
        probe.close()
        assert head_node.stop() == 0, head_node.log()
        assert tail_node.stop() == 0, tail_node.log()
    head, tail = HeadPipeline(distilled, providers=["cpu"]), TailPipeline(distilled, ["cpu"])
    for stamp, frame in enumerate(frames, start=1):
        sent = features[stamp]
        assert [(t.codec, t.bits) for t in sent.tensors] == [(3, 4)]
        want_tensors = head(frame).tensors
        assert bytes(sent.tensors[0].data) == want_tensors[0].data  # the same symbols, coded the same way
        want = tail(distilled.manifest.model_id, want_tensors)
        got = answers[stamp]
        assert [r.class_id for r in got.results] == [c for c, _, _ in want.results]
        np.testing.assert_allclose([r.score for r in got.results], [p for _, _, p in want.results], rtol=1e-6)
