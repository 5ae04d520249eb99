"""Frames from many robots gathered into fair batches for one tail: per-robot shallow queues, round-robin.

A tail that serves a fleet decodes every frame as it arrives (inter-frame references stay whole) and
hands the decoded frame to this queue. Each robot holds at most `depth` frames: a newer frame pushes
out that robot's oldest, whose inference is skipped (a stale answer is worth less than a fresh one)
and counted. A worker thread takes batches of up to `max_batch` frames, waiting at most `wait_s`
after the first pending frame for more to arrive.

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


@dataclasses.dataclass(frozen=True)
class Pending(Generic[Item]):
    """One queued frame: whose it is, which batch group (cut) it belongs to, and when it was queued."""

    robot: str
    group: Hashable
    item: Item
    queued_at: float


class FairBatcher(Generic[Item]):
    """Thread-safe per-robot queues of depth `depth` and round-robin batches; `put` never blocks."""

    def __init__(self, robots: Sequence[str], depth: int = 1, clock=time.monotonic) -> None:
        if not robots or len(set(robots)) != len(robots):
            raise ValueError(f"robots must be distinct and at least one: {list(robots)}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.robots = list(robots)
        self._depth = depth
        self._clock = clock
        self._queues: dict[str, collections.deque[Pending[Item]]] = {r: collections.deque() for r in self.robots}
        self._start = 0
        self._closed = False
        self._ready = threading.Condition()

    def put(self, robot: str, group: Hashable, item: Item) -> Pending[Item] | None:
        """Queue `item` for `robot`; returns the stale frame it pushed out (its inference is skipped), if any."""
        with self._ready:
            queue = self._queues[robot]
            stale = queue.popleft() if len(queue) >= self._depth else None
            queue.append(Pending(robot, group, item, self._clock()))
            self._ready.notify()
            return stale

    def pending(self) -> int:
        with self._ready:
            return sum(len(q) for q in self._queues.values())

    def close(self) -> None:
        """Wake the worker for good: `next_batch` returns an empty batch from now on."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def take(self, max_batch: int) -> list[Pending[Item]]:
        """At most `max_batch` pending frames of one group, assembled round-robin (empty when none is pending)."""
        with self._ready:
            return self._take(max_batch)

    def next_batch(self, max_batch: int, wait_s: float, idle_s: float = 0.5) -> list[Pending[Item]]:
        """Block until a frame is pending (at most `idle_s`), then up to `wait_s` more for `max_batch` of them."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._closed or self._count() > 0, timeout=idle_s) or self._closed:
                return []
            deadline = self._clock() + wait_s
            while not self._closed and self._count() < max_batch:
                left = deadline - self._clock()
                if left <= 0:
                    break
                self._ready.wait(left)
            return [] if self._closed else self._take(max_batch)

    def _count(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def _take(self, max_batch: int) -> list[Pending[Item]]:
        order = self.robots[self._start :] + self.robots[: self._start]
        first = next((r for r in order if self._queues[r]), None)
        if first is None:
            return []
        self._start = (self.robots.index(first) + 1) % len(self.robots)
        group = self._queues[first][0].group
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
