"""The head's inter-frame coding: which frames go as key frames, and which earlier frame a P-frame is coded against.

With `keyframe_interval` N > 0 the head sends a key frame, then up to N - 1 P-frames, each coded against
the frame sent just before it (see splitcomp_core.interframe). The tail can decode a P-frame only when it
holds exactly that frame, so every loss must end the chain: the head learns of losses from the tail's
answers. A rejected P-frame is never answered, so a frame still unanswered after `timeout_s`, or an
answer that skips frames the head sent since its last key frame, makes the next frame a key frame. So
do a cut switch (other tensors), new encoder settings, and raw floats (nothing to subtract).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from splitcomp_core.cuts import HeadCuts
from splitcomp_core.head import HeadResult

DEFAULT_TIMEOUT_S = 1.0
MAX_INTERVAL = 10_000
MAX_PENDING = 1024  # frames remembered while waiting for answers (a P-frame chain never outlives a timeout)


@dataclasses.dataclass(frozen=True)
class _Sent:
    sequence: int
    cut_id: str
    settings: object
    codes: Mapping[str, np.ndarray] | None


class KeyframeSchedule:
    """Key frames every `interval` frames (0 = every frame), and at once after a loss. Thread-safe: the head's
    worker asks `reference` and reports `sent`, its executor reports `answered`."""

    def __init__(self, interval: int = 0, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._lock = threading.Lock()
        self.interval = self._checked_interval(interval)
        self.timeout_s = self._checked_timeout(timeout_s)
        self._last: _Sent | None = None
        self._since_key = 0
        self._pending: OrderedDict[int, float] = OrderedDict()  # sent since the last key frame -> when
        self._lost = False
        self.key_frames = 0
        self.p_frames = 0
        self.losses = 0  # chains ended by a timeout or a skipped answer

    @property
    def listens(self) -> bool:
        """Whether the head needs the tail's answers (to learn of losses)."""
        return self.interval > 0

    def set_interval(self, interval: int) -> None:
        """Change N from the next frame on; the current chain ends at once when N shrinks below it."""
        with self._lock:
            self.interval = self._checked_interval(interval)

    def set_timeout(self, timeout_s: float) -> None:
        with self._lock:
            self.timeout_s = self._checked_timeout(timeout_s)

    def reference(self, cut_id: str, settings: object, now_s: float) -> tuple[int, Mapping[str, np.ndarray] | None]:
        """(sequence, codes) of the frame the next one is coded against, or (0, None): the next is a key frame."""
        with self._lock:
            last = self._last
            if self._overdue(now_s):
                self._lost, self._pending = True, OrderedDict()
                self.losses += 1
            chain = last is not None and last.codes is not None and 0 < self._since_key < self.interval
            if not chain or self._lost or last is None or last.cut_id != cut_id or last.settings is not settings:
                return 0, None
            return last.sequence, last.codes

    def sent(
        self,
        sequence: int,
        cut_id: str,
        settings: object,
        codes: Mapping[str, np.ndarray] | None,
        reference_sequence: int,
        now_s: float,
    ) -> None:
        """The head published frame `sequence`, coded against `reference_sequence` (0: a key frame)."""
        with self._lock:
            if reference_sequence == 0:
                self.key_frames += 1
                self._since_key, self._lost = 1, False
                self._pending.clear()
            else:
                self.p_frames += 1
                self._since_key += 1
            if self.interval <= 0:
                self._last = None
                return
            self._last = _Sent(sequence, cut_id, settings, codes)
            self._pending[sequence] = now_s
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)

    def answered(self, sequence: int) -> None:
        """The tail answered frame `sequence`; frames sent before it since the last key frame and not answered are lost."""
        with self._lock:
            if sequence not in self._pending:
                return  # an answer to a frame before the last key frame, or to another head
            skipped = next(iter(self._pending)) < sequence
            for earlier in [s for s in self._pending if s <= sequence]:
                del self._pending[earlier]
            if skipped and not self._lost:
                self._lost = True
                self.losses += 1

    def _overdue(self, now_s: float) -> bool:
        return bool(self._pending) and now_s - next(iter(self._pending.values())) > self.timeout_s

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


class InterFrameHead:
    """HeadCuts that code each frame as a key frame or a P-frame, as the schedule says."""

    def __init__(self, heads: HeadCuts, schedule: KeyframeSchedule) -> None:
        self.heads = heads
        self.schedule = schedule

    def __call__(self, sequence: int, cut_id: str, image: Any, encoding: str, now_s: float) -> HeadResult:
        pipeline = self.heads.pipelines[cut_id]
        settings = pipeline.encoding
        reference_sequence, codes = self.schedule.reference(cut_id, settings, now_s)
        result = pipeline(image, encoding, codes)
        result.reference_sequence = reference_sequence
        self.schedule.sent(sequence, cut_id, settings, result.codes, reference_sequence, now_s)
        return result
