"""Long requests as jobs: each runs in its own worker process, reports progress, and is polled by the page.

A calibration takes seconds to minutes, allocates per frame, and runs ONNX Runtime: in a process of
its own it never holds up the server, its memory goes back when it ends, and a crash ends only it.
At most `max_active` jobs run at once; one more is refused (429) rather than queued without bound.
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.studio.config import MAX_FINISHED_JOBS
from splitcomp_tools.studio.errors import Refused, not_found
from splitcomp_tools.studio.store import new_id

POLL_S = 0.2
_CONTEXT = multiprocessing.get_context("spawn")  # never fork a server that runs threads


@dataclasses.dataclass
class Job:
    """One job's state as GET /api/jobs/{id} reports it."""

    id: str
    kind: str
    bundle_id: str
    phases: Mapping[str, tuple[float, float]]  # phase -> the share of the bar it fills (from, to)
    status: str = "running"  # running, done, failed
    phase: str = "starting"
    done: int = 0
    total: int = 0
    fraction: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None
    started: float = dataclasses.field(default_factory=time.time)
    finished: float | None = None

    def progress(self, phase: str, done: int, total: int) -> None:
        low, high = self.phases.get(phase, (self.fraction, self.fraction))
        self.phase, self.done, self.total = phase, done, total
        self.fraction = max(self.fraction, low + (high - low) * (done / total if total else 0.0))

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.id,
            "kind": self.kind,
            "bundle_id": self.bundle_id,
            "status": self.status,
            "progress": {"phase": self.phase, "done": self.done, "total": self.total, "fraction": self.fraction},
            "result": self.result,
            "error": self.error,
            "started": self.started,
            "finished": self.finished,
        }


class Jobs:
    """Runs jobs in worker processes, at most `max_active` at once, and keeps the last finished ones."""

    def __init__(self, max_active: int) -> None:
        self.max_active = max_active
        self._lock = threading.Lock()
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._processes: dict[str, Any] = {}
        self._closed = False

    def submit(
        self,
        kind: str,
        bundle_id: str,
        target: Callable[..., dict[str, Any]],
        kwargs: Mapping[str, Any],
        phases: Mapping[str, tuple[float, float]],
        finish: Callable[[dict[str, Any]], dict[str, Any]] = lambda result: result,
    ) -> Job:
        """Start `target(progress=..., **kwargs)` (a module-level function) in a worker process.

        `finish` turns its result into what the job reports (it runs in the server, e.g. to add URLs).
        """
        with self._lock:
            self._check_room(bundle_id)
            job = Job(new_id(), kind, bundle_id, dict(phases))
            self._jobs[job.id] = job
            finished = [k for k, j in self._jobs.items() if j.status != "running"]
            for key in finished[: max(0, len(finished) - MAX_FINISHED_JOBS)]:
                del self._jobs[key]
        threading.Thread(target=self._run, args=(job, target, dict(kwargs), finish), daemon=True).start()
        return job

    def check_room(self, bundle_id: str) -> None:
        """Refused unless a job on `bundle_id` could start now (429: all slots taken, 409: that bundle is busy)."""
        with self._lock:
            self._check_room(bundle_id)

    def _check_room(self, bundle_id: str) -> None:
        if self._closed:
            raise Refused(409, "the studio is shutting down")
        active = [j for j in self._jobs.values() if j.status == "running"]
        if any(j.bundle_id == bundle_id for j in active):
            raise Refused(409, f"a job on bundle {bundle_id} is still running; wait for it (GET /api/jobs)")
        if len(active) >= self.max_active:
            raise Refused(429, f"{len(active)} jobs are running, the most this studio runs at once; retry later")

    def get(self, key: str) -> Job:
        with self._lock:
            job = self._jobs.get(key)
        if job is None:
            raise not_found("job", key)
        return job

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def running_on(self, bundle_id: str) -> bool:
        with self._lock:
            return any(j.bundle_id == bundle_id and j.status == "running" for j in self._jobs.values())

    def close(self) -> None:
        """Stop every worker process (the server is stopping)."""
        with self._lock:
            self._closed = True
            processes = list(self._processes.values())
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)

    def _run(self, job: Job, target: Callable, kwargs: dict, finish: Callable) -> None:
        messages = _CONTEXT.Queue()
        process = _CONTEXT.Process(target=_work, args=(target, kwargs, messages), daemon=True)
        with self._lock:
            if self._closed:
                self._end(job, None, "the studio is shutting down")
                return
            process.start()
            self._processes[job.id] = process
        result, error = None, None
        try:
            while True:
                try:
                    kind, payload = messages.get(timeout=POLL_S)
                except queue.Empty:
                    if not process.is_alive():
                        error = f"the worker process ended (exit code {process.exitcode}) before finishing"
                        break
                    continue
                if kind == "progress":
                    job.progress(*payload)
                    continue
                if kind == "done":
                    result = finish(payload)
                else:
                    error = payload
                break
        except Exception as exc:  # finish() or the queue failed: report it on the job, keep the server
            error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            process.join(timeout=10)
            messages.close()
            messages.cancel_join_thread()  # nothing more is sent; a terminated worker may have left data unread
            with self._lock:
                self._processes.pop(job.id, None)
            self._end(job, result, error)

    def _end(self, job: Job, result: dict[str, Any] | None, error: str | None) -> None:
        job.result, job.error = result, error
        if error is None:
            job.fraction = 1.0
        job.finished = time.time()
        job.status = "failed" if error is not None else "done"


def _work(target: Callable[..., dict[str, Any]], kwargs: dict[str, Any], messages: Any) -> None:
    """The worker process: run the job, send its progress and then its result or one error message."""
    try:
        result = target(progress=lambda phase, done, total: messages.put(("progress", (phase, done, total))), **kwargs)
    except (SplitcompError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        messages.put(("failed", str(exc)))
    except Exception as exc:  # a bug in a tool: say what it was instead of a silent exit
        messages.put(("failed", f"internal error: {type(exc).__name__}: {exc}"))
    else:
        messages.put(("done", result))
