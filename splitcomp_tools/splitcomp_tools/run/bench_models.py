"""The models `bench pipeline` and `bench restarts` prepare when no --bundle is given.

They are the demo's models (demo/), a floor above the benchmarks, so the `bench` command hands them
down: a benchmark names, prepares and feeds a model through this without importing the demo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BenchModels:
    """Named models a benchmark can run, prepared as `demo` prepares them."""

    names: tuple[str, ...]
    cache: Path  # the default --cache, where exported models are kept
    prepare: Callable[[str, Path, Path], Path]  # (name, bundle folder, cache) -> the prepared bundle
    held_out: Callable[[str], str]  # name -> the frames it is judged on (an image_source `source`)
