"""bench fleet: N robots at a rate send real encoded frames to one edge, in each edge configuration.

Each robot replays the head's encoding of real frames (--source, photos:test by default; HeadPipeline once)
on <namespace>/robot_i/splitcomp/features and hears its answers. Configurations, one after another:
separate (one tail_node per robot, today's design, each at --intra-op-threads), batched (one tail_node with
`robots`, batching in process, at its own defaults unless --batched-threads / --batched-workers say otherwise),
triton (one tail_node with backend triton over a tritonserver: --triton-url, or one started here).

Printed first: ONNX Runtime's batch scaling of the tail alone (ms per frame at batch 1, 2, 4, 8, 16), one line
per thread count the tails run at. Then, per configuration and number of robots: the ONNX Runtime threads and
inference workers it ran with (the fleet tail's as its /diagnostics reports them), latency p50/p95 from
publishing to the answer, answered/published, lost, the edge's summed CPU (share of one core) and RSS (from
/proc of the processes started here), and the batch size histogram from the tail's /diagnostics; then every
robot's own row, and each configuration's saturation point: the most robots served with p95 <= 100 ms and
under 1 % lost.

With --hostile, each configuration and number of robots runs once more per kind with one hostile robot
added to the edge (hostile_flood, hostile_garbage, hostile_other_bundle; for separate, with its own tail):
flood sends the robots' valid frames at 10 times their rate, garbage malformed ones, other-bundle another
bundle's model_id (splitcomp_tools.run.fleet_hostile). The rows then show the well-behaved robots only, and a
second table what the tail counted for the hostile robot (/diagnostics, under its own name). The saturation
point comes from the runs without a hostile robot.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from splitcomp_core.batching import FLEET_INTRA_OP_THREADS
from splitcomp_core.bundle import Bundle, load_bundle, takes_any_batch
from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write_text
from splitcomp_tools.cli import ToolParser, check_outputs, float_in, format_table, int_in, run_cli
from splitcomp_tools.run.batch_scaling import DEFAULT_BATCHES, tail_batch_scaling
from splitcomp_tools.run.bench_models import BenchModels
from splitcomp_tools.run.fleet_edge import CONFIGS, Edge, cpu_seconds, rss_bytes
from splitcomp_tools.run.fleet_hostile import FLOOD_FACTOR, KINDS, HostileRobot
from splitcomp_tools.run.fleet_replay import Robots, encode_frames

P95_GOAL_MS = 100.0
LOST_GOAL = 0.01
MAX_ROBOTS = 64
MAX_WORKERS = 64


def build_parser(models: BenchModels) -> ToolParser:
    p = ToolParser(prog="bench fleet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robots", default="4", help="robots, or a comma list of fleet sizes run in turn (default: 4)")
    p.add_argument("--rate", type=float_in(0.1, 100.0), default=10.0, help="frames per second per robot (default: 10)")
    p.add_argument("--duration", type=float_in(1.0, 600.0), default=10.0, help="seconds measured per run (default: 10)")
    p.add_argument("--json", metavar="FILE", help="also write every figure to this file as JSON")
    p.add_argument(
        "--configs", default="separate,batched", help=f"comma list of {', '.join(CONFIGS)} (default: separate,batched)"
    )
    p.add_argument(
        "--hostile",
        default="",
        help=f"comma list of {', '.join(KINDS)}: rerun each configuration with one such robot added (default: none)",
    )
    p.add_argument("--bundle", help="bundle to run (default: --model, prepared as `bench pipeline` prepares it)")
    p.add_argument(
        "--model",
        choices=models.names,
        default="efficientnet_lite0",
        help="the demo model (default: efficientnet_lite0)",
    )
    p.add_argument(
        "--cache", default=str(models.cache), help=f"exported models are kept here (default: {models.cache})"
    )
    p.add_argument("--source", default="photos:test", help="the frames the robots replay (default: photos:test)")
    p.add_argument("--frames", type=int_in(1, 1000), default=16, help="distinct frames encoded (default: 16)")
    p.add_argument("--max-batch", type=int_in(1, 256), default=8, help="the fleet tail's max_batch (default: 8)")
    p.add_argument("--batch-wait-ms", type=int_in(0, 1000), default=5, help="its batch_wait_ms (default: 5)")
    p.add_argument(
        "--intra-op-threads",
        type=int_in(0, 256),
        default=1,
        help="ONNX Runtime threads of each separate tail (default: 1)",
    )
    p.add_argument(
        "--batched-threads",
        type=int_in(0, 256),
        help="ONNX Runtime threads of the batched and triton tails, 0 = its default (default: the tail's own)",
    )
    p.add_argument(
        "--batched-workers",
        type=int_in(1, MAX_WORKERS),
        help="inference workers of the batched and triton tails (default: the tail's own)",
    )
    p.add_argument(
        "--triton-url", default="", help="a running Triton server for the triton configuration (default: start one)"
    )
    p.add_argument("--out", default="out/bench_fleet", help="bundle and logs folder (default: out/bench_fleet)")
    return p


def fleet_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(not 1 <= n <= MAX_ROBOTS for n in sizes):
        raise SplitcompError(f"--robots {text!r}: give robots from 1 to {MAX_ROBOTS}, or a comma list of them")
    return sizes


def chosen_configs(text: str) -> list[str]:
    configs = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown or not configs:
        raise SplitcompError(f"--configs {text!r}: name some of {', '.join(CONFIGS)}")
    return configs


def hostile_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if any(k not in KINDS for k in kinds) or len(set(kinds)) != len(kinds) or (text.strip() and not kinds):
        raise SplitcompError(f"--hostile {text!r}: name some of {', '.join(KINDS)}, each once")
    return kinds


def run_one(
    config: str,
    count: int,
    bundle: Bundle,
    frames: list,
    args: argparse.Namespace,
    url: str,
    server_pids=(),
    hostile: str | None = None,
) -> dict:
    """One configuration with `count` robots (and a `hostile` robot beside them): start the edge, warm it up,
    measure, stop it.

    `server_pids`: a Triton server started for it, measured with the edge.
    """
    namespace = f"bench_fleet/{config}_{count}_{hostile or 'none'}_{os.getpid()}".replace("-", "_")
    log_dir = Path(args.out) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    robots = Robots(namespace, count, bundle.manifest.model_id, frames)
    bad = HostileRobot(hostile, namespace, bundle.manifest.model_id, frames, args.rate) if hostile else None
    edge = Edge(config, bundle, namespace, robots.names + ([bad.name] if bad else []), log_dir)
    try:
        edge.start(
            args.max_batch, args.batch_wait_ms, args.intra_op_threads, url, args.batched_threads, args.batched_workers
        )
        up = robots.wait_for_edge(60.0) and (bad is None or bad.wait_for_edge(60.0))
        if not up or not robots.warm_up(60.0):
            edge.check_running()
            raise SplitcompError(f"the {config} edge did not answer every robot within 60 s; see {log_dir}")
        pids = edge.pids(server_pids)
        cpu_before, started = cpu_seconds(pids), time.monotonic()
        if bad is not None:
            bad.start(args.duration)
        robots.run(args.rate, args.duration)
        if bad is not None:
            bad.stop()
        ended = time.monotonic()
        cpu = (cpu_seconds(pids) - cpu_before) / (ended - started)
        rss = rss_bytes(edge.pids(server_pids))
        edge.check_running()
        own = next((v for v in robots.diagnostics.values() if "batch_histogram" in v), {})
        hostile_row = None
        if bad is not None:
            status = edge.status_name(bad.name)  # read from a status the tail sent after the drain
            robots.spin_until(lambda: robots.diagnostics_at.get(status, 0.0) > ended, 3.0)
            tail = tail_counts(robots.diagnostics, status)
            hostile_row = {"name": bad.name, "published": bad.published, "tail": tail}
    finally:
        if bad is not None:
            bad.close()
        edge.close()
        robots.close()
    per_robot = {name: log.summary() for name, log in robots.logs.items()}
    latencies = [ms for log in robots.logs.values() for ms in log.latencies_ms()]
    published = sum(r["published"] for r in per_robot.values())
    answered = sum(r["answered"] for r in per_robot.values())
    p50, p95 = (float(v) for v in np.percentile(latencies, [50, 95])) if latencies else (None, None)
    return {
        "config": config,
        "robots": count,
        "hostile": hostile,
        "p50_ms": p50,
        "p95_ms": p95,
        "published": published,
        "answered": answered,
        "lost": published - answered,
        "cpu_cores": cpu,
        "rss_mb": rss / 2**20,
        "batch_histogram": own.get("batch_histogram", ""),
        **ran_with(config, args.intra_op_threads, own),
        "per_robot": per_robot,
        "hostile_robot": hostile_row,
    }


def ran_with(config: str, separate_threads: int, own: dict[str, str]) -> dict:
    """The ONNX Runtime threads and inference workers a configuration ran with: each separate tail's, or what
    the fleet tail's /diagnostics says (None where unknown, or threads under Triton, whose server runs the model)."""
    if config == "separate":
        return {"threads": separate_threads, "workers": 1}
    threads = own.get("intra_op_threads") if config == "batched" else None
    workers = own.get("inference_workers")
    return {
        "threads": int(threads) if threads and threads.isdigit() else None,
        "workers": int(workers) if workers and workers.isdigit() else None,
    }


