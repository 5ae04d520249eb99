"""The `corpus` frame sources: 230 natural photos inside the pinned ai-benchmark wheel, split once for good.

Nine photos (`photos`) are too few to train anything on. ai-benchmark 0.1.2 installs 230: 100 varied stock
photos at 512x512 (`stock`), 100 street and tree phone photos at 682x1024 (`street`) and 30 photos of cats
(`cats`, beside their segmentation masks, which are not photos and are left out). The package is Apache-2.0
but the photos' source is not stated, so they are read where pip put them and never copied; the package is
never imported.

The split is fixed by the file's number, never by a seed: every fifth photo of each kind (numbers 4, 9, 14,
...) is held out in `corpus:test` (46 photos), the others train in `corpus:train` (184). No photo is in both,
so whatever is fitted or trained on `corpus:train` is judged on `corpus:test` on scenes it never saw.
`corpus` is all 230 and `corpus:NAME` one photo (e.g. `corpus:cats-4`). Frames are cut from the photos as the
`photos` source cuts them (PhotoSource: a random crop at the frame size, reproducible by the seed), one photo
after the other; each read decodes its photo again, so a source holds one photo in memory, not 230.
"""

from __future__ import annotations

import numpy as np

from splitcomp_core.images import read_image
from splitcomp_tools.frames.photos import MIN_SCALE, Photo, PhotoSource, choose

CORPUS = "corpus"
PACKAGE, PIP_NAME = "ai_benchmark", "ai-benchmark"
KINDS = (("stock", "data/classification", 100), ("street", "data/enhancement", 100), ("cats", "data/segmentation", 30))
HELD_OUT_EVERY = 5  # photo number n is held out when n % 5 == 4
PHOTOS = tuple(
    Photo(f"{kind}-{n}", PACKAGE, f"{folder}/{n}.jpg", PIP_NAME, "test" if n % HELD_OUT_EVERY == 4 else "train")
    for kind, folder, count in KINDS
    for n in range(count)
)
BY_NAME = {p.name: p for p in PHOTOS}


def select(which: str | None = None) -> list[Photo]:
    """The corpus photos of a subset ("train", "test"), one photo by name, or all of them (None)."""
    return choose(PHOTOS, which, CORPUS, ", ".join(f"{kind}-0..{kind}-{count - 1}" for kind, _, count in KINDS))


class CorpusSource(PhotoSource):
    """Endless frames cut from the chosen corpus photos in turn, each photo decoded when its turn comes."""

    def __init__(
        self, which: str | None = None, width: int = 640, height: int = 480, seed: int = 0, min_scale: float = MIN_SCALE
    ) -> None:
        super().__init__(which, width, height, seed, min_scale, photos=select(which))

    def _check_installed(self) -> None:
        """Fail at once when the wheel is missing or incomplete, without decoding 230 photos."""
        for photo in self.photos:
            photo.path()

    def image(self, photo: Photo) -> np.ndarray:
        """The photo decoded now (read_image checks its size before decoding); nothing is kept."""
        return read_image(photo.path())
