"""classify: run image files (or frames of a source) through a bundle's split pipeline, as the robot and edge would.

The command-line form of the seed's "test an image" page: each image goes through the head,
the feature codec at the chosen bits/codec, and the tail, and the top classes and the bytes
that would cross the network are printed. `--frames photos:test --count 5` takes frames from any
frame source instead (real photos, the generator, a folder, a video, a rosbag2 with --topic, or a comma
list of them) and judges them: top-1 agreement with the unsplit model on all frames and on confident
frames (its top-1 probability >= --confidence), with 95 % Wilson intervals, and the mean top-5
overlap, beside JPEG-95 of the full frame on the same frames.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from splitcomp_core.bundle import MODES
from splitcomp_core.codec import CODEC_NAMES
from splitcomp_core.quantization import EncoderConfig
from splitcomp_tools.cli import ToolParser, UsageError, float_in, int_in, run_cli
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE
from splitcomp_tools.model.classify import MAX_COUNT, classify, classify_source
from splitcomp_tools.report.classify import format_judged, format_rows


def build_parser() -> ToolParser:
    p = ToolParser(prog="classify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle directory (from split)")
    p.add_argument("images", nargs="*", help="image files (PNG, JPEG, ...)")
    p.add_argument(
        "--frames",
        metavar="SOURCE",
        help="instead of files, frames of a source: photos:test (real photos), generator, a folder, a video, "
        "or a rosbag2 (with --topic)",
    )
    p.add_argument("--count", type=int_in(1, MAX_COUNT), default=5, help="frames to take from --frames (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --frames source (default: 0)")
    p.add_argument("--topic", default="", help="image topic of a rosbag2 given to --frames")
    p.add_argument("--bits", type=int, default=4, help="1..8 quantize, 16/32 raw floats (default: 4)")
    p.add_argument("--quantization", default="calibrated", choices=MODES, help="ranges (default: calibrated)")
    p.add_argument("--codec", default="none", choices=CODEC_NAMES, help="entropy coder (default: none)")
    p.add_argument("--top-k", type=int_in(1, 1000), default=3, help="classes to show (default: 3)")
    p.add_argument(
        "--confidence",
        type=float_in(0.0, 1.0),
        default=DEFAULT_CONFIDENCE,
        metavar="P",
        help="--frames: a frame is confident where the unsplit model's top-1 probability is >= P (default 0.5)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document instead of a table (with --frames: rows, confidence and agreement)",
    )
    return p


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    config = EncoderConfig(bits=args.bits, mode=args.quantization, codec=args.codec)
    if args.frames is None:
        if not args.images:
            raise UsageError("give image files, or --frames SOURCE (e.g. --frames photos:test --count 5)")
        missing = [p for p in args.images if not Path(p).is_file()]
        if missing:
            raise UsageError(f"no such image file: {', '.join(missing)}")
        rows = classify(args.bundle, args.images, config, args.top_k, _warn)
    else:
        if args.images:
            raise UsageError("give either image files or --frames, not both")
        judged = classify_source(
            args.bundle, args.frames, args.count, config, args.top_k, args.seed, args.topic, _warn, args.confidence
        )
        encoding = f"bits {args.bits}, quantization {args.quantization}, codec {args.codec}"
        print(json.dumps(judged.to_json(), indent=1) if args.json else format_judged(judged, encoding))
        return 0
    if args.json:
        print(json.dumps(rows, indent=1))
    elif rows:
        print(format_rows(rows))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools classify`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
