"""plan --refine: where the prediction cannot tell the best candidates apart, measure them and pick by measurement.

Per rate, the candidates whose predictions lie within the prediction's error of the best prediction (the larger
of `tolerance` x the best prediction and the overhead fit's largest residual) are too close to call; the top
`top` of them are measured together at that rate (over the test bed) and the one with the lowest measured median
latency is the pick. A rate where no other candidate is that close keeps the predicted pick, unmeasured.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from splitcomp_tools.model.candidates import Candidate
from splitcomp_tools.model.latency import Link, key

REFINE_TOP = 3  # candidates measured per rate
PREDICTION_TOLERANCE = 0.15  # the goal for a prediction's error: within 15 % of the measured median

# (the candidates to measure, the link rate in Mbit/s) -> median latency per cut_id, None where it failed
MeasureAtRate = Callable[[Sequence[Candidate], float], dict[str, float | None]]


def margin_ms(best_predicted_ms: float, link: Link, tolerance: float = PREDICTION_TOLERANCE) -> float:
    """How far from the best prediction a candidate is still too close to call."""
    return max(tolerance * best_predicted_ms, link.fit.max_residual_ms if link.fit is not None else 0.0)


def refine(
    candidates: Sequence[Candidate],
    bandwidths: Sequence[float],
    best: MutableMapping[str, str],
    link: Link,
    measure: MeasureAtRate,
    top: int = REFINE_TOP,
    tolerance: float = PREDICTION_TOLERANCE,
) -> dict[str, dict[str, Any]]:
    """Update `best` per rate by measurement where the prediction is too close to call; what was measured, per rate.

    Failed candidates (`failed` set) are never measured nor picked; a candidate whose measurement fails is kept in
    the record with None and not picked.
    """
    usable = [c for c in candidates if c.failed is None]
    refined: dict[str, dict[str, Any]] = {}
    for mbps in bandwidths:
        k = key(mbps)
        ranked = sorted(usable, key=lambda c: c.predicted_ms[k])
        margin = margin_ms(ranked[0].predicted_ms[k], link, tolerance)
        near = [c for c in ranked if c.predicted_ms[k] <= ranked[0].predicted_ms[k] + margin][:top]
        record: dict[str, Any] = {"predicted_pick": best[k], "margin_ms": margin, "measured_ms": {}}
        if len(near) > 1:
            record["measured_ms"] = measured = measure(near, mbps)
            answered = {cut: ms for cut, ms in measured.items() if ms is not None}
            if answered:
                best[k] = min(answered, key=answered.__getitem__)
        record["pick"] = best[k]
        refined[k] = record
    return refined
