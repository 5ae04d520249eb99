"""head_node over real DDS: every supported encoding, the bad ones, and encoder changes at run time."""

import time

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.qos import qos_profile_sensor_data
from ros_harness import NodeProcess, Probe, diagnostics_values, set_parameter
from sensor_msgs.msg import CompressedImage, Image

from splitcomp_core.bundle import load_bundle
from splitcomp_core.codec import CODEC_NONE, CODEC_ZSTD, decode
from splitcomp_msgs.msg import SplitFeatures
from splitcomp_ros.images import array_to_image
from splitcomp_ros.messages import tensor_from_msg
from splitcomp_tools.frames.generator import GeneratorSource

pytestmark = pytest.mark.slow  # nodes as processes over DDS: `make test-fast` leaves it out

RGB = GeneratorSource(320, 240, seed=9).read()
YUV = cv2.cvtColor(cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2YUV_YUY2)
GOOD = {
    "rgb8": RGB,
    "bgr8": cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR),
    "rgba8": cv2.cvtColor(RGB, cv2.COLOR_RGB2RGBA),
    "bgra8": cv2.cvtColor(RGB, cv2.COLOR_RGB2BGRA),
    "mono8": cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY),
    "yuyv": YUV,
    "yuv422_yuy2": YUV,
    "uyvy": YUV[:, :, ::-1],  # the same pixels with each byte pair swapped: U Y0 V Y1
    "yuv422": YUV[:, :, ::-1],
}


def bad_images():
    unsupported = array_to_image(np.zeros((4, 4, 2), np.uint8), "16UC1")
    short = array_to_image(RGB, "rgb8")
    short.data = short.data[:-7]
    narrow_step = array_to_image(RGB, "rgb8")
    narrow_step.step = 10
    empty = Image(encoding="rgb8")
    return [unsupported, short, narrow_step, empty]


class HeadHarness:
    def __init__(self, bundle, tmp_path, namespace="", **params):
        self.node = NodeProcess(
            "splitcomp_head_node",
            "head_node",
            {"bundle": str(bundle), "providers": ["cpu"], **params},
            tmp_path,
            namespace,
        )
        self.status_name = f"splitcomp: {namespace}/head_node"
        self.probe = Probe("head_probe")
        self.features, self.diagnostics = {}, []
        self.probe.node.create_subscription(
            SplitFeatures,
            f"{namespace}/splitcomp/features",
            lambda m: self.features.setdefault(m.header.frame_id, m),
            10,
        )
        self.probe.node.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda m: self.diagnostics.extend(s for s in m.status if s.name == self.status_name),
            10,
        )
        compressed = params.get("compressed_input", False)
        self.camera = self.probe.node.create_publisher(
            CompressedImage if compressed else Image,
            f"{namespace}/image_raw/compressed" if compressed else f"{namespace}/image_raw",
            qos_profile_sensor_data,
        )
        self.params = self.probe.node.create_client(SetParameters, f"{namespace}/head_node/set_parameters")
        assert self.probe.wait_for_subscriber(self.camera), self.node.log()
        self.count = 0

    def send(self, msg, expect_answer=True):
        self.count += 1
        frame_id = f"f{self.count}"
        msg.header.frame_id = frame_id
        msg.header.stamp = Time(sec=self.count, nanosec=7)
        for _ in range(3 if expect_answer else 1):
            self.camera.publish(msg)
            if self.probe.spin_until(lambda: frame_id in self.features, 5.0 if expect_answer else 0.5):
                return self.features[frame_id]
        return None

    def set(self, name, value):
        return set_parameter(self.probe, self.params, name, value)

    def last_diagnostics(self):
        self.probe.spin_until(lambda: False, 1.5)
        return diagnostics_values(self.diagnostics[-1])

    def close(self):
        self.probe.close()
        assert self.node.stop() == 0, self.node.log()


@pytest.fixture(scope="module")
def head(demo_bundle, tmp_path_factory):
    harness = HeadHarness(demo_bundle, tmp_path_factory.mktemp("head"), bits=4, quantization="calibrated")
    yield harness
    harness.close()


def test_every_supported_encoding_is_encoded(head, demo_bundle):
    cut = load_bundle(demo_bundle).manifest.cut[0]
    decoded = {}
    for encoding, pixels in GOOD.items():
        out = head.send(array_to_image(pixels, encoding))
        assert out is not None, f"no features for {encoding}:\n{head.node.log()}"
        assert out.header.stamp.sec == head.count and out.header.stamp.nanosec == 7
        assert list(out.tensors[0].shape) == [d if d > 0 else 1 for d in cut.shape] and out.tensors[0].bits == 4
        decoded[encoding] = decode(tensor_from_msg(out.tensors[0]))
    # The colour encodings carry the same picture, so the head must see (nearly) the same features.
    for encoding in ("bgr8", "rgba8", "bgra8"):
        np.testing.assert_allclose(decoded[encoding], decoded["rgb8"], atol=1e-6)
    np.testing.assert_allclose(decoded["uyvy"], decoded["yuyv"], atol=1e-6)


