"""Rolling measurements for diagnostics: stage timings, rates and reject counts.

The nodes report p50/p95 of each stage over a recent window rather than since start-up, so a
slow-down shows within seconds; fixed-size deques keep memory bounded on a long-running robot.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable

import numpy as np


class RollingStats:
    """The last `window` samples of each named series (milliseconds, bytes...)."""

    def __init__(self, window: int = 300) -> None:
        self._window = window
        self._series: dict[str, collections.deque[float]] = {}

    def add(self, name: str, value: float) -> None:
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = collections.deque(maxlen=self._window)
        series.append(float(value))

    def percentiles(self, name: str, qs: Iterable[float] = (50, 95)) -> tuple | None:
        """The requested percentiles of a series, or None before its first sample."""
        series = self._series.get(name)
        if not series:
            return None
        return tuple(float(v) for v in np.percentile(np.fromiter(series, float, len(series)), list(qs)))

    def names(self) -> list:
        return list(self._series)


class RateMeter:
    """Events per second over the last `horizon_s` seconds."""

    def __init__(self, horizon_s: float = 5.0, clock=time.monotonic) -> None:
        self._horizon = horizon_s
        self._clock = clock
        self._stamps: collections.deque[float] = collections.deque()
        self._last: float | None = None

    def tick(self) -> None:
        self._last = self._clock()
        self._stamps.append(self._last)
        self._trim()

    def rate(self) -> float:
        self._trim()
        if len(self._stamps) < 2:
            return 0.0
        span = self._stamps[-1] - self._stamps[0]
        return (len(self._stamps) - 1) / span if span > 0 else 0.0

    def seconds_since_last(self) -> float | None:
        return None if self._last is None else self._clock() - self._last

    def _trim(self) -> None:
        cutoff = self._clock() - self._horizon
        while self._stamps and self._stamps[0] < cutoff:
            self._stamps.popleft()
