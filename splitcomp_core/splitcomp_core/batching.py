"""Frames from many robots gathered into fair batches for one tail: per-robot shallow queues, round-robin.

A tail that serves a fleet decodes every frame as it arrives (inter-frame references stay whole) and
hands the decoded frame to this queue. Each robot holds at most `depth` frames: a newer frame pushes
out that robot's oldest, whose inference is skipped (a stale answer is worth less than a fresh one)
and counted. Worker threads (one or several) take batches of up to `max_batch` frames.

Waiting: a batch that is not full waits, at most `wait_s` after its oldest frame, only while another
robot's frame is due by then (from that robot's recent arrival rate: ArrivalRates) and no other worker
is idle (an idle worker would serve that frame at once). With nothing due, a batch that cannot grow
goes at once, so a lone robot never waits for a batch.

Spreading: the ready frames are shared among the workers waiting for them: a worker takes at most its
share (ready frames / idle workers, rounded up), so two frames and two idle workers run as two batches
of one at once, not as one batch of two while a worker sits idle. On a CPU, where a batch of N costs
about N single runs, this keeps every core busy; on a GPU, batches still grow once the workers are busy.

Order: a robot whose frame is in inference (taken, not yet `done`) is held back from every other
batch, so with several workers a robot still has at most one batch in inference and its answers go
out in order. Its newer frame waits in its queue (replacing an older one, as always).

Fairness: a batch is filled one frame per robot per pass, robots in a fixed ring, and each batch
starts one robot further round the ring than the one before. A robot that floods the tail only ever
replaces its own frames, so it can neither push out nor delay another robot's frame by more than one
frame per batch. Frames of different cuts (a multi-cut bundle) never share a batch: a batch holds
the cut of its first robot's oldest frame, and other cuts wait for the next batch.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")

# A fleet tail's defaults, what measured best on a CPU edge (docs/fleet.md, `bench fleet`): inference workers share
# the cores, one ONNX Runtime thread each; ONNX Runtime's own pool (0 threads = its default) spins and competes.
FLEET_INFERENCE_WORKERS = 2
FLEET_INTRA_OP_THREADS = 1


@dataclasses.dataclass(frozen=True)
class Pending(Generic[Item]):
    """One queued frame: whose it is, which batch group (cut) it belongs to, and when it was queued."""

    robot: str
    group: Hashable
    item: Item
    queued_at: float


class ArrivalRates:
    """Each robot's recent interval between frames (smoothed) and its last arrival: whose next frame is due when.

    A robot is due by a time when its next frame is expected by then, and it has not gone quiet: a robot
    more than SILENT_INTERVALS intervals past its last frame, or with one frame seen so far, is not due.
    """

    SMOOTHING = 0.25
    SILENT_INTERVALS = 2.0

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._interval: dict[str, float] = {}

    def arrived(self, robot: str, at: float) -> None:
        last = self._last.get(robot)
        if last is not None:
            gap = max(at - last, 0.0)
            old = self._interval.get(robot)
            self._interval[robot] = gap if old is None else old + self.SMOOTHING * (gap - old)
        self._last[robot] = at

    def interval(self, robot: str) -> float | None:
        return self._interval.get(robot)

    def due(self, robot: str, now: float, by: float) -> bool:
        """Whether `robot`'s next frame is expected by `by`, seen from `now`."""
        interval, last = self._interval.get(robot), self._last.get(robot)
        if interval is None or last is None:
            return False
        return last + interval <= by and now - last <= self.SILENT_INTERVALS * interval


