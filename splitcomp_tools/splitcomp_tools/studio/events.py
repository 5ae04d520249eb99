"""Live events from any thread to every open page: the ROS callbacks publish, each /api/live stream reads.

A page that connects first gets the latest diagnostics of every node and the last results, then
everything new. Each stream's queue is bounded: a page that stops reading loses its oldest events
instead of growing the server's memory.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator
from typing import Any

QUEUE_SIZE = 256
KEEP_RESULTS = 20


class Hub:
    """Fan-out of (kind, data) events; `publish` is thread-safe, `subscribe` runs on the server's event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()
        self._diagnostics: dict[str, dict[str, Any]] = {}
        self._results: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEEP_RESULTS)
        self.closed = False

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        event = {"kind": kind, "data": data}
        with self._lock:
            if kind == "diagnostics":
                self._diagnostics[data["name"]] = event
            elif kind == "classification":
                self._results.append(event)
            streams = list(self._streams)
        for loop, stream in streams:
            try:
                loop.call_soon_threadsafe(_offer, stream, event)
            except RuntimeError:  # that stream's loop has closed
                continue

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        with self._lock:
            self.closed = True
            streams = list(self._streams)
        for loop, stream in streams:
            try:
                loop.call_soon_threadsafe(_offer, stream, None)
            except RuntimeError:
                continue

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """The latest state, then every new event, until the hub closes or the caller stops iterating."""
        stream: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        key = (asyncio.get_running_loop(), stream)
        with self._lock:
            backlog = [*self._diagnostics.values(), *self._results]
            self._streams.add(key)
        try:
            for event in backlog:
                yield event
            while not self.closed:
                event = await stream.get()
                if event is None:
                    return
                yield event
        finally:
            with self._lock:
                self._streams.discard(key)


def _offer(stream: asyncio.Queue, event: dict[str, Any] | None) -> None:
    if stream.full():
        stream.get_nowait()
    stream.put_nowait(event)
