"""The page itself (index.html and the two files it loads) and /api/status, which tells it what this studio offers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ament_index_python.packages import get_package_share_directory
from fastapi import APIRouter
from fastapi.responses import FileResponse

from splitcomp_core.bundle import MODES
from splitcomp_core.codec import CODE_BITS, CODEC_NAMES, RAW_BITS
from splitcomp_core.errors import SplitcompError
from splitcomp_tools.studio import adapter
from splitcomp_tools.studio.config import (
    MAX_CALIBRATION_FRAMES,
    MAX_CLASSIFY_IMAGES,
    MAX_FILES,
    MAX_IMAGE_PIXELS,
    MAX_SAMPLE_FRAMES,
)
from splitcomp_tools.studio.errors import Refused
from splitcomp_tools.studio.state import StudioDep

PAGE_FILES = {"studio.js": "text/javascript", "studio.css": "text/css"}  # besides index.html: all the page loads

router = APIRouter()


def static_dir() -> Path:
    """The page's files where the package installs them (share/splitcomp_tools/studio)."""
    return Path(get_package_share_directory("splitcomp_tools")) / "studio"


def check_installed() -> None:
    """Refuse to start a studio whose page is not installed (it would serve only 404s)."""
    page = static_dir()
    if not (page / "index.html").is_file():
        raise SplitcompError(f"{page}: the studio's page is not installed; run `make setup`")


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(static_dir() / "index.html", media_type="text/html")


@router.get("/static/{name}", include_in_schema=False)
def page_file(name: str) -> FileResponse:
    if name not in PAGE_FILES:
        raise Refused(404, f"the page has no file {name!r}")
    return FileResponse(static_dir() / name, media_type=PAGE_FILES[name])


@router.get("/api/status")
def status(studio: StudioDep) -> dict[str, Any]:
    """What this studio offers: ROS or not, frame sources, encoder choices and its limits."""
    return {
        "ros": studio.live is not None,
        "namespace": studio.live.namespace if studio.live is not None else None,
        "trust_pickle": studio.settings.trust_pickle,
        "frame_sources": studio.frame_sources(),
        "bits": [*CODE_BITS, *RAW_BITS],
        "quantization": list(MODES),
        "codecs": list(CODEC_NAMES),
        "methods": list(adapter.RANGE_METHODS),
        "limits": {
            "max_upload_bytes": studio.settings.max_upload_bytes,
            "max_files": MAX_FILES,
            "max_classify_images": MAX_CLASSIFY_IMAGES,
            "max_image_pixels": MAX_IMAGE_PIXELS,
            "max_calibration_frames": MAX_CALIBRATION_FRAMES,
            "max_sample_frames": MAX_SAMPLE_FRAMES,
            "max_cut_tensors": adapter.MAX_CUT_TENSORS,
        },
    }
