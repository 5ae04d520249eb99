"""bench pipeline: image_source -> head_node -> tail_node over real DDS, timed stage by stage.

Framework overhead is everything but the two ONNX Runtime runs: image conversion and
preprocessing, encoding, serialization and DDS of the features, decoding and post-processing.
It is the median latency minus the medians of head ONNX, tail ONNX and camera transport (the
head's input delay, which a camera driver on the robot adds anyway), all from the nodes'
/diagnostics: the probe only listens to the classifications, as a deployment would, because
every extra reliable subscriber makes the head's publish slower.

With `--link MBPS` the robot side (image_source, head_node) and the edge side (tail_node and the
probe) run in two network namespaces joined by a link shaped to MBPS (see run/bench_link.py); `--loss`
drops a share of its packets. Comma lists in `--loss`, `--keyframe-interval`, `--reference` and
`--features-qos` run every combination in turn, one row each (run/bench_loss.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.codec import CODE_BITS, HEAD_CODECS, RAW_BITS
from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write_text
from splitcomp_core.keyframes import MAX_REFERENCE_FRAMES, REFERENCE_MODES
from splitcomp_ros.qos import FEATURES_RELIABILITY_CHOICES
from splitcomp_tools.cli import ToolParser, check_outputs, float_in, int_in, run_cli
from splitcomp_tools.nodes.image_source import RATE_RANGE
from splitcomp_tools.run import bench_link, bench_loss, deployed, link_loss
from splitcomp_tools.run.bench_models import BenchModels
from splitcomp_tools.run.pipeline_run import PipelineRun
from splitcomp_tools.run.testbed import Bed


def _p50(diagnostics: dict, node: str, key: str) -> float:
    value = diagnostics.get(f"splitcomp: /{node}", {}).get(f"{key}.p50")
    return float(value) if value is not None else float("nan")


def _head_caught_up(diagnostics: dict) -> bool:
    """The head's last report counts at least the frames the tail received or saw lost."""
    head, tail = diagnostics.get("splitcomp: /head_node", {}), diagnostics.get("splitcomp: /tail_node", {})
    sent = int(head.get("key_frames", 0)) + int(head.get("p_frames", 0))
    return sent >= int(tail.get("frames_in", 0)) + int(tail.get("lost", 0))


def measure(run: PipelineRun, frames: int, wall_s: float) -> dict:
    """Stage medians from the nodes' diagnostics, latency and rate from the answers (classifications, or a
    detection bundle's detections: `frames_classified` counts the frames answered either way)."""
    results = run.seen.results
    if not results:
        raise SplitcompError(
            f"no {'detections' if run.detects else 'classification'} arrived; see the logs in {run.log_dir}"
        )
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
        "key_frames": int(head_counts.get("key_frames", 0)),
        "p_frames": int(head_counts.get("p_frames", 0)),
        "keyframe_losses": int(head_counts.get("keyframe_losses", 0)),  # chains the head ended on a missed answer
        "tail_rejects": {
            key.removeprefix("rejected."): int(value)
            for key, value in diag.get("splitcomp: /tail_node", {}).items()
            if key.startswith("rejected.")
        },
        "lost": frames - len(results),
        "lost_before_tail": int(diag.get("splitcomp: /tail_node", {}).get("lost", 0)),  # sequence gaps the tail saw
        "tail_frames_in": int(diag.get("splitcomp: /tail_node", {}).get("frames_in", 0)),
        "last_answered_sequence": max(r.sequence for r in results),
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
        "task": "detection" if run.detects else "classification",
        **({"boxes": sum(len(r.detections) for r in results)} if run.detects else {}),
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
DETECTION_POSTPROCESS = "tail: decode boxes + NMS"  # a detection bundle's post-processing row


def _stage_rows(result: dict) -> list[tuple[str, str]]:
    if result.get("task") != "detection":
        return list(STAGE_ROWS)
    return [(key, DETECTION_POSTPROCESS if key == "postprocess" else label) for key, label in STAGE_ROWS]


