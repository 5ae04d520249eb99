"""The head's inter-frame coding: which frames go as key frames, and which earlier frame a P-frame is coded against.

With `keyframe_interval` N > 0 the head sends a key frame, then up to N - 1 P-frames (see
splitcomp_core.interframe). The tail decodes a P-frame only against exactly the frame it names, and it
acknowledges every frame it receives (decoded, missing_reference or rejected). Two ways to pick the reference:

- `acknowledged` (the default): the newest frame the tail has acknowledged as decoded, of the same cut and
  encoder settings, and no further back than the tail holds (`window` frames, as its acknowledgements say).
  A lost message then costs only itself: the frames after it refer to one the tail has.
- `previous`: the frame sent just before, so one loss breaks the chain until the next key frame (an
  acknowledgement that skips frames, a refusal, or the timeout tells the head).

In both, `missing_reference` makes the next frame a key frame at once, and `timeout_s` without any
acknowledgement while frames are outstanding (the tail stopped, or restarted) does the same. So do a cut
switch (other tensors), new encoder settings, and raw floats (nothing to subtract).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from splitcomp_core.cuts import HeadCuts
from splitcomp_core.head import HeadResult

DEFAULT_TIMEOUT_S = 1.0
MAX_INTERVAL = 10_000
MAX_PENDING = 1024  # frames remembered while waiting for acknowledgements (a chain never outlives a timeout)
REFERENCE_MODES = ("acknowledged", "previous")
DEFAULT_REFERENCE_FRAMES = 32  # 1.3 s at 25 fps: measured against 8 on the lossy bed (docs/video.md)
MAX_REFERENCE_FRAMES = 64
ACK_STATUSES = ("decoded", "missing_reference", "rejected")


@dataclasses.dataclass(frozen=True)
class _Sent:
    sequence: int
    cut_id: str
    settings: object
    reference_sequence: int
    stamp: Hashable


class KeyframeSchedule:
    """Key frames every `interval` frames (0 = every frame), and at once after a loss. Thread-safe: the head's
    worker asks `reference` and reports `sent`, its executor reports `acknowledged`.

    Memory is bounded: the last MAX_PENDING frames' records (to check acknowledgements against) and the codes of
    the last MAX_REFERENCE_FRAMES + 1 (the only ones that can still be references).
    """

    def __init__(
        self,
        interval: int = 0,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        mode: str = "acknowledged",
        window: int = DEFAULT_REFERENCE_FRAMES,
    ) -> None:
        self._lock = threading.Lock()
        self.interval = self._checked_interval(interval)
        self.timeout_s = self._checked_timeout(timeout_s)
        self.mode = self._checked_mode(mode)
        self.window = self._checked_window(window)
        self.tail_window: int | None = None  # how many frames the tail holds, from its acknowledgements
        self._sent: OrderedDict[int, _Sent] = OrderedDict()
        self._codes: OrderedDict[int, Mapping[str, np.ndarray] | None] = OrderedDict()
        self._heard: set[int] = set()  # frames acknowledged at all (duplicates are ignored)
        self._acked: set[int] = set()  # frames acknowledged as decoded since the chain last broke
        self._pending: OrderedDict[int, float] = OrderedDict()  # unacknowledged since the last key frame -> when
        self._since_key = 0
        self._lost = False
        self._epoch = 0  # frames before this one were sent before the chain last broke
        self.key_frames = 0
        self.p_frames = 0
        self.losses = 0  # chains ended: a timeout, a missing reference, or (previous) a skipped or refused frame
        self.acks: collections.Counter[str] = collections.Counter()  # by status, and ignored.<why>

    @property
    def listens(self) -> bool:
        """Whether the head needs the tail's acknowledgements (to pick references and learn of losses)."""
        return self.interval > 0

    def set_interval(self, interval: int) -> None:
        """Change N from the next frame on; the current chain ends at once when N shrinks below it."""
        with self._lock:
            self.interval = self._checked_interval(interval)

    def set_timeout(self, timeout_s: float) -> None:
        with self._lock:
            self.timeout_s = self._checked_timeout(timeout_s)

    def set_mode(self, mode: str) -> None:
        """Switch between `acknowledged` and `previous`; the next frame is a key frame."""
        with self._lock:
            self.mode = self._checked_mode(mode)
            self._lost = True

    def reference(
        self, sequence: int, cut_id: str, settings: object, now_s: float
    ) -> tuple[int, Mapping[str, np.ndarray] | None]:
        """(sequence, codes) of the frame that frame `sequence` is coded against, or (0, None): a key frame."""
        with self._lock:
            if self._pending and now_s - next(iter(self._pending.values())) > self.timeout_s:
                self._chain_broken()
            if self._lost or not 0 < self._since_key < self.interval:
                return 0, None
            if self.mode == "previous":
                candidate = next(reversed(self._sent)) if self._sent else 0
            else:
                candidate = self._newest_acknowledged(sequence)
            sent, codes = self._sent.get(candidate), self._codes.get(candidate)
            if sent is None or codes is None or sent.cut_id != cut_id or sent.settings is not settings:
                return 0, None
            return candidate, codes

    def sent(
        self,
        sequence: int,
        cut_id: str,
        settings: object,
        codes: Mapping[str, np.ndarray] | None,
        reference_sequence: int,
        now_s: float,
        stamp: Hashable = None,
    ) -> None:
        """The head published frame `sequence` (camera `stamp`), coded against `reference_sequence` (0: a key frame)."""
        with self._lock:
            if reference_sequence == 0:
                self.key_frames += 1
                self._since_key = 1
                if self._lost:
                    self._lost, self._epoch = False, sequence
                self._pending.clear()
            else:
                self.p_frames += 1
                self._since_key += 1
            if self.interval <= 0:
                self._sent.clear()
                self._codes.clear()
                return
            self._sent[sequence] = _Sent(sequence, cut_id, settings, reference_sequence, stamp)
            self._codes[sequence] = codes
            self._pending[sequence] = now_s
            for held, most in (
                (self._sent, MAX_PENDING),
                (self._pending, MAX_PENDING),
                (self._codes, MAX_REFERENCE_FRAMES + 1),
            ):
                while len(held) > most:
                    held.popitem(last=False)
            oldest = next(iter(self._sent))
            self._heard = {s for s in self._heard if s >= oldest}
            self._acked = {s for s in self._acked if s > sequence - MAX_REFERENCE_FRAMES}

    def acknowledged(
        self, sequence: int, status: str, stamp: Hashable = None, tail_window: int | None = None
    ) -> str | None:
        """The tail's acknowledgement of frame `sequence`; returns why it was ignored, or None when it counted.

        Ignored: a frame this head never sent (or sent with another stamp: another head on the topic), one too
        old to remember, a duplicate, or an unknown status. Each is counted under `ignored.<why>`.
        """
        with self._lock:
            why = self._ignored(sequence, status, stamp)
            if why is not None:
                self.acks[f"ignored.{why}"] += 1
                return why
            self.acks[status] += 1
            self._heard.add(sequence)
            if tail_window is not None:
                self.tail_window = max(0, min(int(tail_window), MAX_REFERENCE_FRAMES))
            skipped = sequence in self._pending and next(iter(self._pending)) < sequence
            for earlier in [s for s in self._pending if s <= sequence]:
                del self._pending[earlier]
            if sequence < self._epoch:
                return None  # sent before the chain last broke: it says nothing of what the tail holds now
            if status == "decoded":
                self._acked.add(sequence)
                if self.mode == "previous" and skipped:
                    self._chain_broken()
            elif status == "missing_reference" or self.mode == "previous":
                self._chain_broken()
            return None

    def answered(self, sequence: int, tail_window: int = DEFAULT_REFERENCE_FRAMES) -> None:
        """The tail decoded frame `sequence` and holds `tail_window` frames: an offline run's perfect link."""
        with self._lock:
            known = self._sent.get(sequence)
        if known is not None:
            self.acknowledged(sequence, "decoded", known.stamp, tail_window)

    def _ignored(self, sequence: int, status: str, stamp: Hashable) -> str | None:
        if status not in ACK_STATUSES:
            return "status"
        sent = self._sent.get(sequence)
        if sent is None:
            newest = next(reversed(self._sent), 0) if self._sent else 0
            return "unknown" if sequence > newest or sequence <= 0 else "old"
        if sent.stamp != stamp:
            return "unknown"
        if sequence in self._heard:
            return "duplicate"
        return None

    def _newest_acknowledged(self, sequence: int) -> int:
        """The newest decoded frame the tail still holds when frame `sequence` arrives (0: none).

        The tail keeps its last `tail_window` decoded frames; at most `sequence - s - 1` frames can reach it
        between frame s and this one, so s is still held when `sequence - s <= window`.
        """
        window = min(self.window, self.tail_window if self.tail_window is not None else 0)
        held = [s for s in self._acked if 0 < sequence - s <= window]
        return max(held, default=0)

    def _chain_broken(self) -> None:
        self._lost = True
        self._pending.clear()
        self._acked.clear()
        self.losses += 1

    @staticmethod
    def _checked_interval(interval: int) -> int:
        if isinstance(interval, bool) or not isinstance(interval, int) or not 0 <= interval <= MAX_INTERVAL:
            raise ValueError(f"keyframe_interval must be an integer 0..{MAX_INTERVAL} (0 = off), got {interval!r}")
        return interval

    @staticmethod
    def _checked_timeout(timeout_s: float) -> float:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 3600:
            raise ValueError(f"keyframe_timeout_s must be a number of seconds in (0, 3600], got {timeout_s!r}")
        return float(timeout_s)

    @staticmethod
    def _checked_mode(mode: str) -> str:
        if mode not in REFERENCE_MODES:
            raise ValueError(f"reference must be one of {', '.join(REFERENCE_MODES)}, got {mode!r}")
        return mode

    @staticmethod
    def _checked_window(window: int) -> int:
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_REFERENCE_FRAMES:
            raise ValueError(f"reference_frames must be an integer 1..{MAX_REFERENCE_FRAMES}, got {window!r}")
        return window


class InterFrameHead:
    """HeadCuts that code each frame as a key frame or a P-frame, as the schedule says."""

    def __init__(self, heads: HeadCuts, schedule: KeyframeSchedule) -> None:
        self.heads = heads
        self.schedule = schedule

    def __call__(
        self, sequence: int, cut_id: str, image: Any, encoding: str, now_s: float, stamp: Hashable = None
    ) -> HeadResult:
        pipeline = self.heads.pipelines[cut_id]
        settings = pipeline.encoding
        reference_sequence, codes = self.schedule.reference(sequence, cut_id, settings, now_s)
        result = pipeline(image, encoding, codes)
        result.reference_sequence = reference_sequence
        self.schedule.sent(sequence, cut_id, settings, result.codes, reference_sequence, now_s, stamp)
        return result