def tail_counts(diagnostics: dict[str, dict[str, str]], status: str) -> dict[str, int]:
    """What the tail's status `status` counted: frames in and out, stale, lost, rejected (and by reason)."""
    values = diagnostics.get(status, {})
    counted = ("frames_in", "frames_out", "stale", "lost", "rejected")
    return {k: int(v) for k, v in values.items() if k in counted or k.startswith("rejected.")}


def saturation(runs: Sequence[dict], config: str) -> int:
    """The most robots `config` served with p95 <= 100 ms and under 1 % lost (0: none), without a hostile robot."""
    served = [r["robots"] for r in runs if r["config"] == config and r["hostile"] is None and meets_goal(r)]
    return max(served, default=0)


def meets_goal(run: dict) -> bool:
    lost = run["lost"] / run["published"] if run["published"] else 1.0
    return run["p95_ms"] is not None and run["p95_ms"] <= P95_GOAL_MS and lost < LOST_GOAL


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def format_runs(runs: Sequence[dict]) -> str:
    header = [
        "config",
        "robots",
        "hostile",
        "threads",
        "workers",
        "p50 ms",
        "p95 ms",
        "answered/published",
        "lost %",
        "CPU cores",
        "RSS MB",
        "batches",
    ]
    rows = [
        [
            r["config"],
            r["robots"],
            r["hostile"] or "-",
            _count(r.get("threads")),
            _count(r.get("workers")),
            _ms(r["p50_ms"]),
            _ms(r["p95_ms"]),
            f"{r['answered']}/{r['published']}",
            f"{100 * r['lost'] / max(r['published'], 1):.1f}",
            f"{r['cpu_cores']:.2f}",
            f"{r['rss_mb']:.0f}",
            r["batch_histogram"] or "-",
        ]
        for r in runs
    ]
    return format_table(header, rows, left=(0, 2, 11))