def test_bad_images_are_counted_and_skipped(head):
    before = int(head.last_diagnostics().get("rejected.image_format", "0"))
    for msg in bad_images():
        assert head.send(msg, expect_answer=False) is None
    assert head.send(array_to_image(RGB, "rgb8")) is not None, "the head stopped serving after bad input"
    values = head.last_diagnostics()
    assert int(values["rejected.image_format"]) - before == len(bad_images())
    assert "skipping frame" in head.node.log()


def test_bits_and_codec_change_at_run_time(head):
    assert head.set("bits", 2).successful and head.set("codec", "none").successful
    out = head.send(array_to_image(RGB, "rgb8"))
    assert out.tensors[0].bits == 2 and out.tensors[0].codec == CODEC_NONE
    assert head.set("codec", "zstd").successful
    out = head.send(array_to_image(RGB, "rgb8"))
    assert out.tensors[0].bits == 2 and out.tensors[0].codec == CODEC_ZSTD
    refused = head.set("bits", 9)
    assert not refused.successful and "bits" in refused.reason
    refused = head.set("codec", "gzip")
    assert not refused.successful and "codec" in refused.reason
    out = head.send(array_to_image(RGB, "rgb8"))
    assert (out.tensors[0].bits, out.tensors[0].codec) == (2, CODEC_ZSTD)
    assert head.set("bits", 32).successful
    out = head.send(array_to_image(RGB, "rgb8"))
    assert out.tensors[0].bits == 32 and len(out.tensors[0].scale) == 0


def test_compressed_input(demo_bundle, tmp_path):
    harness = HeadHarness(demo_bundle, tmp_path, namespace="/compressed", compressed_input=True)
    try:
        _ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))
        msg = CompressedImage(format="jpeg")
        msg.data = jpeg.tobytes()
        out = harness.send(msg)
        assert out is not None, harness.node.log()
        # Started without encoder parameters, the head takes the bundle's calibrated 4-bit defaults.
        calibrated = load_bundle(demo_bundle).manifest.quantization.calibrated[out.tensors[0].name]["per_tensor"]
        assert out.tensors[0].bits == 4
        assert abs(out.tensors[0].scale[0] - (calibrated["max"] - calibrated["min"]) / 15) < 1e-4
        msg.data = b"garbage"
        assert harness.send(msg, expect_answer=False) is None
        assert harness.last_diagnostics()["rejected.image_format"] == "1"
    finally:
        harness.close()


def test_max_rate_limits_processing_and_counts_skipped_frames(head):
    assert head.set("max_rate_hz", 2.0).successful
    try:
        before_out = len(head.features)
        before_dropped = int(head.last_diagnostics().get("dropped", "0"))
        start = time.monotonic()
        for _ in range(30):  # about 20 Hz
            head.count += 1
            msg = array_to_image(RGB, "rgb8")
            msg.header.frame_id = f"f{head.count}"
            head.camera.publish(msg)
            head.probe.spin_for(0.05)
        head.probe.spin_for(1.0)
        elapsed = time.monotonic() - start
        processed = len(head.features) - before_out
        dropped = int(head.last_diagnostics()["dropped"]) - before_dropped
        assert 2 <= processed <= 2.0 * elapsed + 2, (processed, elapsed)
        assert dropped >= 30 - processed - 3, (dropped, processed)
    finally:
        assert head.set("max_rate_hz", 0.0).successful
    assert not head.set("max_rate_hz", -1.0).successful


def test_p_frames_with_codec_none_are_warned_once_and_in_diagnostics(tiny_bundle, tmp_path):
    params = {"bundle": str(tiny_bundle.path), "providers": ["cpu"], "codec": "none", "keyframe_interval": 30}
    node = NodeProcess("splitcomp_head_node", "head_node", params, tmp_path)
    probe = Probe("head_warning_probe")
    seen: dict = {}

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "splitcomp: /head_node":
                seen.update(message=status.message, level=status.level)

    probe.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    params_client = probe.node.create_client(SetParameters, "head_node/set_parameters")
    try:
        assert probe.spin_until(lambda: "codec none" in seen.get("message", ""), 20.0), (seen, node.log())
        assert set_parameter(probe, params_client, "codec", "zstd").successful
        seen.clear()
        assert probe.spin_until(lambda: "message" in seen and "codec none" not in seen["message"], 10.0), seen
    finally:
        probe.close()
        assert node.stop() == 0, node.log()
    assert node.log().count("keyframe_interval > 0 with codec none") == 1, node.log()
