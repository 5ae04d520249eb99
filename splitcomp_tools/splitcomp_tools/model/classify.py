"""classify: run image files (or frames of a source) through a bundle's split pipeline, as the robot and edge would.

The command-line form of the seed's "test an image" page: each image goes through the head,
the feature codec at the chosen bits/codec, and the tail, and the top classes and the bytes
that would cross the network are printed. `--frames photos:test --count 5` takes frames from any
frame source instead (real photos, the generator, a folder, a video, a rosbag2 with --topic).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from splitcomp_core.bundle import MODES, load_bundle
from splitcomp_core.codec import CODEC_NAMES
from splitcomp_core.errors import SplitcompError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.images import read_image
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.cli import run_cli
from splitcomp_tools.frames import open_source

MAX_COUNT = 100_000


def classify(bundle_path: str, images: Sequence[str], config: EncoderConfig, top_k: int = 3) -> list[dict]:
    """Each image file through HeadPipeline -> codec -> TailPipeline: one row per image."""
    return classify_frames(bundle_path, ((str(p), read_image(p)) for p in images), config, top_k)


def classify_frames(
    bundle_path: str, frames: Iterable[tuple[str, np.ndarray]], config: EncoderConfig, top_k: int = 3
) -> list[dict]:
    """(name, HxWx3 RGB frame) pairs through HeadPipeline -> codec -> TailPipeline: one row per frame."""
    bundle = load_bundle(bundle_path)
    head = HeadPipeline(bundle, config, providers=["cpu"])
    tail = TailPipeline(bundle, ["cpu"], top_k=top_k)
    for warning in head.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    rows = []
    for name, frame in frames:
        sent = head(frame, "rgb8")
        got = tail(bundle.manifest.model_id, sent.tensors)
        rows.append(
            {
                "image": name,
                "results": [{"class_id": c, "label": label, "score": score} for c, label, score in got.results],
                "feature_bytes": got.feature_bytes,
                "head_ms": sent.preprocess_ms + sent.head_ms + sent.encode_ms,
                "tail_ms": got.total_ms,
            }
        )
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="classify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("bundle", help="bundle directory (from split)")
    p.add_argument("images", nargs="*", help="image files (PNG, JPEG, ...)")
    p.add_argument(
        "--frames",
        metavar="SOURCE",
        help="instead of files, frames of a source: photos:test (real photos), generator, a folder, a video, "
        "or a rosbag2 (with --topic)",
    )
    p.add_argument("--count", type=int, default=5, help="frames to take from --frames (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --frames source (default: 0)")
    p.add_argument("--topic", default="", help="image topic of a rosbag2 given to --frames")
    p.add_argument("--bits", type=int, default=4, help="1..8 quantize, 16/32 raw floats (default: 4)")
    p.add_argument("--quantization", default="calibrated", choices=MODES, help="ranges (default: calibrated)")
    p.add_argument("--codec", default="none", choices=CODEC_NAMES, help="entropy coder (default: none)")
    p.add_argument("--top-k", type=int, default=3, help="classes to show (default: 3)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    config = EncoderConfig(bits=args.bits, mode=args.quantization, codec=args.codec)
    if args.frames is None:
        if not args.images:
            raise SplitcompError("give image files, or --frames SOURCE (e.g. --frames photos:test --count 5)")
        missing = [p for p in args.images if not Path(p).is_file()]
        if missing:
            raise SplitcompError(f"no such image file: {', '.join(missing)}")
        rows = classify(args.bundle, args.images, config, args.top_k)
    else:
        if args.images:
            raise SplitcompError("give either image files or --frames, not both")
        if not 1 <= args.count <= MAX_COUNT:
            raise SplitcompError(f"--count must be 1..{MAX_COUNT}, got {args.count}")
        source = open_source(args.frames, seed=args.seed, topic=args.topic)
        try:
            named = ((f"{args.frames}#{i}", frame) for i, frame in enumerate(source.frames(args.count)))
            rows = classify_frames(args.bundle, named, config, args.top_k)
        finally:
            source.close()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        best = ", ".join(f"{r['label']} {r['score']:.1%}" for r in row["results"])
        print(
            f"{row['image']}: {best}  ({row['feature_bytes']} B, head {row['head_ms']:.1f} ms, "
            f"tail {row['tail_ms']:.1f} ms)"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
