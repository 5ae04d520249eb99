"""bench restarts: kill a node with SIGKILL, start it again at once, and time its "ready" line -> first message.

Starts tail_node, head_node and image_source as processes (as a launch file would; image_source does
not wait for subscribers) and a probe on splitcomp/classification. Then, for each node, --restarts
times: SIGKILL by PID, start the same command again, read the new process's ready line (its ROS log
timestamp) and wait for the first classification that the new process took part in: for tail_node
the first one it publishes, for head_node and image_source the first one of a camera frame stamped
after the kill. What remains after "ready" is DDS discovery between the new process and the
running ones, which config/fastdds.xml tunes. The load average before and after is printed, since
every figure from a shared machine is only as good as how busy it was.

--environment launch starts the nodes (and the probe) as `ros2 launch` would on a robot whose shell
has ROS and the workspace sourced but not scripts/env.sh: this environment without the profile
variables, plus what the launch files add (dds_profile.launch_environment, --profile as their
dds_profile argument).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import rclpy
from ament_index_python.packages import get_package_share_directory
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write_text
from splitcomp_msgs.msg import Classification
from splitcomp_ros.dds_profile import (
    AUTO,
    NONE,
    PROFILE_VARIABLES,
    apply_in_process,
    describe,
    launch_environment,
    without_profile,
)
from splitcomp_tools.cli import ToolParser, check_outputs, float_in, int_in, run_cli
from splitcomp_tools.nodes.image_source import RATE_RANGE
from splitcomp_tools.run.bench_models import BenchModels
from splitcomp_tools.run.local_launch import NodeProcess

NODES = ("tail_node", "head_node", "image_source")
PACKAGES = {"tail_node": "splitcomp_tail_node", "head_node": "splitcomp_head_node", "image_source": "splitcomp_tools"}
# The line each node logs once its publishers and subscriptions exist, with the ROS log's own timestamp.
READY = {
    "tail_node": re.compile(r"\[(\d+\.\d+)\] \[tail_node\]: tail ready:"),
    "head_node": re.compile(r"\[(\d+\.\d+)\] \[head_node\]: head ready:"),
    "image_source": re.compile(r"\[(\d+\.\d+)\] \[image_source\]: publishing .* on image_raw"),
}
ENVIRONMENTS = ("env.sh", "launch")
ENVIRONMENT_NAMES = {"env.sh": "this shell's environment (scripts/env.sh)", "launch": "the launch files' environment"}
GOAL_S = 1.0
SETTLE_S = 6.0


@dataclasses.dataclass
class Restart:
    """One kill and start: seconds from the spawn to the ready line, and from the ready line to the first message."""

    node: str
    spawn_to_ready: float | None
    ready_to_first: float | None  # None: nothing arrived within --timeout


class Pipeline:
    """The three nodes as processes, each restartable, and the probe that hears the classifications."""

    def __init__(self, bundle: Path, log_dir: Path, rate_hz: float, threads: int, env: dict[str, str]) -> None:
        config = Path(get_package_share_directory("splitcomp_tools")) / "config"
        self.log_dir = log_dir
        model = {"bundle": str(bundle), "intra_op_threads": threads}
        self.commands: dict[str, tuple[dict[str, object], Path | None]] = {
            "tail_node": (model, config / "tail.yaml"),
            "head_node": (model, config / "head.yaml"),
            "image_source": ({"source": "generator", "rate_hz": float(rate_hz), "preload": 30}, None),
        }
        self.env = env
        self.processes: dict[str, NodeProcess] = {}
        self.logs: dict[str, IO] = {}
        self.received: list[tuple[float, float]] = []  # (receive time, camera stamp), both time.time()
        self._spawned = 0
        self._context = Context()
        rclpy.init(context=self._context)
        self.probe = rclpy.create_node("restart_probe", context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.probe)
        self.probe.create_subscription(Classification, "splitcomp/classification", self._on_result, 50)

    def _on_result(self, msg: Classification) -> None:
        self.received.append((time.time(), msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    def start(self, name: str) -> tuple[float, Path]:
        """Start `name` (again); returns when it was spawned and the log it writes."""
        self._spawned += 1
        path = self.log_dir / f"{self._spawned:02d}_{name}.log"
        if name in self.logs:
            self.logs[name].close()
        self.logs[name] = open(path, "w")  # noqa: SIM115 - open while the node runs
        params, params_file = self.commands[name]
        spawned = time.time()
        self.processes[name] = NodeProcess(
            PACKAGES[name],
            name,
            params,
            log=self.logs[name],
            params_file=str(params_file) if params_file else None,
            env=self.env,
        )
        return spawned, path

    def spin_until(self, done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            for name, process in self.processes.items():
                if not process.running():
                    raise SplitcompError(f"{name} exited; see its log in {self.log_dir}")
            self._executor.spin_once(timeout_sec=0.005)
        return True

    def close(self) -> None:
        for process in self.processes.values():
            process.stop()
        for log in self.logs.values():
            log.close()
        self._executor.shutdown()
        self.probe.destroy_node()
        rclpy.shutdown(context=self._context)


def ready_time(log: Path, node: str) -> float | None:
    """The ROS timestamp of the node's ready line in its log, once it is there."""
    match = READY[node].search(log.read_text(errors="replace"))
    return float(match.group(1)) if match else None


