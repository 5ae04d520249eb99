"""The toy demo bundle: the shipped shapes model, prepared as every demo model is (see model.prepare).

The fast tests, `demo --model shapes` and the pipeline benchmark start from this bundle: it is split
where a robot would, calibrated on generated frames and judged on other generated frames.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from ament_index_python.packages import get_package_share_directory

from splitcomp_tools.model.prepare import DemoModel
from splitcomp_tools.model.prepare import prepare_bundle as prepare_demo_bundle
from splitcomp_tools.model.split import Preprocessing

DEMO_DIR = Path(get_package_share_directory("splitcomp_tools")) / "models" / "shapes"
DEMO_MODEL = DEMO_DIR / "model.onnx"
DEMO_LABELS = DEMO_DIR / "labels.json"


def _input_size(model_path: Path) -> tuple[int, int]:
    """(height, width) of an NCHW image model's input."""
    dims = onnx.load(str(model_path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return dims[2].dim_value, dims[3].dim_value


SHAPES = DemoModel(
    name="shapes",
    onnx=lambda cache, quiet: DEMO_MODEL,
    calibration_images="generator",
    evaluation_images="generator",  # calibrate opens it with another seed: other frames
    # The model was trained on square frames: crop 4:3 camera frames instead of squashing them.
    preprocessing=Preprocessing(crop_resize=max(_input_size(DEMO_MODEL))),
    labels=DEMO_LABELS,
)


def prepare_bundle(out: Path, calibration_frames: int = 200, quiet: bool = False, evaluation_frames: int = 100) -> Path:
    """Split the demo model at `choose_cut` and store 4-bit ranges calibrated on generated frames."""
    return prepare_demo_bundle(
        SHAPES, Path(out), calibration_frames=calibration_frames, evaluation_frames=evaluation_frames, quiet=quiet
    ).path
