"""How fast the link to the edge is, seen from the head's own frames, and which cut of a bundle fits it.

The head cannot see the link, but it sees its frames come back: it remembers when it handed each
SplitFeatures to DDS and how many bytes it held, and when the Classification with that sequence
returns, the round trip less the tail's time and a fixed overhead is the time the bytes spent on the
link. A frame still unanswered long after it would have arrived at some rate bounds the rate from
above in the same way, so a link that collapses is noticed without waiting for the frames queued
behind it.

Each observation gives a range of rates, not a number: a transfer time is only known to within the
jitter (`resolution_ms`), so a 200-byte message can say "slower than 1 Mbit/s" but never "faster
than 20 Mbit/s". The switcher leaves a cut only when two frames in a row put the rate clearly
outside the cut's range (beyond it by the `hysteresis` factor), which keeps it from flapping on
noise. When the current cut's messages are too small ever to show that the link has become fast
enough for the next cut up, it sends one frame now and then at that cut (a probe: the tail answers
every cut, so the frame is not lost, it only costs that cut's latency), backing off while probes
keep saying no.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence

DEFAULT_OVERHEAD_MS = 2.0  # round-trip time that is not the feature bytes on the link (DDS both ways, the answer)
RESOLUTION_MS = 2.0  # how well one transfer time is known (jitter of the round trip)
HYSTERESIS = 1.25  # a rate must lie this factor beyond the current cut's range before the head leaves it
CONFIRM = 2  # frames in a row that must agree before a switch
PROBE_START_S = 0.5
PROBE_MAX_S = 2.0
MAX_PENDING = 256
PENDING_FORGET_S = 10.0  # a frame unanswered for this long is taken as lost and no longer bounds the rate

# What one message of features carries beyond its payload (codes, scale and offset), once per message: the other
# fields of SplitFeatures in CDR (header, model_id, the tensor's name, shape and sizes: 232 to 251 bytes for the
# toy and EfficientNet-Lite0, serialized by rclpy), the RTPS header, INFO_TS and DATA submessage (56) and UDP's
# header (8). Then per IP packet of at most PACKET_PAYLOAD_BYTES (a 1,500-byte MTU): IPv4's and Ethernet's
# headers, which a shaper on an Ethernet or veth device counts. docs/planner.md has the measurement;
# the head counts them too when it estimates the rate from round trips.
MESSAGE_FRAMING_BYTES = 304
PACKET_HEADER_BYTES = 20 + 14
PACKET_PAYLOAD_BYTES = 1500 - 20


def link_bytes(payload: float, framing: float = MESSAGE_FRAMING_BYTES) -> float:
    """The bytes a message of `payload` bytes puts on the link: framing 0 counts the payload alone."""
    if framing <= 0:
        return payload
    datagram = payload + framing
    return datagram + PACKET_HEADER_BYTES * math.ceil(datagram / PACKET_PAYLOAD_BYTES)


def parse_bandwidth(value: object) -> float | None:
    """The head's `bandwidth_mbps` setting: a positive number of Mbit/s, or "auto" (None: estimate it)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"bandwidth_mbps must be a positive number of Mbit/s or 'auto', got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class CutRange:
    """A cut and the link rates (Mbit/s) where it wins: min <= rate < max (max None: no upper end)."""

    cut_id: str
    min_mbps: float
    max_mbps: float | None
    bytes: float  # bytes per frame, as planned; replaced by what the head measures once it has sent a frame


@dataclasses.dataclass(frozen=True)
class Observation:
    """What one frame says about the link: the rate lies between low and high Mbit/s (high may be inf)."""

    sequence: int
    cut_id: str
    low_mbps: float
    high_mbps: float
    estimate_mbps: float


