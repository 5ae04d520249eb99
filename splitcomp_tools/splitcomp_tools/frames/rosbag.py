"""Frames from a recorded rosbag2 (sqlite3 or mcap): sensor_msgs/Image or CompressedImage on one topic.

Calibration should see what the robot's camera really sends, and a recording is the usual way to
bring that to a desk. The bag is read with the pure-Python `rosbags` library, so no ROS install or
sourced workspace is needed; pixels go through the same `to_rgb` as the head node's frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError
from rosbags.typesys import Stores, get_typestore

from splitcomp_core.errors import ImageFormatError, SplitcompError
from splitcomp_core.images import decode_compressed, raw_pixels
from splitcomp_core.preprocess import to_rgb
from splitcomp_tools.frames.base import FrameSource

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)

# Bags recorded on Humble embed no message definitions; sensor_msgs/Image has not changed since.
_DEFAULT_TYPESTORE = Stores.ROS2_HUMBLE


class RosbagSource(FrameSource):
    """Every image message on `topic`, in recording order, as HxWx3 uint8 RGB."""

    def __init__(self, path: str | Path, topic: str) -> None:
        self.path = Path(path)
        self._reader = AnyReader([self.path], default_typestore=get_typestore(_DEFAULT_TYPESTORE))
        try:
            self._reader.open()
        except (AnyReaderError, ReaderError) as exc:
            raise SplitcompError(f"{self.path}: cannot read this rosbag2 ({exc})") from exc
        try:
            self.topic, self.msgtype = self._pick_topic(topic)
        except SplitcompError:
            self._reader.close()
            raise
        self._connections = [c for c in self._reader.connections if c.topic == self.topic]
        self._messages: Iterator[tuple[Any, int, bytes]] | None = None
        self._index = 0
        self._open = True

    def _pick_topic(self, topic: str) -> tuple[str, str]:
        """The requested topic and its type; otherwise an error that lists the image topics there are."""
        types = {c.topic: c.msgtype for c in self._reader.connections}
        images = sorted(t for t, msgtype in types.items() if msgtype in IMAGE_TYPES)
        available = ", ".join(images) if images else "none"
        hint = f"image topics in this bag: {available}"
        if not topic:
            raise SplitcompError(f"{self.path}: a rosbag2 needs --topic; {hint}")
        name = topic if topic in types else "/" + topic.lstrip("/")
        if name not in types:
            raise SplitcompError(f"{self.path}: no topic {topic!r}; {hint}")
        if types[name] not in IMAGE_TYPES:
            raise SplitcompError(f"{self.path}: topic {name} holds {types[name]}, not images; {hint}")
        return name, types[name]

    def read(self) -> np.ndarray | None:
        if self._messages is None:
            self._messages = self._reader.messages(connections=self._connections)
        try:
            connection, _, raw = next(self._messages)
            msg = self._reader.deserialize(raw, connection.msgtype)
        except StopIteration:
            return None
        except (AnyReaderError, ReaderError) as exc:
            raise SplitcompError(f"{self.path}: cannot read message {self._index} on {self.topic} ({exc})") from exc
        self._index += 1
        try:
            return image_to_rgb(msg) if self.msgtype == IMAGE else compressed_to_rgb(msg)
        except ImageFormatError as exc:
            raise ImageFormatError(f"{self.path}: message {self._index - 1} on {self.topic}: {exc}") from None

    def rewind(self) -> None:
        self._messages = None
        self._index = 0

    def close(self) -> None:
        if self._open:
            self._open = False
            self._reader.close()


def image_to_rgb(msg: Any) -> np.ndarray:
    """RGB pixels of a deserialized sensor_msgs/Image, its row padding (step) dropped."""
    pixels = raw_pixels(
        np.asarray(msg.data, dtype=np.uint8), msg.encoding, int(msg.width), int(msg.height), int(msg.step)
    )
    return to_rgb(pixels, msg.encoding)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """RGB pixels of a deserialized sensor_msgs/CompressedImage (JPEG or PNG, as image_transport writes)."""
    bgr = decode_compressed(np.asarray(msg.data, dtype=np.uint8), f"CompressedImage (format {msg.format!r})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
