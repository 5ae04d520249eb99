"""bench pipeline: image_source -> head_node -> tail_node over real DDS, timed stage by stage.

Framework overhead is everything but the two ONNX Runtime runs: image conversion and
preprocessing, encoding, serialization and DDS of the features, decoding and post-processing.
It is the median latency minus the medians of head ONNX, tail ONNX and camera transport (the
head's input delay, which a camera driver on the robot adds anyway), all from the nodes'
/diagnostics: the probe only listens to the classifications, as a deployment would, because
every extra reliable subscriber makes the head's publish slower.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from splitcomp_core.codec import CODE_BITS, CODEC_NAMES, RAW_BITS
from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write_text
from splitcomp_tools.cli import ToolParser, check_outputs, float_in, run_cli
from splitcomp_tools.model.prepare import DEFAULT_CACHE, prepare_bundle
from splitcomp_tools.nodes.image_source import RATE_RANGE
from splitcomp_tools.run.demo_models import DEMO_MODELS
from splitcomp_tools.run.pipeline_run import PipelineRun


def _p50(diagnostics: dict, node: str, key: str) -> float:
    value = diagnostics.get(f"splitcomp: /{node}", {}).get(f"{key}.p50")
    return float(value) if value is not None else float("nan")


def measure(run: PipelineRun, frames: int, wall_s: float) -> dict:
    results = run.seen.results
    if not results:
        raise SplitcompError(f"no classification arrived; see the logs in {run.log_dir}")
    diag = run.seen.diagnostics
    latency = np.array([r.latency_ms for r in results])
    head_onnx = _p50(diag, "head_node", "head_ms")
    tail_onnx = _p50(diag, "tail_node", "tail_ms")
    camera = _p50(diag, "head_node", "input_delay_ms")
    head_counts = diag.get("splitcomp: /head_node", {})
    stamps = sorted(r.header.stamp.sec + r.header.stamp.nanosec * 1e-9 for r in results)
    return {
        "frames_published": frames,
        "frames_classified": len(results),
        "dropped_by_head": int(head_counts.get("dropped", 0)),
        "lost": frames - len(results),
        "lost_before_tail": int(diag.get("splitcomp: /tail_node", {}).get("lost", 0)),  # sequence gaps the tail saw
        "fps": (len(stamps) - 1) / (stamps[-1] - stamps[0]) if stamps[-1] > stamps[0] else 0.0,
        "wall_s": wall_s,
        "median_ms": {
            "camera_transport": camera,
            "preprocess": _p50(diag, "head_node", "preprocess_ms"),
            "head_onnx": head_onnx,
            "encode": _p50(diag, "head_node", "encode_ms"),
            "decode": _p50(diag, "tail_node", "decode_ms"),
            "tail_onnx": tail_onnx,
            "postprocess": _p50(diag, "tail_node", "post_ms"),
            "end_to_end_latency": float(np.median(latency)),
            "framework_overhead": float(np.median(latency)) - head_onnx - tail_onnx - camera,
        },
        "latency_p95_ms": float(np.percentile(latency, 95)),
        "bytes_per_frame": float(np.median([r.feature_bytes for r in results])),
    }


STAGE_ROWS = (
    ("camera_transport", "camera transport (image_source → head)"),
    ("preprocess", "head: image conversion and preprocessing"),
    ("head_onnx", "head: ONNX Runtime"),
    ("encode", "head: quantize + pack"),
    ("decode", "tail: validate + decode"),
    ("tail_onnx", "tail: ONNX Runtime"),
    ("postprocess", "tail: softmax + top-k"),
)


def format_result(result: dict) -> str:
    """The README's table for one run: median milliseconds per stage, latency, overhead, frames."""
    ms = result["median_ms"]
    lines = ["| median ms | this run |", "|---|---|"]
    lines += [f"| {label} | {ms[key]:.2f} |" for key, label in STAGE_ROWS]
    lines += [
        f"| **end-to-end latency** | **{ms['end_to_end_latency']:.2f}** (p95 {result['latency_p95_ms']:.1f}) |",
        "| **framework overhead** (latency − both ONNX runs − camera transport) | "
        f"**{ms['framework_overhead']:.2f}** |",
        f"| frames classified / published, at fps | {result['frames_classified']} / {result['frames_published']} "
        f"at {result['fps']:.1f} |",
        "",
        f"dropped by the head {result['dropped_by_head']}, not classified {result['lost']} (sequence gaps at the "
        f"tail {result['lost_before_tail']}), "
        f"{result['bytes_per_frame']:,.0f} bytes per frame, {result['wall_s']:.1f} s",
    ]
    return "\n".join(lines)


def build_parser() -> ToolParser:
    p = ToolParser(prog="bench pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--bundle", help="bundle to run (default: --model, split and calibrated (4-bit ranges) as `demo` prepares it)"
    )
    p.add_argument(
        "--model",
        choices=tuple(DEMO_MODELS),
        default="shapes",
        help="the demo model to prepare when no --bundle is given (default: shapes, the toy of the README's figures)",
    )
    p.add_argument(
        "--source",
        help="image_source's frames: photos:test, generator, a folder, a video (default: the model's held-out frames)",
    )
    p.add_argument(
        "--cache", default=str(DEFAULT_CACHE), help=f"exported models are kept here (default: {DEFAULT_CACHE})"
    )
    p.add_argument("--rate", type=float_in(*RATE_RANGE), default=30.0, help="camera frames per second (default: 30)")
    p.add_argument(
        "--duration",
        type=float_in(0.0, 3600.0, low_open=True),
        default=20.0,
        help="seconds of camera frames (default: 20)",
    )
    p.add_argument(
        "--bits",
        type=int,
        default=4,
        choices=(*CODE_BITS, *RAW_BITS),
        metavar="BITS",
        help="head bits: 1..8 quantize, 16/32 raw floats (default: 4)",
    )
    p.add_argument("--codec", default="none", choices=CODEC_NAMES, help="head codec (default: none)")
    p.add_argument("--out", default="out/bench", help="bundle and logs folder (default: out/bench)")
    p.add_argument("--json", metavar="FILE", help="also write the result to this file as JSON")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    frames = round(args.rate * args.duration)
    if frames < 2:
        raise SplitcompError("--rate x --duration must give at least 2 frames")
    check_outputs([("--json", args.json)], [])
    out = Path(args.out)
    model = DEMO_MODELS[args.model]
    bundle = (
        Path(args.bundle)
        if args.bundle
        else prepare_bundle(model, out / "bundle", Path(args.cache), evaluation_frames=100, quiet=True).path
    )
    run = PipelineRun(
        bundle,
        out / "logs",
        args.rate,
        frame_count=frames,
        source=args.source or model.evaluation_images,
        watch_frames=False,
        preload=30,
        head_params={"bits": args.bits, "codec": args.codec},
    )
    with run:
        start = time.monotonic()
        run.spin_until(lambda: len(run.seen.results) >= frames, args.duration + 5.0)
        wall = time.monotonic() - start
        run.spin_until(lambda: False, 1.2)  # one more round of diagnostics with every frame in it
    result = measure(run, frames, wall)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(format_result(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