def format_robots(runs: Sequence[dict]) -> str:
    header = ["config", "robots", "hostile", "robot", "p50 ms", "p95 ms", "answered/published", "lost"]
    rows = [
        [
            r["config"],
            r["robots"],
            r["hostile"] or "-",
            name,
            _ms(s["p50_ms"]),
            _ms(s["p95_ms"]),
            f"{s['answered']}/{s['published']}",
            s["lost"],
        ]
        for r in runs
        for name, s in r["per_robot"].items()
    ]
    return format_table(header, rows, left=(0, 2, 3))


def format_hostile(runs: Sequence[dict]) -> str:
    """What the tail counted for each hostile robot, from its /diagnostics."""
    header = ["config", "robots", "hostile robot", "published", "tail in", "answered", "stale", "rejected by reason"]
    rows = []
    for r in runs:
        if r["hostile_robot"] is None:
            continue
        bad, tail = r["hostile_robot"], r["hostile_robot"]["tail"]
        reasons = " ".join(f"{k.split('.', 1)[1]}:{n}" for k, n in sorted(tail.items()) if k.startswith("rejected."))
        row = [r["config"], r["robots"], bad["name"], bad["published"]]
        rows.append(
            [
                *row,
                tail.get("frames_in", "-"),
                tail.get("frames_out", 0) if tail else "-",
                tail.get("stale", "-"),
                reasons or "-",
            ]
        )
    return format_table(header, rows, left=(0, 2, 7))


