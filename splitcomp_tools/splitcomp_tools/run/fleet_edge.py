"""The edge of `bench fleet` in each configuration, as processes it starts, and what they cost.

- separate: one tail_node per robot, each in the robot's namespace (today's design), each at the same
  ONNX Runtime thread count;
- batched: one tail_node with `robots` set, batching in process, at its own defaults for threads and
  inference workers unless told otherwise;
- triton: one tail_node with backend triton, over a tritonserver this module starts (splitcomp_tools.run.triton_run).

CPU and memory are read from /proc for the processes started here and their descendants (Triton's python
backend runs each model instance as a child process): CPU as the share of one core over the measured
interval, RSS summed at its end.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from splitcomp_core.bundle import Bundle
from splitcomp_core.errors import SplitcompError
from splitcomp_tools.run.local_launch import NodeProcess

CONFIGS = ("separate", "batched", "triton")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (through /proc/<pid>/task/*/children)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                queue += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds the processes have used so far (gone processes count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident memory of the processes, summed."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
        except OSError:
            continue
    return total


class Edge:
    """The tail nodes (and server) of one configuration; `pids()` lists every process to measure."""

    def __init__(self, config: str, bundle: Bundle, namespace: str, robots: Sequence[str], log_dir: Path) -> None:
        self.config, self.bundle, self.namespace, self.robots = config, bundle, namespace.strip("/"), list(robots)
        self.log_dir = log_dir
        self.nodes: list[NodeProcess] = []
        self._logs: list[IO] = []

    def start(
        self,
        max_batch: int,
        batch_wait_ms: int,
        threads: int,
        triton_url: str = "",
        fleet_threads: int | None = None,
        fleet_workers: int | None = None,
    ) -> None:
        """Start the tails: separate ones at `threads` ONNX Runtime threads each; the fleet tail at its own
        defaults, or at `fleet_threads` threads and `fleet_workers` inference workers where given."""
        common = {"bundle": str(self.bundle.path), "providers": ["cpu"]}
        if self.config == "separate":
            for robot in self.robots:
                self._node(f"tail_{robot}", {**common, "intra_op_threads": threads}, f"/{self.namespace}/{robot}")
            return
        fleet = {**common, "robots": self.robots, "max_batch": max_batch, "batch_wait_ms": batch_wait_ms}
        if fleet_threads is not None:
            fleet["intra_op_threads"] = fleet_threads
        if fleet_workers is not None:
            fleet["inference_workers"] = fleet_workers
        if self.config == "triton":
            fleet.update(backend="triton", triton_url=triton_url)
        self._node("tail_fleet", fleet, f"/{self.namespace}")

    def _node(self, log_name: str, params: dict, namespace: str) -> None:
        log = open(self.log_dir / f"{self.config}_{log_name}.log", "w")  # noqa: SIM115 - open while the node runs
        self._logs.append(log)
        self.nodes.append(
            NodeProcess("splitcomp_tail_node", "tail_node", params, log=log, extra_args=["-r", f"__ns:={namespace}"])
        )

    def status_name(self, robot: str) -> str:
        """The /diagnostics status that counts `robot`'s frames: its own tail's, or its row in the fleet tail's."""
        if self.config == "separate":
            return f"splitcomp: /{self.namespace}/{robot}/tail_node"
        return f"splitcomp: /{self.namespace}/tail_node robot {robot}"

    def pids(self, extra: Sequence[int] = ()) -> list[int]:
        return [p for root in [n.process.pid for n in self.nodes] + list(extra) for p in descendants(root)]

    def check_running(self) -> None:
        for node in self.nodes:
            if not node.running():
                raise SplitcompError(f"a tail_node of {self.config} exited; see its log in {self.log_dir}")

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        for log in self._logs:
            log.close()
