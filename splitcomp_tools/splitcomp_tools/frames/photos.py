"""Camera-like frames cut from real colour photographs that ship inside pinned wheels (the `photos` source).

A pretrained ImageNet model has to be measured on natural images, and the project may neither download
them at run time nor copy third-party files into its repository. scikit-image, scikit-learn and
matplotlib each install a few colour photographs; this source reads them where pip put them and cuts
endless frames from them: a random crop of the frame's aspect ratio at a random scale, sometimes
mirrored, resized to the requested frame size, all reproducible from the seed.

`photos:train` and `photos:test` share no photo (the two views of the stereo motorcycle pair stay in
one subset), so ranges calibrated on one are judged on scenes they never saw; `photos` is all of them
and `photos:NAME` one photo.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from splitcomp_core.errors import SplitcompError
from splitcomp_core.images import read_image
from splitcomp_tools.frames.base import FrameSource
from splitcomp_tools.frames.installed import installed_file

SUBSETS = ("train", "test")
MIN_SCALE = 0.6  # the smallest crop, as a share of the largest crop of the frame's shape that fits the photo
MAX_SIDE = 8192  # a frame's width or height at most, checked before a frame is allocated (image_source's bound)


@dataclass(frozen=True)
class Photo:
    """One photograph inside an installed package; `subset` is "train" or "test"."""

    name: str
    package: str  # import name
    relative: str  # path inside the package
    pip_name: str
    subset: str

    def path(self) -> Path:
        return installed_file(self.package, self.relative, self.pip_name)


PHOTOS = (
    Photo("astronaut", "skimage", "data/astronaut.png", "scikit-image", "train"),
    Photo("motorcycle_left", "skimage", "data/motorcycle_left.png", "scikit-image", "train"),
    Photo("motorcycle_right", "skimage", "data/motorcycle_right.png", "scikit-image", "train"),
    Photo("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "matplotlib", "train"),
    Photo("china", "sklearn", "datasets/images/china.jpg", "scikit-learn", "train"),
    Photo("chelsea", "skimage", "data/chelsea.png", "scikit-image", "test"),
    Photo("coffee", "skimage", "data/coffee.png", "scikit-image", "test"),
    Photo("rocket", "skimage", "data/rocket.jpg", "scikit-image", "test"),
    Photo("flower", "sklearn", "datasets/images/flower.jpg", "scikit-learn", "test"),
)
BY_NAME = {p.name: p for p in PHOTOS}


def select(which: str | None = None) -> list[Photo]:
    """The photos of a subset ("train", "test"), one photo by name, or all of them (None)."""
    return choose(PHOTOS, which, "photos", ", ".join(BY_NAME))


def choose(photos: Sequence[Photo], which: str | None, family: str, names: str) -> list[Photo]:
    """Of `photos` (the `family` source's), a subset ("train", "test"), one photo by name, or all (None); an
    error names the family's sets and the photos (`names`)."""
    if which is None:
        return list(photos)
    if which in SUBSETS:
        return [p for p in photos if p.subset == which]
    found = [p for p in photos if p.name == which]
    if found:
        return found
    raise SplitcompError(
        f"{family}:{which}: no such subset or photo; use {family}, {family}:train or {family}:test, or one of {names}"
    )


def read_photo(name: str) -> np.ndarray:
    """A photo as HxWx3 uint8 RGB, as it is stored (no crop, no resize)."""
    if name not in BY_NAME:
        raise SplitcompError(f"no photo named {name!r}; photos: {', '.join(BY_NAME)}")
    return _decoded(BY_NAME[name].path())


@functools.lru_cache(maxsize=len(PHOTOS))
def _decoded(path: Path) -> np.ndarray:
    image = read_image(path)
    image.setflags(write=False)  # shared by every source in this process
    return image


class PhotoSource(FrameSource):
    """Endless frames cut from the chosen photos in turn; `last_photo` names the latest frame's photo."""

    def __init__(
        self,
        which: str | None = None,
        width: int = 640,
        height: int = 480,
        seed: int = 0,
        min_scale: float = MIN_SCALE,
        photos: Sequence[Photo] | None = None,
    ) -> None:
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            raise SplitcompError(f"a photo source's frame size must be 1 to {MAX_SIDE} per side, got {width}x{height}")
        if not 0.0 < min_scale <= 1.0:
            raise SplitcompError(f"min_scale must be above 0 and at most 1, got {min_scale}")
        self.photos = select(which) if photos is None else list(photos)
        self._check_installed()
        self.width, self.height, self.seed, self.min_scale = width, height, seed, min_scale
        self.last_photo: str | None = None
        self.rewind()

    def _check_installed(self) -> None:
        """Fail at once when a photo's package is missing: decode the few built-in photos now (kept, cached)."""
        for photo in self.photos:
            self.image(photo)

    def image(self, photo: Photo) -> np.ndarray:
        """The photo's pixels (HxWx3 RGB); the nine built-in ones are decoded once per process."""
        return _decoded(photo.path())

    def read(self) -> np.ndarray:
        index = self._count % len(self.photos)
        self._count += 1
        self.last_photo = self.photos[index].name
        return self.crop(self.image(self.photos[index]), self._rng)

    def crop(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random crop of the frame's aspect ratio at a random scale, mirrored half the time, at the frame size."""
        h, w = image.shape[:2]
        aspect = self.width / self.height
        largest_h = min(float(h), w / aspect)
        scale = rng.uniform(self.min_scale, 1.0)
        crop_h = max(1, min(h, round(largest_h * scale)))
        crop_w = max(1, min(w, round(largest_h * scale * aspect)))
        top = int(rng.integers(0, h - crop_h + 1))
        left = int(rng.integers(0, w - crop_w + 1))
        patch = image[top : top + crop_h, left : left + crop_w]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        shrink = crop_w > self.width or crop_h > self.height
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        return cv2.resize(np.ascontiguousarray(patch), (self.width, self.height), interpolation=interpolation)

    def rewind(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._count = 0
        self.last_photo = None
