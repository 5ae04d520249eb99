"""`bench pipeline --link MBPS`: the pipeline benchmark with the robot and the edge on two sides of a shaped link.

The benchmark process builds a test bed (run/testbed.py) and runs itself again inside the bed's
edge namespace, where its probe listens as an edge-side consumer would; from there it starts
image_source and head_node in the robot namespace and tail_node in the edge namespace, so every
feature byte crosses the tbf-shaped veth. `--schedule` changes the link rate mid-run with
`tc qdisc change`; for each change the result says how long the head took to settle on the cut
the bundle names for the new rate, and how many published frames never came back.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from splitcomp_core.bundle import load_bundle
from splitcomp_core.errors import SplitcompError
from splitcomp_tools.run.pipeline_run import PipelineRun
from splitcomp_tools.run.testbed import Bed, Testbed, TestbedError, why_unavailable

INSIDE_FLAG = "--inside-bed"
SIDE_OF = {"image_source": "robot", "head_node": "robot", "overlay": "robot", "tail_node": "edge"}
SETTLED_FRAMES = 5  # frames in a row on the new cut that count as "the head is on it"


@dataclasses.dataclass(frozen=True)
class Change:
    """At `at_s` seconds after the first frame, set the link to `mbps`."""

    at_s: float
    mbps: float


def parse_schedule(text: str) -> list[Change]:
    """`T:MBPS,T:MBPS...` (seconds after the first frame, new rate), e.g. `20:1.1,40:100`."""
    changes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            at, mbps = (float(x) for x in item.split(":"))
        except ValueError:
            raise SplitcompError(f"--schedule item {item!r} is not T:MBPS (e.g. 20:1.1)") from None
        if at <= 0 or mbps <= 0:
            raise SplitcompError(f"--schedule item {item!r}: the time and the rate must be positive")
        changes.append(Change(at, mbps))
    if [c.at_s for c in changes] != sorted(c.at_s for c in changes):
        raise SplitcompError("--schedule times must increase")
    return changes


def run_outside(argv: Sequence[str], link_mbps: float, loss_pct: float | None = None) -> int:
    """Build the bed (with `loss_pct`, one that can drop packets), run this benchmark again inside its edge
    namespace, pass on its exit status."""
    reason = why_unavailable()
    if reason:
        raise SplitcompError(f"--link needs the two-namespace test bed, which cannot be built here: {reason}")
    with Testbed(link_mbps, loss_pct=loss_pct) as bed:
        child = bed.run_in("edge", [sys.executable, "-m", "splitcomp_tools.bench", "pipeline", *argv, INSIDE_FLAG])
        try:
            return child.wait()
        except BaseException:
            if child.poll() is None:
                child.terminate()
            raise


def node_prefix(bed: Bed | None, robot_cpus: str = "", edge_cpus: str = "") -> Callable[[str], list[str]]:
    """PipelineRun's `prefix`: each node in its side's namespace (with a bed); the robot's pinned to `robot_cpus`
    and the edge's to `edge_cpus` if given (a weaker robot than the edge, with as many ONNX Runtime threads as it
    has CPUs)."""

    def prefix(executable: str) -> list[str]:
        side = SIDE_OF[executable]
        cpus = robot_cpus if side == "robot" else edge_cpus
        pin = ["taskset", "-c", cpus] if cpus else []
        return bed.command(side, pin) if bed is not None else pin

    return prefix


def drive(run: PipelineRun, bed: Bed, frames: int, duration_s: float, schedule: Sequence[Change]) -> list[dict]:
    """Spin until `frames` results arrived (or duration + 5 s), changing the rate on schedule; the changes made."""
    start = time.monotonic()
    run.spin_until(lambda: bool(run.seen.results), 30.0)
    first = time.monotonic()
    made = []
    for change in schedule:
        run.spin_until(_after(first + change.at_s), duration_s + 5.0)
        wall = time.time()
        took_s = bed.set_rate(change.mbps)
        made.append({"at_s": round(time.monotonic() - first, 3), "mbps": change.mbps, "wall": wall, "tc_s": took_s})
    run.spin_until(lambda: len(run.seen.results) >= frames, max(1.0, duration_s + 5.0 - (time.monotonic() - start)))
    return made


def cycle_cuts(run: PipelineRun, bundle_path: Path, block_s: float, rounds: int) -> list[dict]:
    """Every cut of a multi-cut bundle in turn, `block_s` seconds each, `rounds` times (bandwidth_mbps set to the
    middle of its range): all candidates measured in one run, interleaved, so that load drift hits them alike."""
    bundle = load_bundle(bundle_path)
    if not bundle.cuts:
        raise SplitcompError(f"{bundle_path}: --cycle-cuts needs a multi-cut bundle (plan --out, or bench planner's)")
    client: Any = run.node.create_client(SetParameters, "head_node/set_parameters")  # rclpy types it by srv
    if not client.wait_for_service(timeout_sec=30.0):
        raise SplitcompError("head_node's set_parameters service did not appear")
    run.spin_until(lambda: bool(run.seen.results), 30.0)
    blocks = []
    for _ in range(rounds):
        for c in bundle.cuts:
            value = c.min_mbps + 0.5 if c.max_mbps is None else (c.min_mbps + c.max_mbps) / 2
            request = SetParameters.Request(
                parameters=[
                    Parameter(
                        name="bandwidth_mbps",
                        value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float(value)),
                    )
                ]
            )
            future = client.call_async(request)
            run.spin_until(future.done, 10.0)
            start = time.time()
            run.spin_until(_after(time.monotonic() + block_s), block_s + 1.0)
            blocks.append({"cut_id": c.cut_id, "start": start, "end": time.time()})
    return blocks


def per_cut(run: PipelineRun, blocks: Sequence[dict], settle_s: float, link_mbps: float) -> dict[str, dict]:
    """Latency per cut over its blocks, leaving out each block's first `settle_s` (the previous cut's queue)."""
    kept: dict[str, list[Any]] = {}
    for r in run.seen.results:
        stamp = _stamp(r)
        block = next((b for b in blocks if b["start"] + settle_s <= stamp < b["end"]), None)
        if block is not None and r.cut_id == block["cut_id"]:
            kept.setdefault(r.cut_id, []).append(r)
    figures = {}
    for cut_id, results in kept.items():
        latency = np.array([r.latency_ms for r in results])
        overhead = [r.latency_ms - r.head_ms - r.tail_ms - r.feature_bytes * 8e-3 / link_mbps for r in results]
        figures[cut_id] = {
            "frames": len(results),
            "median_ms": float(np.median(latency)),
            "p95_ms": float(np.percentile(latency, 95)),
            "head_ms": float(np.median([r.head_ms for r in results])),
            "tail_ms": float(np.median([r.tail_ms for r in results])),
            "bytes_per_frame": float(np.median([r.feature_bytes for r in results])),
            "transport_overhead_ms": float(np.median(overhead)),
        }
    return figures


def _after(deadline: float) -> Callable[[], bool]:
    return lambda: time.monotonic() >= deadline


def link_measures(run: PipelineRun, bundle_path: Path, link_mbps: float, changes: Sequence[dict]) -> dict[str, Any]:
    """What the link adds to the pipeline figures: the cuts used, frames lost, the fixed overhead, the switches."""
    results = sorted(run.seen.results, key=lambda r: r.sequence)
    sequences = [r.sequence for r in results]
    missing = sorted(set(range(sequences[0], sequences[-1] + 1)) - set(sequences)) if sequences else []
    bundle = load_bundle(bundle_path)
    rate = changes[-1]["mbps"] if changes else link_mbps
    steady = [r for r in results if not changes or _stamp(r) >= changes[-1]["wall"] + 5.0] or results
    overhead = [r.latency_ms - r.head_ms - r.tail_ms - r.feature_bytes * 8e-3 / rate for r in steady]
    cuts: dict[str, int] = {}
    for r in results:
        cuts[r.cut_id] = cuts.get(r.cut_id, 0) + 1
    measured = {
        "link_mbps": link_mbps,
        "cuts": cuts,
        "lost_features": len(missing),
        "lost_sequences": missing[:20],
        "transport_overhead_ms": float(np.median(overhead)) if overhead else float("nan"),
        "switches": [
            _switch(results, bundle, c, changes[i + 1]["wall"] if i + 1 < len(changes) else None)
            for i, c in enumerate(changes)
        ],
    }
    return measured


def _stamp(r: Any) -> float:
    return r.header.stamp.sec + r.header.stamp.nanosec * 1e-9


def _switch(results: Sequence[Any], bundle: Any, change: dict, until: float | None) -> dict[str, Any]:
    """How long after `change` the head settled on the cut the bundle names for the new rate."""
    cuts = bundle.cuts
    target = next((c.cut_id for c in cuts if c.covers(change["mbps"])), bundle.cut_id)
    after = [r for r in results if _stamp(r) >= change["wall"] and (until is None or _stamp(r) < until)]
    settled = next(
        (
            i
            for i in range(len(after) - SETTLED_FRAMES + 1)
            if all(r.cut_id == target for r in after[i : i + SETTLED_FRAMES])
        ),
        None,
    )
    outcome: dict[str, Any] = {"at_s": change["at_s"], "mbps": change["mbps"], "target_cut": target}
    outcome["frames"] = len(after)
    if settled is None:
        outcome["switch_s"] = None
        return outcome
    outcome["switch_s"] = round(_stamp(after[settled]) - change["wall"], 3)
    rest = after[settled:]
    outcome["share_on_target_after"] = round(sum(r.cut_id == target for r in rest) / len(rest), 3)
    return outcome


def in_bed() -> Bed:
    """The bed this benchmark runs in (it was started with INSIDE_FLAG by `run_outside`)."""
    try:
        return Bed.from_env()
    except TestbedError as exc:
        raise SplitcompError(f"{INSIDE_FLAG} is internal to `bench pipeline --link`: {exc}") from exc
