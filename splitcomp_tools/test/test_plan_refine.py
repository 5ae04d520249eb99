"""plan --refine on a stub link: where the prediction is too close to call, the measured order decides; and
plan --deployed's arithmetic on a stub run: the deployed times replace the times alone, a candidate without frames
is reported failed and never picked, and the overhead is fitted to the runs."""

import math

import pytest

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.model.candidates import Candidate, PlanError
from splitcomp_tools.model.deployed import Deployed, apply_deployed
from splitcomp_tools.model.latency import Link, bandwidth_ranges
from splitcomp_tools.model.overhead import OverheadFit
from splitcomp_tools.model.plan import predict_usable
from splitcomp_tools.model.refine import refine
from splitcomp_tools.run.deployed import cpu_count


def _candidate(cut_id, nbytes, head, tail):
    return Candidate(cut_id, [cut_id], 0.5, 1, 0.5, bytes=nbytes, head_total_ms=head, tail_total_ms=tail)


def _three():
    # Predicted at 100 Mbit/s (2 ms overhead): a 5.0, b 5.4, c 5.72, far 20.0; at 1.1 Mbit/s a and b are 36 ms apart.
    near = [_candidate("a", 0, 1.0, 2.0), _candidate("b", 5_000, 1.0, 2.0), _candidate("c", 9_000, 1.0, 2.0)]
    return [*near, _candidate("far", 0, 10.0, 8.0)]


def test_refine_picks_by_measurement_where_the_prediction_is_too_close_to_call():
    candidates, link = _three(), Link(2.0)
    best = predict_usable(candidates, [1.1, 100.0], link)
    assert best == {"1.1": "a", "100": "a"}
    asked = []

    def measure(chosen, mbps):  # the measured order is the reverse of the predicted one
        asked.append((mbps, [c.cut_id for c in chosen]))
        return {c.cut_id: 10.0 - c.bytes / 1000 for c in chosen}

    refined = refine(candidates, [1.1, 100.0], best, link, measure, top=3)
    # At 100 Mbit/s a, b and c lie within 15 % of a's 5.0 ms (far does not); at 1.1 Mbit/s nothing is near a.
    assert asked == [(100.0, ["a", "b", "c"])]
    assert best == {"1.1": "a", "100": "c"}
    assert refined["100"] == {
        "predicted_pick": "a",
        "margin_ms": pytest.approx(0.75),
        "measured_ms": {"a": 10.0, "b": 5.0, "c": 1.0},
        "pick": "c",
    }
    assert refined["1.1"]["measured_ms"] == {} and refined["1.1"]["pick"] == "a"
    ranges = bandwidth_ranges(candidates, [1.1, 100.0], best, link)
    assert [r[0] for r in ranges] == ["a", "c"] and ranges[-1][2] is None


def test_refine_measures_at_most_top_widens_by_the_fits_residual_and_skips_failures():
    candidates = _three()
    link = Link.from_fit(OverheadFit(2.0, samples=4, rms_ms=5.0, max_residual_ms=20.0))  # far is within 20 ms
    candidates[1].failed = "no frame answered"
    best = predict_usable(candidates, [100.0], link)
    chosen = []

    def measure(picked, mbps):
        chosen.extend(c.cut_id for c in picked)
        return {"a": None, "c": 7.0}  # a's measurement failed: not picked

    refined = refine(candidates, [100.0], best, link, measure, top=2)
    assert chosen == ["a", "c"] and best["100"] == "c" and refined["100"]["margin_ms"] == 20.0


def test_deployed_times_replace_the_times_alone_and_a_candidate_without_frames_is_failed_not_dropped():
    candidates = _three()
    for c in candidates:
        c.head_total_alone_ms, c.tail_total_alone_ms = c.head_total_ms, c.tail_total_ms
    figures = {
        "a": {"frames": 40, "head_ms": 3.0, "tail_ms": 4.0, "bytes_per_frame": 2000.0, "transport_overhead_ms": 2.0},
        "b": {"frames": 40, "head_ms": 3.0, "tail_ms": 4.0, "bytes_per_frame": 6000.0, "transport_overhead_ms": 2.16},
        "c": {"frames": 40, "head_ms": 3.0, "tail_ms": 4.0, "bytes_per_frame": 10000.0, "transport_overhead_ms": 2.32},
        "far": None,
    }
    # bench pipeline subtracted all the bytes at 100 Mbit/s; the bucket's 1600 of them crossed at once.
    fit = apply_deployed(candidates, Deployed("a stub bed", 100.0, figures), Link(burst_bytes=1600))
    credit = 1600 * 8e-3 / 100
    assert fit.samples == 3 and fit.per_kb_ms == pytest.approx(0.04) and fit.max_residual_ms < 1e-9
    assert fit.intercept_ms == pytest.approx(1.92 + credit)  # each sample gets the same credit: in the intercept
    a, far = candidates[0], candidates[3]
    assert (a.head_total_ms, a.tail_total_ms, a.head_total_alone_ms, a.tail_total_alone_ms) == (3.0, 4.0, 1.0, 2.0)
    assert far.failed and "a stub bed" in far.failed and far.head_total_ms == 10.0  # its times alone stay
    best = predict_usable(candidates, [100.0], Link.from_fit(fit, Link(burst_bytes=1600)))
    assert best["100"] != "far" and math.isfinite(far.predicted_ms["100"])  # predicted, reported, never picked
    with pytest.raises(PlanError, match=r"every candidate failed.*bench pipeline failed"):
        apply_deployed(candidates, Deployed("a stub bed", 100.0, dict.fromkeys("abc"), "bench pipeline failed"), Link())


def test_a_pinning_names_cpus_this_machine_has():
    assert cpu_count("0") == 1
    with pytest.raises(SplitcompError, match="--edge-cpus 4096: this machine has no CPU 4096; it can pin to"):
        cpu_count("4096", "--edge-cpus")
    with pytest.raises(SplitcompError, match="not a CPU list"):
        cpu_count("one", "--robot-cpus")
