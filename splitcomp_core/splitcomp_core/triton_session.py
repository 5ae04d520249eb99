"""A session whose tail runs on a Triton Inference Server: the same `run(feeds)` as runtime.InferenceSession.

Triton's dynamic batcher merges only requests that overlap in time, so a batch of B frames goes out as B
asynchronous gRPC requests of one frame each, sent together: frames of other robots and other tail nodes
join the same server-side batch. Every failure is a BackendUnavailable whose `reason` a node can count
(triton_down, triton_timeout, triton_not_ready, triton_refused); no call waits longer than `timeout_s`.
After a connection failure the next call opens a fresh channel, so a restarted server is used again
without waiting for gRPC's reconnect backoff. tritonclient is imported here only, when a session is made.
`triton_model_name` is the one rule naming a bundle's tail in a model repository (triton_repo writes it,
tail_node asks for it when `triton_model` is empty).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from splitcomp_core.bundle import Bundle
from splitcomp_core.errors import BackendUnavailable, BundleError, RuntimeSetupError

DOWN = "triton_down"
TIMEOUT = "triton_timeout"
NOT_READY = "triton_not_ready"
REFUSED = "triton_refused"
_GRACE_S = 0.05  # beyond the gRPC deadline, for the cancelled calls' callbacks to arrive
_NOT_READY_TEXT = ("unknown model", "not found", "is not ready", "unavailable model", "not loaded")
MODEL_PREFIX = "splitcomp"
_ID_DIGITS = 12  # of the cut's model_id digest in the name


def triton_model_name(bundle: Bundle, cut_id: str | None = None) -> str:
    """The Triton model name of a bundle's tail: `splitcomp-<digest>`, or `splitcomp-<cut_id>-<digest>` for one
    cut of a multi-cut bundle (`cut_id` None: the bundle's default cut, or the cut a cut's own Bundle is).

    `<digest>` is the first 12 hex digits of that cut's model_id, so the name does not depend on where the
    bundle lies, and a repository written from another bundle, or from an older split of this one, answers
    `triton_not_ready` rather than another network's classes.
    """
    cuts = {c.cut_id: c.bundle for c in bundle.cuts}
    if cut_id is None:
        cut_id = bundle.cut_id
    elif cuts and cut_id not in cuts:
        raise BundleError(f"{bundle.path}: has no cut {cut_id!r}; its cuts are {sorted(cuts)}")
    elif not cuts and cut_id != bundle.cut_id:
        raise BundleError(f"{bundle.path}: is a single-cut bundle; it has no cut {cut_id!r}")
    manifest = cuts[cut_id].manifest if cuts else bundle.manifest
    digest = manifest.model_id.split(":")[-1][:_ID_DIGITS]
    return "-".join(p for p in (MODEL_PREFIX, cut_id, digest) if p)


class _Replies:
    """The answers of one `run`'s requests, filled by gRPC's callback threads, in the rows' order."""

    def __init__(self, count: int) -> None:
        self.results: list[Any] = [None] * count
        self.errors: list[Exception] = []
        self._left = count
        self._lock = threading.Lock()
        self.done = threading.Event()

    def callback(self, row: int) -> Any:
        def store(result: Any, error: Exception | None) -> None:
            with self._lock:
                if error is not None:
                    self.errors.append(error)
                else:
                    self.results[row] = result
                self._left -= 1
                if self._left == 0:
                    self.done.set()

        return store


