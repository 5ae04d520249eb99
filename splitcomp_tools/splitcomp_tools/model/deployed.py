"""Stage times measured as deployed: each candidate's head and tail times from a run in which the robot side and
the edge side work at once (camera publisher, head, DDS, tail, at the camera's rate), and the transport overhead
fitted to the bytes of those runs. The run itself is the caller's (run/deployed.py: over the test bed, or loopback);
this module only turns its medians into the plan's times and overhead.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from splitcomp_tools.model.candidates import Candidate, PlanError
from splitcomp_tools.model.latency import Link
from splitcomp_tools.model.overhead import OverheadFit, fit_overhead


@dataclasses.dataclass(frozen=True)
class Deployed:
    """One deployed measurement of the candidates: where it ran, at which link rate, each cut's medians."""

    where: str  # e.g. "the test bed at 100 Mbit/s, 10 frames/s, ..." or "loopback (no test bed here: ...)"
    mbps: float  # the link rate of the run; math.inf on loopback
    per_cut: Mapping[str, Mapping[str, Any] | None]  # bench pipeline's per_cut figures; None: no frame answered
    error: str | None = None  # why the whole run failed, if it did


MeasureDeployed = Callable[[Sequence[Candidate]], Deployed]


def apply_deployed(candidates: Sequence[Candidate], deployed: Deployed, link: Link) -> OverheadFit:
    """Each candidate's whole-stage times from its deployed run (the times alone stay beside them), a candidate
    without frames marked failed; the overhead fitted to the runs' (bytes, latency - stages - waiting bytes).

    The overhead of a run is the latency less the head's and the tail's stages and the bytes that waited for the
    link's rate (`link.waiting`: framed, beyond the bucket): bench pipeline's `transport_overhead_ms` subtracts the
    payload's bytes, so the difference is added back.
    """
    samples = []
    for c in candidates:
        figures = deployed.per_cut.get(c.cut_id)
        if not figures or not figures.get("frames"):
            c.failed = deployed.error or f"no frame answered in its run on {deployed.where}"
            continue
        c.head_total_ms, c.tail_total_ms = float(figures["head_ms"]), float(figures["tail_ms"])
        nbytes = float(figures["bytes_per_frame"])
        credit = (nbytes - link.waiting(nbytes)) * 8e-3 / deployed.mbps if math.isfinite(deployed.mbps) else 0.0
        samples.append((nbytes, float(figures["transport_overhead_ms"]) + credit))
    if not samples:
        reason = deployed.error or "no candidate answered a frame"
        raise PlanError(f"every candidate failed in its deployed run on {deployed.where}: {reason}")
    return fit_overhead(samples)