class FairBatcher(Generic[Item]):
    """Thread-safe per-robot queues of depth `depth` and round-robin batches; `put` never blocks.

    Every batch taken (`take`, `next_batch`) holds its robots until `done(batch)`: call it once the
    batch's answers are out, from the worker that ran it.
    """

    def __init__(self, robots: Sequence[str], depth: int = 1, clock=time.monotonic) -> None:
        if not robots or len(set(robots)) != len(robots):
            raise ValueError(f"robots must be distinct and at least one: {list(robots)}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.robots = list(robots)
        self._depth = depth
        self._clock = clock
        self._queues: dict[str, collections.deque[Pending[Item]]] = {r: collections.deque() for r in self.robots}
        self._busy: set[str] = set()
        self._idle = 0  # workers waiting in next_batch
        self._rates = ArrivalRates()
        self._start = 0
        self._closed = False
        self._ready = threading.Condition()

    def put(self, robot: str, group: Hashable, item: Item) -> Pending[Item] | None:
        """Queue `item` for `robot`; returns the stale frame it pushed out (its inference is skipped), if any."""
        with self._ready:
            queue = self._queues[robot]
            now = self._clock()
            self._rates.arrived(robot, now)
            stale = queue.popleft() if len(queue) >= self._depth else None
            queue.append(Pending(robot, group, item, now))
            self._ready.notify_all()
            return stale

    def pending(self) -> int:
        with self._ready:
            return sum(len(q) for q in self._queues.values())

    def in_inference(self) -> set[str]:
        """The robots whose frames are in a batch taken and not yet `done`."""
        with self._ready:
            return set(self._busy)

    def idle_workers(self) -> int:
        """The workers waiting in `next_batch`: the ready frames are shared among them."""
        with self._ready:
            return self._idle

    def close(self) -> None:
        """Wake the workers for good: `next_batch` returns an empty batch from now on."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def take(self, max_batch: int) -> list[Pending[Item]]:
        """At most `max_batch` pending frames of one group, assembled round-robin from robots not in inference
        (empty when none is pending), no more than the share of the workers waiting in `next_batch`; their robots
        are held until `done`."""
        with self._ready:
            return self._take(max_batch)

    def done(self, batch: Sequence[Pending[Item]]) -> None:
        """The batch's answers are out: its robots' next frames may go to any worker."""
        with self._ready:
            self._busy.difference_update(p.robot for p in batch)
            self._ready.notify_all()

    def wait_left(self, max_batch: int, wait_s: float) -> float:
        """How much longer (s) the next batch should wait for frames; 0: take it now.

        0 when no frame is ready, when `max_batch` are ready, when the oldest ready frame has waited
        `wait_s`, when another worker is idle, or when no other robot (none queued, none in inference) is due
        before then.
        """
        with self._ready:
            return self._wait_left(max_batch, wait_s, self._clock())

    def next_batch(self, max_batch: int, wait_s: float, idle_s: float = 0.5) -> list[Pending[Item]]:
        """Block until a frame is ready (at most `idle_s`), wait as `wait_left` says, then take a batch (held until
        `done`; this worker's share of the ready frames); empty when none was ready, another worker took them, or
        the batcher is closed."""
        with self._ready:
            self._idle += 1
            try:
                if not self._ready.wait_for(lambda: self._closed or self._ready_count() > 0, timeout=idle_s):
                    return []
                while not self._closed:
                    left = self._wait_left(max_batch, wait_s, self._clock())
                    if left <= 0:
                        break
                    self._ready.wait(left)
                return [] if self._closed else self._take(max_batch)
            finally:
                self._idle -= 1

    def _ready_count(self) -> int:
        return sum(len(q) for r, q in self._queues.items() if r not in self._busy)

    def _wait_left(self, max_batch: int, wait_s: float, now: float) -> float:
        ready = [p for r, q in self._queues.items() if r not in self._busy for p in q]
        if not ready or len(ready) >= max_batch or self._idle > 1:
            return 0.0
        deadline = min(p.queued_at for p in ready) + wait_s
        if deadline <= now:
            return 0.0
        idle = (r for r, q in self._queues.items() if not q and r not in self._busy)
        return deadline - now if any(self._rates.due(r, now, deadline) for r in idle) else 0.0

    def _take(self, max_batch: int) -> list[Pending[Item]]:
        ring = self.robots[self._start :] + self.robots[: self._start]
        order = [r for r in ring if r not in self._busy]
        first = next((r for r in order if self._queues[r]), None)
        if first is None:
            return []
        self._start = (self.robots.index(first) + 1) % len(self.robots)
        group = self._queues[first][0].group
        max_batch = min(max_batch, -(-self._ready_count() // max(self._idle, 1)))  # this worker's share
        batch: list[Pending[Item]] = []
        while len(batch) < max_batch:
            took = False
            for robot in order:
                queue = self._queues[robot]
                match = next((p for p in queue if p.group == group), None)
                if match is None or len(batch) >= max_batch:
                    continue
                queue.remove(match)
                batch.append(match)
                took = True
            if not took:
                break
        self._busy.update(p.robot for p in batch)
        return batch


class BatchHistogram:
    """How many batches of each size ran, and each robot's share of the frames they held."""

    def __init__(self) -> None:
        self.sizes: collections.Counter[int] = collections.Counter()
        self.frames: collections.Counter[str] = collections.Counter()

    def add(self, robots: Sequence[str]) -> None:
        self.sizes[len(robots)] += 1
        self.frames.update(robots)

    def text(self) -> str:
        """`size:count` pairs, smallest batch first (what /diagnostics shows)."""
        return " ".join(f"{size}:{n}" for size, n in sorted(self.sizes.items()))

    def share(self, robot: str) -> float:
        total = sum(self.frames.values())
        return self.frames[robot] / total if total else 0.0