def restart(pipeline: Pipeline, node: str, timeout: float) -> Restart:
    killed = time.time()
    pipeline.processes[node].kill()
    first_index = len(pipeline.received)
    spawned, log = pipeline.start(node)
    ready: list[float] = []

    def first() -> float | None:
        for received, stamp in pipeline.received[first_index:]:
            if node == "tail_node" or stamp > killed:
                return received
        return None

    def done() -> bool:
        if not ready:
            found = ready_time(log, node)
            if found is not None:
                ready.append(found)
        return bool(ready) and first() is not None

    pipeline.spin_until(done, timeout)
    arrived = first()
    return Restart(
        node,
        ready[0] - spawned if ready else None,
        arrived - ready[0] if ready and arrived is not None else None,
    )


def summarize(restarts: Sequence[Restart]) -> dict[str, dict]:
    by_node: dict[str, dict] = {}
    for node in dict.fromkeys(r.node for r in restarts):
        rows = [r for r in restarts if r.node == node]
        times = [r.ready_to_first for r in rows if r.ready_to_first is not None]
        ready = [r.spawn_to_ready for r in rows if r.spawn_to_ready is not None]
        by_node[node] = {
            "restarts": len(rows),
            "timeouts": len(rows) - len(times),
            "median_s": statistics.median(times) if times else None,
            "max_s": max(times) if times else None,
            "all_s": times,
            "spawn_to_ready_median_s": statistics.median(ready) if ready else None,
        }
    return by_node


def format_summary(result: dict) -> str:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    lines = [
        "| node (SIGKILL, started again at once) | ready → first message, median s | max s | restarts "
        "| spawn → ready, median s |",
        "|---|---|---|---|---|",
    ]
    for node, s in result["nodes"].items():
        timeouts = f" ({s['timeouts']} timed out)" if s["timeouts"] else ""
        lines.append(
            f"| {node} | {seconds(s['median_s'])} | {seconds(s['max_s'])} | {s['restarts']}{timeouts} "
            f"| {seconds(s['spawn_to_ready_median_s'])} |"
        )
    met = all(s["timeouts"] == 0 and s["max_s"] is not None and s["max_s"] <= GOAL_S for s in result["nodes"].values())
    load = result["load_average"]
    lines += [
        "",
        f"every restart within {GOAL_S:g} s of its ready line: {'yes' if met else 'no'}; nodes started in "
        f"{ENVIRONMENT_NAMES[result['environment']]}; Fast DDS profile {result['profile']}; load average (1 min) {load['before']:.1f} before, "
        f"{load['after']:.1f} after, on {result['cpus']} CPUs",
    ]
    return "\n".join(lines)