def format_result(result: dict) -> str:
    """The README's table for one run: median milliseconds per stage, latency, overhead, frames."""
    ms = result["median_ms"]
    lines = ["| median ms | this run |", "|---|---|"]
    lines += [f"| {label} | {ms[key]:.2f} |" for key, label in _stage_rows(result)]
    lines += [
        f"| **end-to-end latency** | **{ms['end_to_end_latency']:.2f}** (p95 {result['latency_p95_ms']:.1f}) |",
        "| **framework overhead** (latency − both ONNX runs − camera transport) | "
        f"**{ms['framework_overhead']:.2f}** |",
        f"| frames {'detected' if 'boxes' in result else 'classified'} / published, at fps | "
        f"{result['frames_classified']} / {result['frames_published']} at {result['fps']:.1f} |",
        *([f"| boxes published on splitcomp/detections | {result['boxes']} |"] if "boxes" in result else []),
        "",
        f"dropped by the head {result['dropped_by_head']}, not {'answered' if 'boxes' in result else 'classified'} "
        f"{result['lost']} (sequence gaps at the "
        f"tail {result['lost_before_tail']}), "
        f"{result['bytes_per_frame']:,.0f} bytes per frame (median), key frames {result['key_frames']}, P-frames "
        f"{result['p_frames']} (chains ended by a loss {result['keyframe_losses']}), rejected by the tail "
        f"{_reasons(result['tail_rejects'])}, {result['wall_s']:.1f} s",
    ]
    return "\n".join(lines)


def _add_head_arguments(p: ToolParser) -> None:
    """How the head encodes (bits, codec, inter-frame coding) and how image_source feeds it."""
    p.add_argument(
        "--bits",
        type=int,
        default=None,
        choices=(*CODE_BITS, *RAW_BITS),
        metavar="BITS",
        help="head bits: 1..8 quantize, 16/32 raw floats (default: what the bundle's calibration chose, each cut's own)",
    )
    p.add_argument("--codec", default=None, choices=HEAD_CODECS, help="head codec (default: the bundle's)")
    p.add_argument(
        "--keyframe-interval",
        default=None,
        metavar="N[,N...]",
        help="head keyframe_interval: a key frame, then N-1 P-frames coded against an earlier frame; 0 = off "
        "(default: the head's, 0). Give a video --source, with --preload its frame count so that it plays in order",
    )
    p.add_argument(
        "--reference",
        default="acknowledged",
        metavar="MODE[,MODE...]",
        help=f"head reference: {' or '.join(REFERENCE_MODES)} (default: acknowledged); a list runs each",
    )
    p.add_argument(
        "--reference-frames",
        type=int_in(1, MAX_REFERENCE_FRAMES),
        default=None,
        metavar="N",
        help="tail reference_frames: decoded frames kept per sender as references (default: the tail's)",
    )
    p.add_argument(
        "--features-qos",
        default="reliable",
        metavar="QOS[,QOS...]",
        help=f"features_reliability of head and tail: {' or '.join(FEATURES_RELIABILITY_CHOICES)} (default reliable)",
    )
    p.add_argument(
        "--preload",
        type=int_in(1, 10_000),
        default=30,
        help="image_source reads this many frames up front and replays them (default 30; e.g. 250 for video:bikes)",
    )


def _reasons(rejects: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(rejects.items())) or "none"


