"""overlay over real DDS: results are drawn on the frame with their stamp, late ones are counted, not drawn."""

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import DescribeParameters
from rclpy.qos import qos_profile_sensor_data
from ros_harness import NodeProcess, Probe, diagnostics_values
from sensor_msgs.msg import Image

from splitcomp_msgs.msg import Classification, ClassScore, Detection, Detections
from splitcomp_ros.images import array_to_image, image_to_array
from splitcomp_tools.draw.annotate import BOX_COLOUR, LANDMARK_COLOUR, annotate, band_rect, result_lines
from splitcomp_tools.frames.generator import GeneratorSource

pytestmark = pytest.mark.slow  # nodes as processes over DDS: `make test-fast` leaves it out

CACHE, TOP_N = 4, 2
RGB = GeneratorSource(640, 480, seed=21).read()
FRAMES = {
    "rgb8": (RGB, "rgb8", RGB),
    "bgr8": (cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR), "bgr8", cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR)),
    "mono8": (
        cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY),
        "rgb8",
        cv2.cvtColor(cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB),
    ),
}
SCORES = [("star", 0.9714), ("ring", 0.0203), ("cross", 0.0049)]


def key_of(msg):
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def frame_msg(pixels, encoding, sec):
    msg = array_to_image(pixels, encoding)
    msg.header.stamp = Time(sec=sec, nanosec=17)
    msg.header.frame_id = f"cam{sec}"
    return msg


def result_msg(sec, nanosec=17):
    msg = Classification()
    msg.header.stamp = Time(sec=sec, nanosec=nanosec)
    msg.header.frame_id = f"cam{sec}"
    msg.results = [ClassScore(class_id=i, label=label, score=score) for i, (label, score) in enumerate(SCORES)]
    msg.feature_bytes = 1568
    msg.latency_ms = 23.4
    return msg


class OverlayHarness:
    def __init__(self, tmp_path):
        self.node = NodeProcess("splitcomp_tools", "overlay", {"cache_size": CACHE, "top_n": TOP_N}, tmp_path)
        self.probe = Probe("overlay_probe")
        self.overlays, self.diagnostics = {}, []
        node = self.probe.node
        node.create_subscription(
            Image, "splitcomp/overlay", lambda m: self.overlays.setdefault(key_of(m), m), qos_profile_sensor_data
        )
        node.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda m: self.diagnostics.extend(s for s in m.status if s.name == "splitcomp: /overlay"),
            10,
        )
        self.camera = node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.results = node.create_publisher(Classification, "splitcomp/classification", 10)
        self.detections = node.create_publisher(Detections, "splitcomp/detections", 10)
        assert self.probe.wait_for_subscriber(self.camera), self.node.log()
        assert self.probe.wait_for_subscriber(self.results), self.node.log()
        assert self.probe.spin_until(lambda: node.count_publishers("splitcomp/overlay") > 0, 10.0), self.node.log()
        small = np.ascontiguousarray(RGB[:48, :64])
        assert self.draw(frame_msg(small, "rgb8", 1), result_msg(1)), "no overlay at all:\n" + self.node.log()

    def draw(self, frame, result, publisher=None):
        """Frame (twice), then its result; all resent if best-effort DDS lost the frame or the overlay.

        A 640x480 rgb8 frame is larger than Fast DDS's shared-memory segment, so on localhost it
        goes as UDP fragments, and a best-effort sample loses a fragment now and then.
        """
        for _ in range(5):
            for _ in range(2):
                self.camera.publish(frame)
                self.probe.spin_for(0.1)
            (publisher or self.results).publish(result)
            if self.probe.spin_until(lambda: key_of(frame) in self.overlays, 2.0):
                return self.overlays[key_of(frame)]
        return None

    def counts(self, until=lambda values: True, timeout=5.0):
        """Diagnostics values published after this call, waiting up to `timeout` for ones that satisfy `until`."""
        seen = len(self.diagnostics)
        self.probe.spin_until(
            lambda: len(self.diagnostics) > seen and until(diagnostics_values(self.diagnostics[-1])), timeout
        )
        assert len(self.diagnostics) > seen, "no diagnostics from overlay:\n" + self.node.log()
        return diagnostics_values(self.diagnostics[-1])

    def close(self):
        self.probe.close()
        assert self.node.stop() == 0, self.node.log()


@pytest.fixture(scope="module")
def overlay(tmp_path_factory):
    harness = OverlayHarness(tmp_path_factory.mktemp("overlay"))
    yield harness
    harness.close()