def build_parser(models: BenchModels) -> ToolParser:
    p = ToolParser(prog="bench restarts", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", help="bundle to run (default: --model, prepared as `bench pipeline` prepares it)")
    p.add_argument(
        "--model", choices=models.names, default="shapes", help="the demo model to prepare (default: shapes)"
    )
    p.add_argument(
        "--cache", default=str(models.cache), help=f"exported models are kept here (default: {models.cache})"
    )
    p.add_argument(
        "--nodes",
        default=",".join(NODES),
        help=f"the nodes to restart, in order, comma-separated (default: {','.join(NODES)})",
    )
    p.add_argument("--restarts", type=int_in(1, 100), default=5, help="restarts per node (default: 5)")
    p.add_argument("--rate", type=float_in(*RATE_RANGE), default=30.0, help="camera frames per second (default: 30)")
    p.add_argument(
        "--settle",
        type=float_in(0.0, 60.0),
        default=SETTLE_S,
        help=f"seconds of normal flow between restarts (default: {SETTLE_S:g}, longer than config/fastdds.xml's 5 s "
        "lease, so each restart meets only its own dead predecessor, as after a real crash)",
    )
    p.add_argument(
        "--timeout",
        type=float_in(0.0, 300.0, low_open=True),
        default=30.0,
        help="give up on one restart after this many seconds (default: 30)",
    )
    p.add_argument(
        "--intra-op-threads",
        type=int_in(0, 256),
        default=1,
        help="ONNX Runtime threads of head and tail (default: 1, so that on a small machine the running nodes leave "
        "the restarted one a core; 0 = ONNX Runtime's default)",
    )
    p.add_argument(
        "--environment",
        choices=ENVIRONMENTS,
        default="env.sh",
        help="env.sh: every process gets this shell's environment (scripts/env.sh's profile); launch: the one the "
        "launch files build from it without the profile variables, as on a robot that never sourced env.sh "
        "(default: env.sh)",
    )
    p.add_argument(
        "--profile",
        metavar="XML",
        help=f"the Fast DDS profile for every process, or {NONE} for Fast DDS's defaults (default: env.sh's; "
        f"with --environment launch this is the launch files' dds_profile argument, default {AUTO})",
    )
    p.add_argument("--out", default="out/bench_restarts", help="bundle and logs folder (default: out/bench_restarts)")
    p.add_argument("--json", metavar="FILE", help="also write every restart to this file as JSON")
    return p


def _environment(kind: str, profile: str | None) -> dict[str, str]:
    """The environment every process gets, for --environment and --profile; the probe (this process) takes the
    profile the nodes run with."""
    if profile not in (None, NONE, AUTO) and not Path(profile).is_file():
        raise SplitcompError(f"--profile {profile}: no such file; give a Fast DDS XML profile or {NONE}")
    if kind == "env.sh" and profile is None:
        env = dict(os.environ)
    else:  # none reaches the nodes as SPLITCOMP_DDS_PROFILE=none, or they would take the installed profile
        env = launch_environment(without_profile(), profile or AUTO)
    taken = dict(env)
    apply_in_process(taken)  # what each node then takes for itself: with none exported, the installed profile
    for name in PROFILE_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update({k: v for k, v in taken.items() if k in PROFILE_VARIABLES})
    return env


def _main(argv: Sequence[str] | None, models: BenchModels) -> int:
    args = build_parser(models).parse_args(argv)
    nodes = [n for n in args.nodes.split(",") if n]
    unknown = [n for n in nodes if n not in NODES]
    if unknown or not nodes:
        raise SplitcompError(f"--nodes {args.nodes!r}: name some of {', '.join(NODES)}")
    check_outputs([("--json", args.json)], [])
    env = _environment(args.environment, args.profile)
    os.environ.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "0")  # ready lines reach the logs at once
    out = Path(args.out)
    bundle = Path(args.bundle) if args.bundle else models.prepare(args.model, out / "bundle", Path(args.cache))
    log_dir = out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    pipeline = Pipeline(bundle, log_dir, args.rate, args.intra_op_threads, env)
    restarts: list[Restart] = []
    try:
        for name in NODES:
            pipeline.start(name)
        if not pipeline.spin_until(lambda: len(pipeline.received) >= 10, 120.0):
            raise SplitcompError(f"the pipeline did not start within 120 s; see the logs in {log_dir}")
        pipeline.spin_until(lambda: False, args.settle)
        for name in nodes:
            for _ in range(args.restarts):
                restarts.append(restart(pipeline, name, args.timeout))
                pipeline.spin_until(lambda: False, args.settle)
    finally:
        pipeline.close()
    result = {
        "environment": args.environment,
        "profile": describe(os.environ),  # the nodes' and the probe's
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "nodes": summarize(restarts),
        "restarts": [dataclasses.asdict(r) for r in restarts],
    }
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(format_summary(result))
    return 0


def main(argv: Sequence[str] | None, models: BenchModels) -> int:
    """`bench restarts` (argv after its name), on `models` unless --bundle is given."""
    return run_cli(lambda args: _main(args, models), argv)
