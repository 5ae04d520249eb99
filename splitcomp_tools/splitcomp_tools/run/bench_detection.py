"""bench detection: how long a detection tail's post-processing takes per frame, on real frames.

Each frame goes through HeadPipeline (the bundle's own encoding) and TailPipeline as the nodes run them, with the
camera frame's size; the figure is the tail's `post_ms`, which the tail node reports in /diagnostics: the
decoder's heatmap peaks and boxes, NMS, scaling to the camera's pixels and clipping. Beside it, the tail's
ONNX Runtime time, for scale. The goal for CenterFace at 640x480 is at most 2 ms per frame (median).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.files import atomic_write_text
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.cli import ToolParser, UsageError, check_outputs, format_table, int_in, run_cli
from splitcomp_tools.frames import open_source


def measure(bundle_path: Path, source: str, count: int) -> dict:
    """Per-frame post-processing and tail times of up to `count` frames of `source` (median, p95, max)."""
    bundle = load_bundle(bundle_path)
    if bundle.manifest.detection is None:
        raise UsageError(f"{bundle_path} classifies; bench detection times a detection bundle's boxes")
    head, tail = HeadPipeline(bundle, providers=["cpu"]), TailPipeline(bundle, ["cpu"])
    frames = open_source(source)
    post, onnx, boxes, size = [], [], [], (0, 0)
    try:
        for frame in frames.frames(count):
            size = (frame.shape[1], frame.shape[0])
            result = tail(tail.model_id, head(frame).tensors, image_size=size)
            post.append(result.post_ms)
            onnx.append(result.tail_ms)
            boxes.append(len(result.detections or []))
    finally:
        frames.close()
    if not post:
        raise UsageError(f"{source} gave no frame")
    return {
        "bundle": str(bundle_path),
        "source": source,
        "frames": len(post),
        "camera": list(size),
        "model_input": list(tail.decoder.input_size) if tail.decoder else [],
        "boxes_per_frame": float(np.mean(boxes)),
        "post_ms": _stats(post),
        "tail_onnx_ms": _stats(onnx),
    }


def _stats(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p95": float(np.percentile(values, 95)),
        "max": max(values),
    }


def format_result(r: dict) -> str:
    rows = [
        ["tail: decode boxes + NMS (post_ms)", *(f"{r['post_ms'][k]:.3f}" for k in ("median", "p95", "max"))],
        ["tail: ONNX Runtime", *(f"{r['tail_onnx_ms'][k]:.3f}" for k in ("median", "p95", "max"))],
    ]
    width, height = r["model_input"]
    return "\n".join(
        [
            format_table(["ms per frame", "median", "p95", "max"], rows),
            f"{r['frames']} frames of {r['source']} ({r['camera'][0]}x{r['camera'][1]}), model input {width}x{height}, "
            f"{r['boxes_per_frame']:.2f} boxes per frame",
        ]
    )


def build_parser() -> ToolParser:
    p = ToolParser(prog="bench detection", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, metavar="DIR", help="a detection bundle (split of e.g. centerface)")
    p.add_argument("--source", default="video:carphone", help="frames to run (default: video:carphone)")
    p.add_argument("--count", type=int_in(1, 10_000), default=100, help="at most this many frames (default 100)")
    p.add_argument("--json", metavar="FILE", help="also write the result to this file as JSON")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    check_outputs([("--json", args.json)], [])
    result = measure(Path(args.bundle), args.source, args.count)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(format_result(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`bench detection` (argv after its name); bad arguments are one `error:` line (exit 2)."""
    return run_cli(_main, argv)
