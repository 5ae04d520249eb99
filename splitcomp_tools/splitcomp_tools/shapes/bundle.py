"""The demo bundle: the shipped shapes model, split where a robot would and calibrated on generated frames.

The demo, the pipeline benchmark and the tests all start from this bundle, so they live here rather
than in the demo app.
"""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
from ament_index_python.packages import get_package_share_directory

from splitcomp_core.bundle import update_quantization
from splitcomp_core.errors import SplitcompError
from splitcomp_tools.model.analyze import Analysis, CutReport, analyze_model
from splitcomp_tools.model.calibrate import calibrate, format_table
from splitcomp_tools.model.split import Preprocessing, split_model

DEMO_DIR = Path(get_package_share_directory("splitcomp_tools")) / "models" / "shapes"
DEMO_MODEL = DEMO_DIR / "model.onnx"
DEMO_LABELS = DEMO_DIR / "labels.json"
MAX_HEAD_FLOPS_SHARE = 0.5


def choose_cut(analysis: Analysis, max_head_flops_share: float = MAX_HEAD_FLOPS_SHARE) -> CutReport:
    """The single-tensor cut with the fewest bytes whose head does at most half the model's work.

    The robot is the weaker machine, so the head may not carry most of the compute; within that,
    the smallest feature map is the least traffic. Among cuts of equal size the latest wins: the
    elementwise ops between them (a residual Add, then its ReLU) cost nothing, and a post-ReLU
    tensor has no negative tail to spend quantization levels on.
    """
    fitting = [
        c for c in analysis.cuts if len(c.tensors) == 1 and c.bytes_4bit and c.head_flops_share <= max_head_flops_share
    ]
    if not fitting:
        raise SplitcompError(
            f"{analysis.model}: no single-tensor cut leaves the head at most {max_head_flops_share:.0%} of the compute"
        )
    return min(fitting, key=lambda c: (c.bytes_4bit, -c.position))


def prepare_bundle(out: Path, calibration_frames: int = 200, quiet: bool = False) -> Path:
    """Split the demo model at `choose_cut` and store ranges calibrated on generated frames."""
    cut = choose_cut(analyze_model(DEMO_MODEL))
    if not quiet:
        print(
            f"cut at {cut.tensors[0]} {cut.shapes[0]}: {cut.bytes_4bit} bytes at 4 bits, "
            f"head {cut.head_flops_share:.0%} of the FLOPs"
        )
    # The model was trained on square frames: crop 4:3 camera frames instead of squashing them.
    crop = Preprocessing(crop_resize=max(_input_size(DEMO_MODEL)))
    split_model(DEMO_MODEL, cut.tensors, out, preprocessing=crop, labels_path=DEMO_LABELS, overwrite=True)
    calibration = calibrate(
        out, "generator", count=calibration_frames, bits=4, progress=not quiet and sys.stderr.isatty()
    )
    update_quantization(out, calibration.quantization)
    if not quiet:
        print(format_table(calibration))
    return Path(out)


def _input_size(model_path: Path) -> tuple[int, int]:
    """(height, width) of an NCHW image model's input."""
    dims = onnx.load(str(model_path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return dims[2].dim_value, dims[3].dim_value