def _main(argv: Sequence[str] | None, models: BenchModels) -> int:
    args = build_parser(models).parse_args(argv)
    sizes, configs, kinds = fleet_sizes(args.robots), chosen_configs(args.configs), hostile_kinds(args.hostile)
    check_outputs([("--json", args.json)], [])
    out = Path(args.out)
    bundle = (
        load_bundle(args.bundle)
        if args.bundle
        else load_bundle(models.prepare(args.model, out / "bundle", Path(args.cache)))
    )
    frames = encode_frames(bundle, args.source, args.frames)
    scaling = _scaling(bundle, args, configs)
    print(_scaling_text(scaling), flush=True)
    runs, skipped = [], {}
    server = None
    for config in configs:
        url = args.triton_url
        if config == "triton" and not url:
            from splitcomp_tools.run import triton_run

            server, why = triton_run.start_for(bundle, out / "triton")
            if server is None:
                skipped[config] = why
                print(f"triton: skipped, {why}", flush=True)
                continue
            url = server.url
        try:
            for count in sizes:
                pids = [server.pid()] if server is not None else []
                for hostile in [None, *kinds]:
                    runs.append(run_one(config, count, bundle, frames, args, url, pids, hostile))
                    print(format_runs(runs[-1:]).splitlines()[-1], flush=True)
        finally:
            if server is not None:
                server.stop()
                server = None
    result = _result(args, bundle, scaling, runs, configs, kinds, skipped)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(_report(result, runs))
    return 0


def _scaling(bundle: Bundle, args, configs: Sequence[str]) -> dict[int, list[dict]]:
    """The tail alone at batch 1..16 (a static-batch tail: batch 1 only), on the frames the robots replay, at each
    ONNX Runtime thread count the tails run at: the separate tails' (the first, `batch_scaling_ms_per_frame`
    of the JSON), and the batched tail's."""
    batches = DEFAULT_BATCHES if takes_any_batch(bundle) else (1,)
    counts = [args.intra_op_threads]
    if "batched" in configs:
        counts.append(args.batched_threads if args.batched_threads is not None else FLEET_INTRA_OP_THREADS)
    return {
        threads: tail_batch_scaling(bundle.path, batches, args.source, intra_op_threads=threads or None)
        for threads in dict.fromkeys(counts)
    }


def _scaling_text(scaling: dict[int, list[dict]]) -> str:
    lines = []
    for threads, rows in scaling.items():
        cells = "  ".join(f"batch {row['batch']}: {row['ms_per_frame']:.3f}" for row in rows)
        note = "" if len(rows) > 1 else " (static-batch tail: one frame per run)"
        label = f"{threads}" + (" (its default)" if threads == 0 else "")
        lines.append(f"tail alone, ONNX Runtime, ms per frame, intra_op_threads {label}: {cells}{note}")
    return "\n".join(lines)


def _result(args, bundle: Bundle, scaling: dict, runs: list, configs: list, kinds: list, skipped: dict) -> dict:
    first = next(iter(scaling.values()))
    return {
        "bundle": str(bundle.path),
        "rate_hz": args.rate,
        "duration_s": args.duration,
        "max_batch": args.max_batch,
        "batch_wait_ms": args.batch_wait_ms,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "intra_op_threads": args.intra_op_threads,
        "batched_threads": args.batched_threads,
        "batched_workers": args.batched_workers,
        "batch_scaling_ms_per_frame": {row["batch"]: row["ms_per_frame"] for row in first},
        "batch_scaling_by_threads": {
            threads: {row["batch"]: row["ms_per_frame"] for row in rows} for threads, rows in scaling.items()
        },
        "tail_batches": takes_any_batch(bundle),
        "hostile": kinds,
        "flood_rate_hz": args.rate * FLOOD_FACTOR,
        "runs": runs,
        "saturation": {c: saturation(runs, c) for c in configs if c not in skipped},
        "skipped": skipped,
    }


def _report(result: dict, runs: list) -> str:
    lines = ["", format_runs(runs), "", format_robots(runs), ""]
    if result["hostile"]:
        lines += [format_hostile(runs), ""]
    for config, most in result["saturation"].items():
        lines.append(
            f"saturation ({config}): {most} robot(s) with p95 <= {P95_GOAL_MS:g} ms and < 1 % lost"
            + (" (runs without a hostile robot)" if result["hostile"] else "")
        )
    lines.append(f"{result['cpus']} CPUs, load average (1 min) {result['load_average']:.1f} at the end")
    return "\n".join(lines)


def main(argv: Sequence[str] | None, models: BenchModels) -> int:
    """`bench fleet` (argv after its name), on `models` unless --bundle is given."""
    return run_cli(lambda args: _main(args, models), argv)
