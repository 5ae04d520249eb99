"""Command-line options that several commands share: what a bundle needs to know about a model (split, plan), and
which video codecs are measured beside JPEG (calibrate, plan, bench video), and a model input's shape (export, demo).

They describe the model besides its graph (class names, preprocessing, the output), so `split` and
`plan` take them with the same names, help and checks; the library receives the parsed values.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from splitcomp_core.bundle import MAX_IMAGE_SIDE
from splitcomp_tools.cli import UsageError, int_in
from splitcomp_tools.model import centerface
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.split import OUTPUT_KINDS
from splitcomp_tools.model.video import CODECS, CRFS


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """What a bundle needs to know about the model besides its graph: labels, preprocessing, the output (split, plan)."""
    """What a bundle needs to know about the model besides its graph: labels, preprocessing, the output (split, plan)."""
    parser.add_argument(
        "--labels",
        metavar="FILE",
        help="class names: a JSON list or ImageNet class_index.json (default: those the model's export recorded)",
    )
    parser.add_argument(
        "--mean",
        metavar="R,G,B",
        help="per-channel mean in 0..1 units, in the model's colour order (default: recorded by export, or ImageNet)",
    )
    parser.add_argument(
        "--std",
        metavar="R,G,B",
        help="per-channel std in 0..1 units (default: recorded by export, or ImageNet)",
    )
    parser.add_argument("--size", metavar="H[,W]", help="input height and width (default: the model's input shape)")
    parser.add_argument(
        "--bgr",
        action="store_true",
        default=None,
        help="the model expects BGR channel order (default: recorded by export, or RGB)",
    )
    parser.add_argument(
        "--crop",
        nargs="?",
        type=int_in(0, MAX_IMAGE_SIDE),
        const=0,
        metavar="RESIZE",
        help="resize the shorter side to RESIZE (default size/0.875, e.g. 256 for 224) and center-crop; "
        "without --crop frames are stretched to the input size, unless export recorded a crop",
    )
    parser.add_argument("--output", metavar="NAME", help="the class-score output (default: the first graph output)")
    parser.add_argument(
        "--output-kind",
        choices=OUTPUT_KINDS,
        default="auto",
        help="whether the output is logits (the tail applies a softmax) or already probabilities; auto (default) "
        "says probabilities when a Softmax produces it, possibly through reshapes, transposes or casts",
    )
    parser.add_argument(
        "--rebase-batch",
        action="store_true",
        help="when the model reads its batch size from the input (x.view(x.size(0), -1)), which bypasses every "
        "tensor before that view, read it from the tensor the view reshapes instead, once measured to have the same "
        "dim 0 (analyze says when this applies)",
    )
    parser.add_argument(
        "--dynamic-batch",
        action="store_true",
        help="make head and tail take any batch (the manifest records -1), also from a model exported at batch 1, "
        "so a tail can answer many frames in one run; the rewritten model must answer a batch as it answers "
        "each frame alone",
    )


def preprocessing_from(args: argparse.Namespace) -> dict[str, Any]:
    """The preprocessing fields the options of `add_model_arguments` set (the rest: what export recorded)."""
    size = _ints(args.size, "--size", (1, 2)) if args.size else None
    if size is not None and not all(1 <= d <= MAX_IMAGE_SIDE for d in size):
        raise UsageError(f"--size {args.size!r}: height and width must be from 1 to {MAX_IMAGE_SIDE}")
    given = {
        "mean": None if args.mean is None else _floats(args.mean, "--mean"),
        "std": None if args.std is None else _floats(args.std, "--std"),
        "size": None if size is None else (size[0], size[-1]),
        "bgr": args.bgr,
        "crop_resize": args.crop,
    }
    return {key: value for key, value in given.items() if value is not None}


def _ints(text: str, option: str, counts: Sequence[int]) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected comma-separated integers") from None
    if len(values) not in counts:
        raise UsageError(f"{option} {text!r}: expected {' or '.join(map(str, counts))} values")
    return values


def _floats(text: str, option: str) -> tuple[float, float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected comma-separated numbers") from None
    if len(values) != 3 or not all(map(math.isfinite, values)):
        raise UsageError(f"{option} {text!r}: expected 3 finite numbers, one per channel")
    first, second, third = values
    return first, second, third


def video_codecs(text: str) -> tuple[str, ...]:
    """An argparse `type`: a comma list of model/video's codecs, or `none`."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if names == ("none",):
        return ()
    unknown = [n for n in names if n not in CODECS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(CODECS)}, or none; got {text!r}")
    return names


def add_video_codecs(parser: argparse.ArgumentParser) -> None:
    """--video-codecs: which live video codecs (model/video) are measured beside JPEG-95, on the same frames."""
    parser.add_argument(
        "--video-codecs",
        type=video_codecs,
        default=CODECS,
        metavar="LIST",
        help=f"video codecs measured beside JPEG, really encoded and decoded in live settings (zerolatency, no "
        f"B-frames, yuv420p) at CRF {', '.join(map(str, CRFS))}, of the camera frame and of the frame at the model's "
        f"scale: {','.join(CODECS)} (the default) or none; the H.264 camera-frame rows also raise the rule's floor",
    )


def add_bottleneck(parser: argparse.ArgumentParser) -> None:
    """--bottleneck: bundles `distill` made of the command's bundle, judged beside its encodings (calibrate, bench
    video) on the same frames, against the same unsplit answers, by the same rule."""
    parser.add_argument(
        "--bottleneck",
        action="append",
        default=[],
        metavar="DIR",
        help="a bundle `distill` made of this one: its entropy-coded symbols judged on the same frames against the "
        "same unsplit answers and by the same rule (repeatable; refused where the judged frames show its training "
        "scenes)",
    )


def input_shape(text: str) -> list[int]:
    """`--input-shape` as positive dims, bounded in size before any tensor of that shape exists."""
    try:
        shape = [int(d) for d in text.split(",")]
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: expected comma-separated integers like 1,3,224,224") from None
    if not shape or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape {text!r}: dimensions must be positive")
    gr.check_input_size(shape, "--input-shape")
    return shape


def centerface_size(text: str | None) -> tuple[int, int]:
    """`--input-shape` of a centerface export as (height, width), bounded; None is the default 480x640."""
    if text is None:
        return centerface.DEFAULT_SIZE
    shape = input_shape(text)
    if len(shape) != 4 or shape[:2] != [1, 3]:
        raise UsageError(f"--input-shape {text}: centerface takes 1,3,HEIGHT,WIDTH")
    return shape[2], shape[3]
