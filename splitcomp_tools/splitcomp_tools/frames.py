"""Where frames come from, for image_source, calibrate and the demo: one reader per kind of source.

`open_source` takes what a user would type: `generator` (the demo's synthetic shapes), a folder
of images, a video file, a camera device (`/dev/video0` or `0`), or a rosbag2 directory with a
topic. Every reader yields HxWx3 uint8 RGB frames.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np

from splitcomp_core.errors import SplitcompError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".mjpeg", ".mjpg", ".m4v"}


class FrameSource:
    """A finite or endless sequence of RGB frames that can start over."""

    def read(self) -> Optional[np.ndarray]:
        """The next frame, or None when the source is exhausted."""
        raise NotImplementedError

    def rewind(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release files or devices; a no-op for in-memory sources."""

    def frames(self, limit: Optional[int] = None) -> Iterator[np.ndarray]:
        count = 0
        while limit is None or count < limit:
            frame = self.read()
            if frame is None:
                return
            count += 1
            yield frame


class GeneratorSource(FrameSource):
    """Endless camera-like frames of the demo's shape classes; `last_label` is the latest frame's class."""

    def __init__(self, width: int = 640, height: int = 480, seed: int = 0) -> None:
        from splitcomp_tools.shapes import ShapeGenerator

        self._make = lambda: ShapeGenerator(seed, size=(width, height))
        self._generator = self._make()
        self.last_label: Optional[int] = None

    def read(self) -> np.ndarray:
        image, label = self._generator.sample()
        self.last_label = int(label)
        return image

    def rewind(self) -> None:
        self._generator = self._make()
        self.last_label = None


class PreloadedSource(FrameSource):
    """The first `count` frames of another source, kept in memory and replayed.

    For benchmarks: a synthetic camera should not compete with the pipeline for the CPU.
    """

    def __init__(self, source: FrameSource, count: int) -> None:
        self._frames = list(source.frames(count))
        source.close()
        if not self._frames:
            raise SplitcompError("the source gave no frames to preload")
        self._next = 0

    def read(self) -> Optional[np.ndarray]:
        if self._next >= len(self._frames):
            return None
        self._next += 1
        return self._frames[self._next - 1]

    def rewind(self) -> None:
        self._next = 0


class FolderSource(FrameSource):
    def __init__(self, folder: Path) -> None:
        self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SplitcompError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
        self._next = 0

    def read(self) -> Optional[np.ndarray]:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return None

    def rewind(self) -> None:
        self._next = 0


class CaptureSource(FrameSource):
    """A video file or a camera device, through OpenCV."""

    def __init__(self, target: str | int, what: str) -> None:
        self._target = target
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise SplitcompError(f"cannot open {what} {target!r} with OpenCV")

    def read(self) -> Optional[np.ndarray]:
        ok, frame = self._capture.read()
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if ok else None

    def rewind(self) -> None:
        self._capture.release()
        self._capture = cv2.VideoCapture(self._target)

    def close(self) -> None:
        self._capture.release()


def open_source(spec: str, width: int = 640, height: int = 480, seed: int = 0, topic: str = "") -> FrameSource:
    """A FrameSource for `spec`; a SplitcompError says what was wrong and what is accepted."""
    if spec == "generator":
        return GeneratorSource(width, height, seed)
    if spec.isdigit() or spec.startswith("/dev/video"):
        return CaptureSource(int(spec) if spec.isdigit() else spec, "camera device")
    path = Path(os.path.expanduser(spec))
    if path.is_dir() and (path / "metadata.yaml").is_file():
        from splitcomp_tools.rosbag_frames import RosbagSource

        return RosbagSource(path, topic)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return CaptureSource(str(path), "video file")
    if not path.exists():
        raise SplitcompError(
            f"{spec}: no such file or folder; use 'generator', a folder of images, a video file, "
            f"a camera device such as /dev/video0, or a rosbag2 folder with --topic"
        )
    raise SplitcompError(
        f"{spec}: not a folder, rosbag2 or video file ({', '.join(sorted(VIDEO_SUFFIXES))})"
    )
