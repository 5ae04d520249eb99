"""`open_source`: what a user types (`photos`, `corpus:train`, `video:bikes`, `generator`, a folder, a video, a
camera, a rosbag2, or several of them separated by commas) to a FrameSource; `scenes`: which photos or clips a
source shows, to tell whether two sources share any."""

from __future__ import annotations

import os
from pathlib import Path

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.frames.base import FrameSource
from splitcomp_tools.frames.corpus import CORPUS, CorpusSource
from splitcomp_tools.frames.corpus import select as corpus_photos
from splitcomp_tools.frames.files import VIDEO_SUFFIXES, CaptureSource, FolderSource
from splitcomp_tools.frames.generator import GeneratorSource
from splitcomp_tools.frames.photos import PhotoSource
from splitcomp_tools.frames.photos import select as photos_of
from splitcomp_tools.frames.videos import VIDEO, ConcatSource, clip_path

PHOTOS = "photos"


def open_source(spec: str, width: int = 640, height: int = 480, seed: int = 0, topic: str = "") -> FrameSource:
    """A FrameSource for `spec`; a SplitcompError says what was wrong and what is accepted.

    A comma list (`photos:test,video:bikes`) is one ConcatSource of its parts, in order; a part that
    cannot be opened closes the ones already open.
    """
    if "," in spec and not Path(os.path.expanduser(spec)).exists():
        parts: list[FrameSource] = []
        try:
            for part in spec.split(","):
                parts.append(open_source(part.strip(), width, height, seed, topic))
        except SplitcompError:
            for opened in parts:
                opened.close()
            raise
        return ConcatSource(parts)
    return _open_one(spec, width, height, seed, topic)


def _open_one(spec: str, width: int, height: int, seed: int, topic: str) -> FrameSource:
    if spec == "generator":
        return GeneratorSource(width, height, seed)
    if spec == PHOTOS or spec.startswith(PHOTOS + ":"):
        return PhotoSource(spec.partition(":")[2] or None, width, height, seed)
    if spec == CORPUS or spec.startswith(CORPUS + ":"):
        return CorpusSource(spec.partition(":")[2] or None, width, height, seed)
    if spec.startswith(VIDEO + ":"):
        return CaptureSource(clip_path(spec.partition(":")[2]), "video file")
    if spec.isdigit() or spec.startswith("/dev/video"):
        return CaptureSource(int(spec) if spec.isdigit() else spec, "camera device")
    path = Path(os.path.expanduser(spec))
    if path.is_dir() and (path / "metadata.yaml").is_file():
        from splitcomp_tools.frames.rosbag import RosbagSource  # rosbags is imported only for bags

        return RosbagSource(path, topic)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return CaptureSource(str(path), "video file")
    if not path.exists():
        raise SplitcompError(
            f"{spec}: no such file or folder; use 'photos' (or photos:train, photos:test), corpus:train, corpus:test, "
            f"video:bikes, "
            f"video:carphone, 'generator', "
            f"a folder of images, a video file, "
            f"a camera device such as /dev/video0, a rosbag2 folder with --topic, or several joined by commas"
        )
    raise SplitcompError(f"{spec}: not a folder, rosbag2 or video file ({', '.join(sorted(VIDEO_SUFFIXES))})")


def scenes(spec: str) -> set[str]:
    """What a source shows, as names two sources can share: each photo of a photos or corpus set, otherwise the
    part itself (a clip, a folder, a camera); the generator draws new scenes for every frame, so none."""
    found: set[str] = set()
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        family, _, which = part.partition(":")
        if part == "generator":
            continue
        if family in (PHOTOS, CORPUS):
            chosen = (photos_of if family == PHOTOS else corpus_photos)(which or None)
            found |= {f"{family}:{p.name}" for p in chosen}
        else:
            found.add(part)
    return found