def rate_bounds(nbytes: float, transfer_ms: float, resolution_ms: float) -> tuple[float, float, float]:
    """(low, high, estimate) in Mbit/s of a link that moved `nbytes` in `transfer_ms`, known to +- resolution_ms."""
    bits = 8.0 * max(nbytes, 1.0)
    low = bits / (max(transfer_ms, 0.0) + resolution_ms) / 1e3
    high = bits / (transfer_ms - resolution_ms) / 1e3 if transfer_ms > resolution_ms else math.inf
    estimate = bits / transfer_ms / 1e3 if transfer_ms > 0 else math.inf
    return low, high, min(max(estimate, low), high)


@dataclasses.dataclass
class _Sent:
    time_s: float
    nbytes: float  # on the link
    cut_id: str
    bounded: bool = False  # already counted once as an upper bound while waiting


class CutSwitcher:
    """Picks the cut for each next frame: fixed by a bandwidth the user sets, or `auto` from the frames' round trips.

    Thread-safe: the head's worker asks `next_cut` and reports `sent`, its executor reports `answered`.
    """

    def __init__(
        self,
        cuts: Sequence[CutRange],
        overhead_ms: float = DEFAULT_OVERHEAD_MS,
        resolution_ms: float = RESOLUTION_MS,
        hysteresis: float = HYSTERESIS,
        confirm: int = CONFIRM,
        burst_bytes: float = 0.0,
        framing_bytes: float = 0.0,
    ) -> None:
        """`burst_bytes`: what a token-bucket link lets through at once (the test bed's tbf: 1600), which says
        nothing of its rate; a serial link has none. `framing_bytes`: what each message carries beyond its payload
        (`link_bytes`; `plan` counts MESSAGE_FRAMING_BYTES), so that round trips are divided by the bytes that
        crossed; 0 counts the payload alone."""
        if not cuts:
            raise ValueError("no cuts to choose from")
        self.cuts = list(cuts)
        self.overhead_ms, self.resolution_ms = overhead_ms, resolution_ms
        self.hysteresis, self.confirm = hysteresis, confirm
        self.burst_bytes = burst_bytes
        self.framing_bytes = framing_bytes
        self.bytes = {c.cut_id: link_bytes(c.bytes, framing_bytes) for c in self.cuts}  # on the link, per cut
        self.current = self.cuts[0].cut_id
        self.auto = True
        self.switches = 0
        self.last_estimate: float | None = None
        self._pending: OrderedDict[int, _Sent] = OrderedDict()
        self._streak: list[str] = []  # targets of the last frames that put the rate outside the current range
        self._probe_interval = PROBE_START_S
        self._next_probe = 0.0
        self._probing = False
        self._tail_ms = 0.0
        self._lock = threading.Lock()

    # -- the user's setting -------------------------------------------------------------------------------------

    def set_bandwidth(self, mbps: float | None) -> str:
        """A fixed link rate (the cut covering it from the next frame on), or None for auto; returns the cut."""
        with self._lock:
            self.auto = mbps is None
            self._streak.clear()
            if mbps is not None:
                self._switch(self._covering(mbps))
            return self.current

    # -- the head's frames --------------------------------------------------------------------------------------

    def next_cut(self, now_s: float) -> str:
        """The cut to encode the next frame with: the current one, or in auto mode now and then a probe."""
        with self._lock:
            if not self.auto or len(self.cuts) == 1:
                return self.current
            self._bound_by_pending(now_s)
            probe = self._probe_target()
            if probe is not None and (self._probing or now_s >= self._next_probe):
                self._next_probe = now_s + self._probe_interval
                return probe
            return self.current

    def sent(self, sequence: int, now_s: float, nbytes: int, cut_id: str) -> None:
        """The head handed a message of `nbytes` payload bytes at `cut_id` to DDS."""
        if len(self.cuts) == 1:
            return
        with self._lock:
            on_link = link_bytes(nbytes, self.framing_bytes)
            self.bytes[cut_id] = on_link
            self._pending[sequence] = _Sent(now_s, on_link, cut_id)
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)

    def answered(self, sequence: int, now_s: float, tail_ms: float) -> Observation | None:
        """A classification came back for `sequence` (tail_ms: its time on the edge); None if the frame is unknown."""
        with self._lock:
            sent = self._pending.pop(sequence, None)
            for old in [s for s in self._pending if s < sequence]:  # older ones will not come back any more
                del self._pending[old]
            if sent is None:
                return None
            self._tail_ms = tail_ms
            if sent.nbytes <= self.burst_bytes:  # it went through at once, whatever the rate
                return None
            transfer = (now_s - sent.time_s) * 1e3 - tail_ms - self.overhead_ms
            low, high, estimate = rate_bounds(sent.nbytes - self.burst_bytes, transfer, self.resolution_ms)
            observation = Observation(sequence, sent.cut_id, low, high, estimate)
            if sent.bounded:  # it already counted once, while it was overdue
                self.last_estimate = estimate
            else:
                self._observe(observation, now_s)
            return observation

    # -- decisions ----------------------------------------------------------------------------------------------

    def _bound_by_pending(self, now_s: float) -> None:
        """The oldest unanswered frame: had the link been fast it would be back; that bounds the rate from above."""
        for sequence, sent in list(self._pending.items()):
            age_s = now_s - sent.time_s
            if age_s > PENDING_FORGET_S:
                del self._pending[sequence]
                continue
            if sent.bounded or sent.nbytes <= self.burst_bytes:
                continue
            waited = age_s * 1e3 - self._tail_ms - self.overhead_ms
            _low, high, _ = rate_bounds(sent.nbytes - self.burst_bytes, waited, self.resolution_ms)
            if high * self.hysteresis <= self._range(self.current).min_mbps:
                sent.bounded = True
                self._observe(Observation(sequence, sent.cut_id, 0.0, high, high), now_s)
            return

    def _observe(self, observation: Observation, now_s: float) -> None:
        self.last_estimate = observation.estimate_mbps
        if not self.auto:
            return
        current = self._range(self.current)
        top = current.max_mbps * self.hysteresis if current.max_mbps is not None else math.inf
        bottom = current.min_mbps / self.hysteresis
        faster = observation.low_mbps >= top
        slower = observation.high_mbps <= bottom
        if not (faster or slower):
            if observation.high_mbps <= top and observation.low_mbps >= bottom:  # clearly inside: stay
                self._streak.clear()
            if observation.cut_id != self.current:  # a probe that said no: probe less often
                self._probing = False
                self._probe_interval = min(self._probe_interval * 2.0, PROBE_MAX_S)
            return
        self._streak.append(self._covering(observation.estimate_mbps))
        self._probing = faster and observation.cut_id != self.current  # confirm a promising probe at once
        if len(self._streak) >= self.confirm:
            target = self._streak[-1]
            self._streak.clear()
            self._probing = False
            self._switch(target)
            self._probe_interval = PROBE_MAX_S  # the link was just measured: no probe soon
            self._next_probe = now_s + PROBE_MAX_S

    def _probe_target(self) -> str | None:
        """The next cut up, when the current cut's messages are too small to ever show that it would win."""
        current = self._range(self.current)
        if current.max_mbps is None:
            return None
        best_low, _, _ = rate_bounds(max(self.bytes[self.current] - self.burst_bytes, 0.0), 0.0, self.resolution_ms)
        if best_low >= current.max_mbps * self.hysteresis:
            return None
        return self._covering(current.max_mbps)

    def _switch(self, cut_id: str) -> None:
        if cut_id != self.current:
            self.current = cut_id
            self.switches += 1

    def _range(self, cut_id: str) -> CutRange:
        return next(c for c in self.cuts if c.cut_id == cut_id)

    def _covering(self, mbps: float) -> str:
        for c in self.cuts:
            if c.min_mbps <= mbps and (c.max_mbps is None or mbps < c.max_mbps):
                return c.cut_id
        return self.cuts[-1].cut_id if mbps > 0 else self.cuts[0].cut_id