def build_parser(models: BenchModels) -> ToolParser:
    p = ToolParser(prog="bench pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--bundle", help="bundle to run (default: --model, split and calibrated (4-bit ranges) as `demo` prepares it)"
    )
    p.add_argument(
        "--model",
        choices=models.names,
        default="shapes",
        help="the demo model to prepare when no --bundle is given (default: shapes, the toy of the README's figures)",
    )
    p.add_argument(
        "--source",
        help="image_source's frames: photos:test, video:bikes, video:carphone, generator, a folder, a video, or several "
        "joined by commas (default: the model's held-out frames)",
    )
    p.add_argument(
        "--cache", default=str(models.cache), help=f"exported models are kept here (default: {models.cache})"
    )
    p.add_argument("--rate", type=float_in(*RATE_RANGE), default=30.0, help="camera frames per second (default: 30)")
    p.add_argument(
        "--duration",
        type=float_in(0.0, 3600.0, low_open=True),
        default=20.0,
        help="seconds of camera frames (default: 20)",
    )
    _add_head_arguments(p)
    p.add_argument(
        "--link",
        type=float,
        metavar="MBPS",
        help="run the robot and the edge in two network namespaces over a link shaped to MBPS Mbit/s (needs root)",
    )
    p.add_argument(
        "--loss",
        metavar="PCT[,PCT...]",
        help="with --link: drop this share of packets (percent) at random each way; a list runs each in turn",
    )
    p.add_argument(
        "--bandwidth",
        metavar="MBPS|auto",
        help="the head's bandwidth_mbps, which picks the cut of a multi-cut bundle (default: --link's rate)",
    )
    p.add_argument(
        "--schedule",
        default="",
        metavar="T:MBPS,...",
        help="with --link: change the link rate T seconds after the first result, e.g. 20:1.1,40:100",
    )
    p.add_argument(
        "--cycle-cuts",
        type=float,
        metavar="SECONDS",
        help="with a multi-cut bundle: every cut in turn for SECONDS, --rounds times, instead of --duration",
    )
    p.add_argument("--rounds", type=int, default=3, help="--cycle-cuts: how many times through the cuts (default 3)")
    p.add_argument(
        "--settle", type=float, default=1.5, help="--cycle-cuts: seconds left out after each switch (default 1.5)"
    )
    p.add_argument(
        "--robot-cpus",
        default="",
        metavar="LIST",
        help="pin the robot side (image_source, head_node) to these CPUs, e.g. 0, with as many ONNX "
        "Runtime threads: a robot weaker than the edge (profile it the same way: taskset -c LIST plan "
        "--profile-device F --threads N)",
    )
    p.add_argument(
        "--edge-cpus",
        default="",
        metavar="LIST",
        help="pin the edge side (tail_node) to these CPUs, e.g. 1, with as many ONNX Runtime threads",
    )
    p.add_argument(bench_link.INSIDE_FLAG, action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default="out/bench", help="bundle and logs folder (default: out/bench)")
    p.add_argument("--json", metavar="FILE", help="also write the result to this file as JSON")
    return p


def head_params(args: argparse.Namespace) -> dict[str, object]:
    """Only what was asked for, so each cut of a bundle keeps its own calibrated encoding."""
    asked = (("bits", args.bits), ("codec", args.codec))
    params: dict[str, object] = {k: v for k, v in asked if v is not None}
    bandwidth = args.bandwidth if args.bandwidth is not None else args.link
    if bandwidth is not None:
        params["bandwidth_mbps"] = "auto" if str(bandwidth).lower() == "auto" else float(bandwidth)
    if args.robot_cpus:
        params["intra_op_threads"] = deployed.cpu_count(args.robot_cpus)
    return params


def _plan(args: argparse.Namespace) -> list[bench_loss.Config]:
    """The configurations to run: one unless a list gives several (each list checked, nothing set up yet)."""
    losses = link_loss.parse_losses(args.loss) if args.loss is not None else [0.0]
    intervals = bench_loss.parse_intervals(args.keyframe_interval) if args.keyframe_interval is not None else [0]
    references = bench_loss.parse_list(args.reference, "--reference", REFERENCE_MODES)
    reliabilities = bench_loss.parse_list(args.features_qos, "--features-qos", FEATURES_RELIABILITY_CHOICES)
    return bench_loss.configs(losses, intervals, references, reliabilities)