class TritonSession:
    """The tail's network on a Triton server at `url` (gRPC, host:port), model `model`."""

    def __init__(self, url: str, model: str, timeout_s: float = 1.0) -> None:
        if not url.strip() or not model.strip():
            raise RuntimeSetupError(f"Triton needs a server address and a model name, got url={url!r} model={model!r}")
        if not timeout_s > 0:
            raise RuntimeSetupError(f"timeout_s must be above 0 seconds, got {timeout_s}")
        try:
            import tritonclient.grpc as grpcclient
            from tritonclient.utils import InferenceServerException, np_to_triton_dtype
        except ImportError as exc:
            raise RuntimeSetupError(
                f"the Triton backend needs tritonclient ({exc}); install it with: pip install 'tritonclient[grpc]==2.73.0'"
            ) from exc
        self._grpc = grpcclient
        self._server_error = InferenceServerException
        self._triton_dtype = np_to_triton_dtype
        self.url = url
        self.model = model
        self.timeout_s = float(timeout_s)
        self.provider = f"triton {url} {model}"
        self._client: Any = None
        self._lock = threading.Lock()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Infer B frames (axis 0 of every feed) as B overlapping requests; the outputs stacked in row order."""
        deadline = time.monotonic() + self.timeout_s
        rows = _batch_size(feeds)
        requests = [self._inputs(feeds, row) for row in range(rows)]
        client = self._connected()
        replies = _Replies(rows)
        try:
            for row, inputs in enumerate(requests):
                left = max(deadline - time.monotonic(), 1e-3)
                client.async_infer(self.model, inputs, replies.callback(row), client_timeout=left)
        except self._server_error as exc:
            raise self._failure(exc) from exc
        if not replies.done.wait(max(deadline - time.monotonic(), 0.0) + _GRACE_S):
            raise BackendUnavailable(TIMEOUT, self._timeout_text())
        if replies.errors:
            raise self._failure(replies.errors[0]) from replies.errors[0]
        return _stack(replies.results)

    def ready(self) -> bool:
        """Whether the server is up and the model is loaded (one or two short calls; never raises)."""
        try:
            client = self._connected()
            return bool(client.is_server_ready(client_timeout=self.timeout_s)) and bool(
                client.is_model_ready(self.model, client_timeout=self.timeout_s)
            )
        except Exception:  # any failure means "not ready"; run() says which one
            self._forget_channel()
            return False

    def close(self) -> None:
        """Close the gRPC channel (a later call opens a new one)."""
        self._forget_channel()

    def _connected(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._grpc.InferenceServerClient(self.url)
                except Exception as exc:  # a malformed address: tritonclient raises several kinds
                    raise BackendUnavailable(DOWN, f"Triton at {self.url}: cannot open a channel: {exc}") from exc
            return self._client

    def _forget_channel(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # closing a broken channel may fail; it is dropped either way
                client.close()

    def _inputs(self, feeds: Mapping[str, np.ndarray], row: int) -> list[Any]:
        inputs = []
        for name, value in feeds.items():
            one = np.ascontiguousarray(value[row : row + 1])
            try:
                tensor = self._grpc.InferInput(name, list(one.shape), self._triton_dtype(one.dtype))
                tensor.set_data_from_numpy(one)
            except (self._server_error, TypeError, ValueError) as exc:
                raise BackendUnavailable(REFUSED, f"input '{name}' of dtype {value.dtype}: {exc}") from exc
            inputs.append(tensor)
        return inputs

    def _failure(self, exc: Exception) -> BackendUnavailable:
        """The reason and the advice for a failed request (gRPC status first, then Triton's message)."""
        status = str(exc.status() if isinstance(exc, self._server_error) else "") or ""
        text = str(exc.message() if isinstance(exc, self._server_error) else exc) or repr(exc)
        lowered = text.lower()
        if "DEADLINE_EXCEEDED" in status or "deadline exceeded" in lowered:
            return BackendUnavailable(TIMEOUT, self._timeout_text())
        if "UNAVAILABLE" in status or "failed to connect" in lowered or "connection refused" in lowered:
            self._forget_channel()
            return BackendUnavailable(
                DOWN, f"Triton at {self.url} does not answer ({text}); start the server or fix triton_url"
            )
        if any(t in lowered for t in _NOT_READY_TEXT):
            return BackendUnavailable(
                NOT_READY,
                f"Triton at {self.url} has no ready model '{self.model}' ({text}); write it with `triton_repo` into "
                f"the server's model repository, or fix triton_model",
            )
        return BackendUnavailable(
            REFUSED,
            f"Triton model '{self.model}' refused the request ({text}); the bundle and the served model disagree: "
            f"rewrite the repository with `triton_repo` from this bundle",
        )

    def _timeout_text(self) -> str:
        return (
            f"Triton at {self.url} did not answer within {self.timeout_s:g} s; the server is overloaded or "
            f"stalled: add instances or servers, or raise the timeout"
        )


def _batch_size(feeds: Mapping[str, np.ndarray]) -> int:
    sizes = {name: (value.shape[0] if value.ndim else 0) for name, value in feeds.items()}
    if not sizes or len(set(sizes.values())) != 1 or next(iter(sizes.values())) < 1:
        raise BackendUnavailable(REFUSED, f"feeds must share a batch of at least 1 frame on axis 0, got {sizes}")
    return next(iter(sizes.values()))


def _stack(results: list[Any]) -> dict[str, np.ndarray]:
    names = [output.name for output in results[0].get_response().outputs]
    return {name: np.concatenate([result.as_numpy(name) for result in results], axis=0) for name in names}
