"""What a studio serves and how much it accepts: one Settings per server, the limits in one place.

Every size a request controls is bounded here, before anything is allocated or written: bytes per
request, files and images per request, image pixels, frames to calibrate on, jobs at once, and how
many models and bundles the workspace keeps.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_WORKSPACE = Path("out/studio")
DEFAULT_MAX_UPLOAD_MB = 256
MAX_JSON_BYTES = 4 << 20  # a JSON request (a split's labels file included)
MAX_FIELD_BYTES = 64 << 10  # one text field of a multipart form
MAX_FILES = 500  # files in one upload (a folder of calibration images)
MAX_CLASSIFY_IMAGES = 16
MAX_IMAGE_PIXELS = 40_000_000  # a 7300x5500 photo; read from the header before decoding
MAX_CALIBRATION_FRAMES = 2000
MAX_SAMPLE_FRAMES = 16
MAX_INPUT_SIDE = 8192  # a model input height or width a split may ask for
MAX_MODELS = 64
MAX_BUNDLES = 128
MAX_RESULT_SETS = 20  # classify results (overlay images) kept per bundle
MAX_ACTIVE_JOBS = 2  # calibrations running or waiting; one more is refused with 429
MAX_FINISHED_JOBS = 64  # finished jobs whose results stay readable


@dataclasses.dataclass(frozen=True)
class Settings:
    """One server's choices: where it writes, what it trusts, and whether it joins a ROS graph."""

    workspace: Path = DEFAULT_WORKSPACE
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB << 20
    trust_pickle: bool = False
    ros: bool = False
    namespace: str = ""
    max_active_jobs: int = MAX_ACTIVE_JOBS
