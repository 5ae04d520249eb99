"""Generated camera frames of the demo's shape classes (the `generator` source)."""

from __future__ import annotations

import numpy as np

from splitcomp_tools.frames.base import FrameSource
from splitcomp_tools.frames.shapes import ShapeGenerator


class GeneratorSource(FrameSource):
    """Endless camera-like frames of the demo's shape classes; `last_label` is the latest frame's class."""

    def __init__(self, width: int = 640, height: int = 480, seed: int = 0) -> None:
        self._make = lambda: ShapeGenerator(seed, size=(width, height))
        self._generator = self._make()
        self.last_label: int | None = None

    def read(self) -> np.ndarray:
        image, label = self._generator.sample()
        self.last_label = int(label)
        return image

    def rewind(self) -> None:
        self._generator = self._make()
        self.last_label = None
