"""calibrate: store clip ranges for a bundle's cut tensors, measured on real frames, and print what each way
to send the features costs (the work is splitcomp_tools.model.calibrate's; the text and plot, report.calibrate's).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from splitcomp_core.bundle import HEAD_FILE, LABELS_FILE, MANIFEST_FILE, TAIL_FILE
from splitcomp_tools.cli import ToolParser, UsageError, check_outputs, int_in, progress_bars, run_cli
from splitcomp_tools.cli_options import add_bottleneck, add_video_codecs
from splitcomp_tools.model.agreement import check_enough_frames
from splitcomp_tools.model.calibrate import DEFAULT_COUNT, MAX_COUNT, calibrate
from splitcomp_tools.model.calibration import InsufficientFrames, save_calibration
from splitcomp_tools.model.ranges import DEFAULT_PERCENTILE, RANGE_METHODS
from splitcomp_tools.report.agreement import RULE_HELP
from splitcomp_tools.report.calibrate import describe_bottlenecks, describe_choice, format_table, json_text, plot_png


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="calibrate",
        description="Measure a bundle's cut tensors on real frames, store clip ranges (per tensor and per channel) "
        "in its manifest, and print a table of bits x range method x codec against top-1 agreement with the "
        "unsplit model (on all frames, and on confident frames, each with its 95 % Wilson interval, and the mean "
        "top-5 overlap) and bytes per frame, next to sending the frames as JPEG, H.264 or H.265. Consecutive video "
        "frames are not "
        "independent, so the intervals are optimistic on clips.",
    )
    parser.add_argument("bundle", help="bundle directory written by split")
    parser.add_argument(
        "--images",
        required=True,
        metavar="PATH",
        help="frames to find the ranges on: 'photos:train' (real photos from the installed wheels), 'generator' "
        "(synthetic frames of the demo's shapes), a folder of images, a video file, or a rosbag2 folder (with --topic)",
    )
    parser.add_argument(
        "--eval-images",
        metavar="PATH",
        help="measure the table on these frames instead: other scenes than --images, e.g. "
        "photos:test,video:bikes,video:carphone (a comma list; photos:test shares no photo with photos:train); "
        "default: the calibration frames themselves",
    )
    parser.add_argument("--topic", default="", help="image topic of a rosbag2 (sensor_msgs/Image or CompressedImage)")
    parser.add_argument(
        "--count", type=int_in(1, MAX_COUNT), default=DEFAULT_COUNT, help=f"frames to use (default {DEFAULT_COUNT})"
    )
    parser.add_argument(
        "--eval-count",
        type=int_in(1, MAX_COUNT),
        help="frames of each source of --eval-images to use (a clip gives at most what it holds; default: --count)",
    )
    parser.add_argument(
        "--bits",
        type=int,
        default=None,
        help="bit width the stored ranges are searched for (default: the bundle's quantization.bits, 4 for raw floats)",
    )
    parser.add_argument(
        "--method",
        choices=RANGE_METHODS,
        default="mse",
        help="ranges to store: mse = least quantization error at --bits (default), percentile = --percentile clip",
    )
    parser.add_argument(
        "--percentile",
        type=float,
        default=DEFAULT_PERCENTILE,
        help=f"percentile clip, also where the mse search starts (default {DEFAULT_PERCENTILE})",
    )
    parser.add_argument(
        "--target-agreement",
        type=float,
        metavar="FRACTION",
        help="store as the head's default (instead of --bits with --method per tensor) the encoding (bits, range "
        f"method, codec) chosen by the rule: {RULE_HELP}; where none meets it, the one with the highest lower bound",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        default=None,
        metavar="P",
        help="a judged frame is confident where the unsplit model's top-1 probability is >= P (default 0.5); for "
        "a detection bundle, an unsplit box is confident where its score is >= P (default 0.8)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the frame source and of the value sampling (evaluation: seed + 1)"
    )
    add_video_codecs(parser)
    add_bottleneck(parser)
    parser.add_argument("--json", metavar="FILE", help="write the results and the stored ranges as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write a PNG of bytes per frame against agreement")
    parser.add_argument("--dry-run", action="store_true", help="measure and report, but leave the manifest as it is")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    outputs = [("--json", args.json), ("--plot", args.plot)]
    check_outputs(
        outputs, [Path(args.bundle) / name for name in (MANIFEST_FILE, HEAD_FILE, TAIL_FILE, LABELS_FILE)], files=True
    )
    if args.target_agreement is not None and not 0.0 < args.target_agreement < 1.0:
        raise UsageError(f"--target-agreement must be above 0 and below 1, e.g. 0.99; got {args.target_agreement}")
    if args.target_agreement is not None:
        judged = args.eval_images or args.images
        judged_count = args.eval_count if args.eval_images and args.eval_count else args.count
        too_few = check_enough_frames(judged, judged_count, args.target_agreement)
        if too_few is not None:
            raise UsageError(too_few)
    sources = [args.images, *([args.eval_images] if args.eval_images else [])]
    with progress_bars(not args.quiet and sys.stderr.isatty(), {"frames": sources}) as bars:
        calibration = calibrate(
            args.bundle,
            args.images,
            args.count,
            args.topic,
            args.bits,
            args.method,
            args.percentile,
            args.seed,
            eval_images=args.eval_images,
            eval_count=args.eval_count,
            on_progress=bars,
            confidence=args.confidence,
            video_codecs=args.video_codecs,
            bottlenecks=args.bottleneck,
        )
    if args.target_agreement is not None:
        try:
            choice = calibration.cheapest(args.target_agreement)
        except InsufficientFrames:
            print(format_table(calibration))  # what was measured, though nothing is chosen or written
            raise
        calibration = calibration.with_default(choice or calibration.best())
    side_files: dict[Path, bytes | str] = {}
    if args.plot:
        side_files[Path(args.plot)] = plot_png(calibration)
    if args.json:
        side_files[Path(args.json)] = json_text(calibration, written=not args.dry_run)
    save_calibration(calibration, side_files, args.dry_run)
    for note in calibration.notes:
        print(f"warning: {note}", file=sys.stderr)
    print(format_table(calibration))
    if args.target_agreement is not None:
        print(describe_choice(calibration, args.target_agreement))
        for line in describe_bottlenecks(calibration, args.target_agreement):
            print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools calibrate`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