@pytest.mark.parametrize("encoding", FRAMES)
def test_result_is_drawn_on_its_frame(overlay, encoding):
    pixels, out_encoding, base = FRAMES[encoding]
    sec = 100 + list(FRAMES).index(encoding)
    out = overlay.draw(frame_msg(pixels, encoding, sec), result_msg(sec))
    assert out is not None, f"no overlay for {encoding}:\n{overlay.node.log()}"
    assert key_of(out) == (sec, 17) and out.header.frame_id == f"cam{sec}"
    assert (out.width, out.height, out.encoding) == (640, 480, out_encoding)
    drawn = image_to_array(out)
    x0, y0, x1, y1 = band_rect(base.shape, TOP_N + 2)
    inside = np.zeros(base.shape[:2], bool)
    inside[y0:y1, x0:x1] = True
    changed = np.any(drawn != base, axis=2)
    assert not changed[~inside].any(), "pixels outside the band changed (or top_n was not applied)"
    assert changed[inside].mean() > 0.9
    # The labels, scores and latency are exactly what annotate draws; only the last line (fps) may differ.
    expected = annotate(base, result_lines(SCORES, 23.4, 1568, 0.0, TOP_N))
    text_rows = np.flatnonzero((drawn[y0:y1, x0:x1].min(axis=2) >= 150).any(axis=1))
    last_line = y0 + text_rows[np.flatnonzero(np.diff(text_rows) > 1)[-1] + 1]
    np.testing.assert_array_equal(drawn[:last_line], expected[:last_line])


def test_detections_are_drawn_as_boxes_with_landmarks_on_their_frame(overlay):
    marks = [330.0, 150.0, 390.0, 150.0, 360.0, 190.0, 340.0, 230.0, 380.0, 230.0]
    face = Detection(class_id=0, label="face", score=0.93, x=300.0, y=100.0, width=120.0, height=160.0, keypoints=marks)
    result = Detections(detections=[face], feature_bytes=9000, latency_ms=31.0)
    result.header.stamp = Time(sec=400, nanosec=17)
    base = np.zeros_like(RGB)  # black, so the green outline and the magenta landmarks stand out exactly
    out = overlay.draw(frame_msg(base, "rgb8", 400), result, overlay.detections)
    assert out is not None, "no overlay for detections:\n" + overlay.node.log()
    drawn = image_to_array(out)
    green = np.all(drawn == BOX_COLOUR, axis=2)
    assert green[100, 300:420].all() and green[259, 300:420].all() and green[100:260, 300].all()
    magenta = np.all(drawn == LANDMARK_COLOUR, axis=2)
    assert all(magenta[int(y), int(x)] for x, y in zip(marks[0::2], marks[1::2]))
    x0, y0, x1, y1 = band_rect(base.shape, 3)
    assert (drawn[y0:y1, x0:x1].min(axis=2) >= 150).any(), "no text band"
    assert not np.any(drawn[270:] != 0), "pixels below the box changed"


def test_unmatched_and_late_results_are_counted_not_drawn(overlay):
    before = overlay.counts()
    unmatched, frames_in = int(before["unmatched"]), int(before["frames_in"])
    overlay.results.publish(result_msg(999))
    assert int(overlay.counts(lambda v: int(v["unmatched"]) > unmatched)["unmatched"]) == unmatched + 1

    stamps = [200 + i for i in range(CACHE + 1)]
    small = np.ascontiguousarray(RGB[:48, :64])
    for _ in range(3):  # every frame must arrive, or the first would not have left the cache
        for sec in stamps:
            overlay.camera.publish(frame_msg(small, "rgb8", sec))
            overlay.probe.spin_for(0.05)
        frames_in += len(stamps)
        if int(overlay.counts(lambda v, n=frames_in: int(v["frames_in"]) >= n)["frames_in"]) == frames_in:
            break
    else:
        pytest.fail("image_raw frames kept getting lost:\n" + overlay.node.log())
    overlay.results.publish(result_msg(stamps[0]))
    overlay.results.publish(result_msg(stamps[-1]))
    assert overlay.probe.spin_until(lambda: (stamps[-1], 17) in overlay.overlays, 5.0), overlay.node.log()
    after = overlay.counts(lambda v: int(v["results_in"]) >= int(before["results_in"]) + 3)
    assert int(after["unmatched"]) == unmatched + 2
    assert (stamps[0], 17) not in overlay.overlays
    assert int(after["frames_out"]) == int(before["frames_out"]) + 1


def test_a_frame_it_cannot_read_is_counted(overlay):
    before = int(overlay.counts().get("rejected.image_format", "0"))
    broken = frame_msg(RGB, "rgb8", 300)
    broken.step = 10
    overlay.camera.publish(broken)
    overlay.probe.spin_for(0.2)
    overlay.results.publish(result_msg(300))
    after = overlay.counts(lambda v: int(v.get("rejected.image_format", "0")) > before)
    assert int(after["rejected.image_format"]) == before + 1
    assert overlay.draw(frame_msg(RGB, "rgb8", 301), result_msg(301)) is not None, "overlay stopped serving"


def test_parameters_are_described(overlay):
    client = overlay.probe.node.create_client(DescribeParameters, "/overlay/describe_parameters")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(DescribeParameters.Request(names=["cache_size", "top_n"]))
    assert overlay.probe.spin_until(future.done, 10.0)
    cache_size, top_n = future.result().descriptors
    assert cache_size.description and cache_size.read_only and cache_size.integer_range[0].from_value == 1
    assert top_n.description and top_n.integer_range[0].from_value == 1
