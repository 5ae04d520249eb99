"""FrameSource: what every frame reader is, for image_source, calibrate, classify and the demo.

Every reader yields HxWx3 uint8 RGB frames and can start over; `PreloadedSource` replays the first
frames of another one from memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from splitcomp_core.errors import SplitcompError


class FrameSource:
    """A finite or endless sequence of RGB frames that can start over.

    `fps` is the rate the frames were recorded at (a video file's), None when the source has none.
    """

    fps: float | None = None

    def read(self) -> np.ndarray | None:
        """The next frame, or None when the source is exhausted."""
        raise NotImplementedError

    def rewind(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release files or devices; a no-op for in-memory sources."""

    def frames(self, limit: int | None = None) -> Iterator[np.ndarray]:
        count = 0
        while limit is None or count < limit:
            frame = self.read()
            if frame is None:
                return
            count += 1
            yield frame


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

    def read(self) -> np.ndarray | None:
        if self._next >= len(self._frames):
            return None
        self._next += 1
        return self._frames[self._next - 1]

    def rewind(self) -> None:
        self._next = 0
