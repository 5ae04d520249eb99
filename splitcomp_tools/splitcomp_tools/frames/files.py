"""Frames from files and devices: a folder of images, a video file or a camera, through OpenCV."""

from __future__ import annotations

import os
from pathlib import Path

# FFmpeg's own log lines ("moov atom not found") would follow a tool's one `error:` line; the reason is ours.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # after the log level, which OpenCV reads when it first opens a video
import numpy as np

from splitcomp_core.errors import ImageFormatError, SplitcompError
from splitcomp_core.images import list_images, read_image
from splitcomp_tools.frames.base import FrameSource

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".mjpeg", ".mjpg", ".m4v"}
LISTED_SKIPPED = 3  # file names a message names before "..."


class FolderSource(FrameSource):
    """The images of a folder in name order; files that do not decode are skipped and listed in `skipped`."""

    def __init__(self, folder: Path) -> None:
        self.paths = list_images(folder)
        self.skipped: list[Path] = []
        self._next = 0

    def read(self) -> np.ndarray | None:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            try:
                return read_image(path)
            except ImageFormatError:
                if path not in self.skipped:
                    self.skipped.append(path)
        return None

    def rewind(self) -> None:
        self._next = 0


def describe_skipped(source: FrameSource) -> str:
    """How many image files of a folder did not decode, and the first few names; "" when none failed."""
    skipped = getattr(source, "skipped", [])
    if not skipped:
        return ""
    names = ", ".join(p.name for p in skipped[:LISTED_SKIPPED]) + (", ..." if len(skipped) > LISTED_SKIPPED else "")
    return f"{len(skipped)} image file(s) in {skipped[0].parent} did not decode: {names}"


class CaptureSource(FrameSource):
    """A video file or a camera device, through OpenCV; a video file gives every frame in order.

    A video file is checked at once: one that OpenCV cannot open, or whose first frame does not
    decode, is refused with a reason instead of giving a tool no frames. `fps` is the file's rate.
    """

    def __init__(self, target: str | int, what: str) -> None:
        self._target, self._what = target, what
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise SplitcompError(f"cannot open {what} {target!r} with OpenCV; is it a video file it can decode?")
        self._first: np.ndarray | None = None
        if what == "video file":
            self._first = self.read()
            if self._first is None:
                self._capture.release()
                raise SplitcompError(f"{what} {target!r} holds no frame that OpenCV can decode")
            fps = float(self._capture.get(cv2.CAP_PROP_FPS))
            self.fps = fps if 0.0 < fps < 1000.0 else None

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        ok, frame = self._capture.read()
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if ok else None

    def rewind(self) -> None:
        self._capture.release()
        self._first = None
        self._capture = cv2.VideoCapture(self._target)

    def close(self) -> None:
        self._capture.release()
