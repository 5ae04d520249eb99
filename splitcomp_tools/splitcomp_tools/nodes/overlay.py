"""overlay: camera frames plus classifications or detections in, annotated frames out (splitcomp/overlay, for rviz).

A result comes back after its frame, so the last `cache_size` frames are kept by header stamp and
each result is drawn on the frame with the same stamp. A result whose frame has already left the
cache (or never arrived) is counted as unmatched in /diagnostics instead of being drawn on the
wrong picture. Frames are converted only when a result is drawn on them. The overlay goes out
with sensor-data QoS (best effort), like a camera, so a slow viewer never holds the node back.
"""

from __future__ import annotations

import collections

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from splitcomp_core.stats import RateMeter
from splitcomp_msgs.msg import Classification, Detections
from splitcomp_ros.images import array_to_image, image_to_array
from splitcomp_ros.messages import stamp_key
from splitcomp_ros.node_support import NodeHelp, Param, SplitcompNode, declare_params
from splitcomp_tools.draw.annotate import Box, annotate, detection_lines, draw_boxes, drawable, result_lines

PARAMS = (
    Param("cache_size", 30, "How many recent frames wait for their result.", read_only=True, int_range=(1, 1000)),
    Param("top_n", 3, "How many classes to draw, best first.", read_only=True, int_range=(1, 20)),
)


HELP = NodeHelp(
    "splitcomp_tools",
    "overlay",
    "Draws each classification (splitcomp/classification), or each detector's boxes and landmarks\n"
    "(splitcomp/detections), on the camera frame it answers (image_raw, matched by stamp) and publishes it\n"
    "on splitcomp/overlay for rviz. `overlay --example PNG` only draws an example\n"
    "result on a generated frame into PNG.",
    PARAMS,
)


class Overlay(SplitcompNode):
    def __init__(self) -> None:
        super().__init__("overlay", HELP.params)
        params = declare_params(self, PARAMS)
        self._cache_size, self._top_n = params["cache_size"], params["top_n"]
        self._frames: collections.OrderedDict = collections.OrderedDict()
        self._result_rate = RateMeter()
        self.health.fields["cache_size"] = str(self._cache_size)
        self.health.counts.update(frames_in=0, frames_out=0, results_in=0, unmatched=0)
        self._publisher = self.create_publisher(Image, "splitcomp/overlay", qos_profile_sensor_data)
        self.create_subscription(Image, "image_raw", self._on_frame, qos_profile_sensor_data)
        self.create_subscription(Classification, "splitcomp/classification", self._on_result, 10)
        self.create_subscription(Detections, "splitcomp/detections", self._on_detections, 10)
        self.get_logger().info(
            f"drawing splitcomp/classification and splitcomp/detections on image_raw (last {self._cache_size} frames)"
        )

    def _on_frame(self, msg: Image) -> None:
        self.health.received()
        key = stamp_key(msg.header)
        self._frames[key] = msg
        self._frames.move_to_end(key)
        while len(self._frames) > self._cache_size:
            self._frames.popitem(last=False)

    def _on_result(self, result: Classification) -> None:
        scores = [(r.label or f"class {r.class_id}", r.score) for r in result.results]
        lines = result_lines(scores, result.latency_ms, result.feature_bytes, self._result_rate.rate(), self._top_n)
        self._draw(result.header, lines)

    def _on_detections(self, result: Detections) -> None:
        boxes = [Box(d.x, d.y, d.width, d.height, tuple(d.keypoints)) for d in result.detections]
        lines = detection_lines(len(boxes), result.latency_ms, result.feature_bytes, self._result_rate.rate())
        self._draw(result.header, lines, boxes)

    def _draw(self, header, lines: list[str], boxes: list[Box] | None = None) -> None:
        """The frame with this stamp, with `boxes` and then the text band drawn on it, published."""
        self.health.counts["results_in"] += 1
        self._result_rate.tick()
        frame = self._frames.pop(stamp_key(header), None)
        if frame is None:
            self.health.counts["unmatched"] += 1
            return
        drawn = self.rejects.run("frame to draw on", lambda: drawable(image_to_array(frame), frame.encoding))
        if drawn is None:
            return
        image, encoding = drawn
        if boxes:
            image = draw_boxes(image, boxes)
        self._publisher.publish(array_to_image(annotate(image, lines), encoding, frame.header))
        self.health.published()
