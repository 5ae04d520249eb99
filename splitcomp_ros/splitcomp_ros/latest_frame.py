"""LatestFrameWorker: one thread that always processes the newest item, at most `max_rate_hz` times a second.

A camera callback must never wait for a model. The callback only parks the newest frame here; the
worker takes whatever is newest when it is free, so a slow model skips stale frames (reported
through `on_drop`) instead of queueing them and adding latency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class LatestFrameWorker(Generic[Item]):
    """Runs `process(item)` on the newest submitted item in a worker thread; older waiting items are dropped."""

    def __init__(
        self,
        process: Callable[[Item], None],
        on_drop: Callable[[], None] = lambda: None,
        max_rate_hz: float = 0.0,
        name: str = "latest_frame",
    ) -> None:
        self._process = process
        self._on_drop = on_drop
        self._min_period = 0.0
        self.set_rate(max_rate_hz)
        self._pending: Item | None = None
        self._wake = threading.Condition()
        self._running = True
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def set_rate(self, max_rate_hz: float) -> None:
        """At most `max_rate_hz` items a second; 0 = as fast as the worker can."""
        if max_rate_hz < 0:
            raise ValueError(f"max_rate_hz must be >= 0, got {max_rate_hz}")
        self._min_period = 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0

    def submit(self, item: Item) -> None:
        """Park `item` as the newest; one still waiting is dropped (and counted)."""
        with self._wake:
            if self._pending is not None:
                self._on_drop()
            self._pending = item
            self._wake.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Stop after the item in progress; a waiting one is not processed."""
        with self._wake:
            self._running = False
            self._wake.notify()
        self._thread.join(timeout=timeout)

    def _work(self) -> None:
        next_slot = 0.0
        while True:
            with self._wake:
                while self._pending is None and self._running:
                    self._wake.wait(0.5)
                if not self._running:
                    return
            wait = next_slot - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self._wake:
                item, self._pending = self._pending, None
            next_slot = time.monotonic() + self._min_period
            if item is not None:
                self._process(item)