def _main(argv: Sequence[str] | None, models: BenchModels) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(models).parse_args(argv)
    frames = round(args.rate * args.duration)
    if frames < 2:
        raise SplitcompError("--rate x --duration must give at least 2 frames")
    check_outputs([("--json", args.json)], [])
    schedule = bench_link.parse_schedule(args.schedule)
    plan = _plan(args)
    if (schedule or args.loss is not None) and args.link is None:
        raise SplitcompError("--schedule and --loss work on the test bed of --link: give --link")
    for flag, cpus in (("--robot-cpus", args.robot_cpus), ("--edge-cpus", args.edge_cpus)):
        if cpus:
            deployed.cpu_count(cpus, flag)  # CPUs this machine lacks: refused before anything starts
    if len(plan) > 1 and (schedule or args.cycle_cuts):
        raise SplitcompError(
            "--schedule and --cycle-cuts run one configuration: give one --loss, interval and reference"
        )
    out = Path(args.out)
    bundle = Path(args.bundle) if args.bundle else models.prepare(args.model, out / "bundle", Path(args.cache))
    if args.cycle_cuts:
        if args.cycle_cuts <= args.settle or args.rounds < 1:
            raise SplitcompError("--cycle-cuts must be longer than --settle, and --rounds at least 1")
        args.duration = args.rounds * len(load_bundle(bundle).all_cuts()) * (args.cycle_cuts + 0.2) + 5.0
        frames = round(args.rate * args.duration)
    if args.link is not None and not args.inside_bed:
        loss = plan[0].loss_pct if args.loss is not None else None
        return bench_link.run_outside([*argv, *([] if args.bundle else ["--bundle", str(bundle)])], args.link, loss)
    bed = bench_link.in_bed() if args.inside_bed else None
    if len(plan) > 1 or (args.loss is not None and not (schedule or args.cycle_cuts)):
        rows = bench_loss.run_all(bed, plan, lambda c: _run_once(args, models, bundle, bed, frames, [], c)[0])
        if args.json:
            atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")
        print(bench_loss.format_rows(rows))
        return 0
    result, _ = _run_once(args, models, bundle, bed, frames, schedule, plan[0])
    if bed is not None and bed.loss_pct is not None:
        result["loss_pct"] = bed.loss_pct
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(format_result(result))
    return 0


def _run_once(
    args: argparse.Namespace,
    models: BenchModels,
    bundle: Path,
    bed: Bed | None,
    frames: int,
    schedule: Sequence[bench_link.Change],
    config: bench_loss.Config,
) -> tuple[dict, PipelineRun]:
    """One configuration: the three nodes, driven for --duration (or through the cuts), measured."""
    run = PipelineRun(
        bundle,
        Path(args.out) / "logs",
        args.rate,
        frame_count=frames,
        source=args.source or models.held_out(args.model),
        watch_frames=False,
        preload=args.preload,
        head_params={**head_params(args), **config.head_params()},
        tail_params={
            "features_reliability": config.reliability,
            **({"reference_frames": args.reference_frames} if args.reference_frames else {}),
            **({"intra_op_threads": deployed.cpu_count(args.edge_cpus, "--edge-cpus")} if args.edge_cpus else {}),
        },
        prefix=bench_link.node_prefix(bed, args.robot_cpus, args.edge_cpus),
    )
    with run:
        start = time.monotonic()
        changes: list[dict] = []
        if args.cycle_cuts:
            blocks = bench_link.cycle_cuts(run, bundle, args.cycle_cuts, args.rounds)
        elif bed is None:
            run.spin_until(lambda: len(run.seen.results) >= frames, args.duration + 5.0)
        else:
            changes = bench_link.drive(run, bed, frames, args.duration, schedule)
        wall = time.monotonic() - start
        run.spin_until(lambda: False, 1.2)  # one more round of diagnostics with every frame in it
        run.spin_until(lambda: _head_caught_up(run.seen.diagnostics), 5.0)  # over a lossy link they come late
    result = measure(run, frames, wall)
    if bed is not None:
        result.update(bench_link.link_measures(run, bundle, args.link, changes))
    if args.cycle_cuts:  # on loopback no link rate: the overhead is the latency less the two stages
        result["per_cut"] = bench_link.per_cut(run, blocks, args.settle, args.link or math.inf)
    return result, run


def main(argv: Sequence[str] | None, models: BenchModels) -> int:
    """`bench pipeline` (argv after its name), on `models` unless --bundle is given."""
    return run_cli(lambda args: _main(args, models), argv)
