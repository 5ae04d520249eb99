"""The `photos` frame source: real photographs read from the installed wheels, cut into camera-like frames."""

import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.frames import open_source
from splitcomp_tools.frames.installed import MissingPackageError, installed_file
from splitcomp_tools.frames.photos import PHOTOS, PhotoSource, read_photo, select

REPO = Path(__file__).resolve().parents[2]


def _cycle(spec: str, seed: int = 0, width: int = 640, height: int = 480) -> tuple[list[np.ndarray], list[str]]:
    """Two full rounds of a source's photos: the frames and the photo each came from."""
    source = open_source(spec, width, height, seed)
    assert isinstance(source, PhotoSource)
    frames, names = [], []
    for _ in range(2 * len(source.photos)):
        frames.append(source.read())
        names.append(source.last_photo)
    return frames, names


def test_frames_are_camera_sized_rgb_and_reproducible_by_seed():
    frames, names = _cycle("photos")
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames)
    again, _ = _cycle("photos")
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))
    other, other_names = _cycle("photos", seed=1)
    assert other_names == names  # the photos come in turn; the crops are what the seed changes
    assert not any(np.array_equal(a, b) for a, b in zip(frames, other))
    small, _ = _cycle("photos:test", width=320, height=200)
    assert {f.shape for f in small} == {(200, 320, 3)}


def test_crops_scales_and_flips_vary_the_frames_of_one_photo():
    source = PhotoSource("coffee", 640, 480, seed=4)
    frames = [source.read().astype(np.int16) for _ in range(12)]
    assert len({f.tobytes() for f in frames}) == 12
    photo = read_photo("coffee")  # 400x600: the 4:3 crops are upscaled, like a camera closer to the cup
    assert photo.shape == (400, 600, 3)
    mirrored = [np.abs(f - f[:, ::-1]).mean() for f in frames]
    assert min(mirrored) > 5, "a frame equal to its mirror image would not tell flips apart"
    source.rewind()
    assert np.array_equal(source.read(), frames[0])


def test_train_and_test_share_no_photo_and_together_are_all():
    _, train = _cycle("photos:train")
    _, test = _cycle("photos:test")
    _, every = _cycle("photos")
    assert set(train) and set(test) and not set(train) & set(test)
    assert set(train) | set(test) == set(every) == {p.name for p in PHOTOS}
    subset_of = {p.name: p.subset for p in PHOTOS}
    assert subset_of["motorcycle_left"] == subset_of["motorcycle_right"]  # a stereo pair: one scene
    assert {"chelsea", "coffee"} <= set(test)
    assert [p.name for p in select("chelsea")] == ["chelsea"]


def test_photos_come_from_the_installed_packages_not_the_repository():
    installed = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    tracked_names = {Path(line).name for line in tracked.splitlines()}
    for photo in PHOTOS:
        path = photo.path()
        assert path.is_file() and any(path.resolve().is_relative_to(root) for root in installed)
        assert path.name not in tracked_names
        image = read_photo(photo.name)
        assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 300
        assert image.std(axis=(0, 1)).min() > 10 and np.ptp(image.mean(axis=(0, 1))) > 1  # colour, not grey


def test_bad_names_and_missing_packages_say_what_to_do():
    with pytest.raises(SplitcompError, match="photos:train or photos:test"):
        open_source("photos:holiday")
    with pytest.raises(MissingPackageError, match=r"requirements/tools\.txt"):
        installed_file("splitcomp_no_such_package", "data/x.png", "no-such-package")
    with pytest.raises(MissingPackageError, match="reinstall"):
        installed_file("skimage", "data/no_such_photo.png", "scikit-image")
