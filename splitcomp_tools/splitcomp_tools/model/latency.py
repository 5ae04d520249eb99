"""The link model of a plan's predictions: predicted latency = robot head time + bytes x 8 / rate + edge
tail time + the transport overhead (fixed, or fitted to the payload from runs on the test bed: model/overhead.py);
the best cut per rate, and the ranges of rates where each winner wins (between two winners the boundary is where
their predictions cross).

The bytes that cross at the link's rate are the message's on the wire, not its payload alone: a message also
carries its other fields and the protocols' headers (`link_bytes`). On a slow link a few hundred bytes are
milliseconds, and a payload just under a token bucket's size no longer fits it once framed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence

from splitcomp_core.link import link_bytes
from splitcomp_tools.model.candidates import Candidate
from splitcomp_tools.model.overhead import OverheadFit

# Median of latency - head - tail - bytes*8/rate over `bench pipeline --link` runs on the demo model at
# 1.1, 5.85, 18.88 and 100 Mbit/s (README, "The split planner"): camera transport, image conversion, DDS.
DEFAULT_OVERHEAD_MS = 2.0


def key(mbps: float) -> str:
    """A bandwidth as the JSON and the tables name it: 1.1, 5.85, 18.88, 100."""
    return f"{mbps:g}"


@dataclasses.dataclass(frozen=True)
class Link:
    """The link model of the predictions: a message's bytes beyond `burst_bytes` cross at the link rate, and
    `overhead_ms` is everything else (camera transport, serialization, DDS) as measured on the test bed; with a
    `fit`, the overhead grows with the message's bytes as fitted (and `overhead_ms` is its intercept).

    A serial link has no burst. A token-bucket shaper (the test bed's tbf: 1600 bytes, one full frame; many
    operators' policers) lets a full bucket through at once, so small messages cost nothing of the rate.
    `framing_bytes` per message (and the packets' headers, `link_bytes`) cross with the payload; 0 counts the
    payload alone.
    """

    overhead_ms: float = DEFAULT_OVERHEAD_MS
    burst_bytes: float = 0.0
    fit: OverheadFit | None = None
    framing_bytes: float = 0.0

    @classmethod
    def from_fit(cls, fit: OverheadFit, like: Link | None = None) -> Link:
        """`like` (default: no bucket, no framing) with the overhead `fit` (its intercept also as the fixed
        `overhead_ms`, for old readers)."""
        return dataclasses.replace(like or cls(), overhead_ms=fit.intercept_ms, fit=fit)

    def overhead(self, nbytes: float) -> float:
        """The transport overhead of a message of `nbytes` bytes."""
        return self.fit.at(nbytes) if self.fit is not None else self.overhead_ms

    def on_link(self, payload: float) -> float:
        """The bytes a message of `payload` bytes puts on this link."""
        return link_bytes(payload, self.framing_bytes)

    def waiting(self, payload: float) -> float:
        """The bytes of such a message that wait for the link's rate: those beyond the bucket."""
        return max(0.0, self.on_link(payload) - self.burst_bytes)

    def waiting_bytes(self, c: Candidate) -> float:
        assert c.bytes is not None
        return self.waiting(c.bytes)

    def latency(self, c: Candidate, mbps: float) -> float:
        assert c.head_total_ms is not None and c.tail_total_ms is not None
        assert c.bytes is not None
        return c.head_total_ms + self.waiting_bytes(c) * 8e-3 / mbps + c.tail_total_ms + self.overhead(c.bytes)


def predict(candidates: Sequence[Candidate], bandwidths: Sequence[float], link: Link) -> dict[str, str]:
    """Fill in each candidate's predicted latency per bandwidth; the best cut per bandwidth."""
    best = {}
    for mbps in bandwidths:
        for c in candidates:
            c.predicted_ms[key(mbps)] = link.latency(c, mbps)
        best[key(mbps)] = min(candidates, key=lambda c: c.predicted_ms[key(mbps)]).cut_id
    return best


def bandwidth_ranges(
    candidates: Sequence[Candidate], bandwidths: Sequence[float], best: Mapping[str, str], link: Link
) -> list[tuple[str, float, float | None]]:
    """The winners in order of bandwidth, each with the rates where it wins: from 0, boundaries where two cross."""
    by_id = {c.cut_id: c for c in candidates}
    order: list[tuple[str, float]] = []
    for mbps in sorted(bandwidths):
        cut_id = best[key(mbps)]
        if not order or order[-1][0] != cut_id:
            order.append((cut_id, mbps))
    ranges: list[tuple[str, float, float | None]] = []
    low = 0.0
    for (a_id, a_at), (b_id, b_at) in itertools.pairwise(order):
        a, b = by_id[a_id], by_id[b_id]
        fixed_a, fixed_b = link.latency(a, math.inf), link.latency(b, math.inf)
        extra_bits = (link.waiting_bytes(b) - link.waiting_bytes(a)) * 8e-3
        cross = extra_bits / (fixed_a - fixed_b) if fixed_a > fixed_b else math.nan
        boundary = cross if a_at < cross <= b_at else math.sqrt(a_at * b_at)
        ranges.append((a_id, low, boundary))
        low = boundary
    ranges.append((order[-1][0], low, None))
    return ranges
