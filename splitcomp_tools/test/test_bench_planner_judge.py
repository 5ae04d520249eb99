"""bench planner's judgement on synthetic runs: every candidate's prediction error at every rate from the median
of its runs' medians, a candidate without frames reported failed, and the measured winner against the pick."""

import math

import pytest

from splitcomp_tools.run.bench_planner import OLD_RULE, format_table, judge

PLAN = {
    "heuristic": "b",
    "best": {"100": "a"},
    "candidates": [
        {"cut_id": "a", "predicted_ms": {"100": 5.0}},
        {"cut_id": "b", "predicted_ms": {"100": 6.0}},
        {"cut_id": "c", "predicted_ms": {"100": 9.0}},
    ],
}


def _run(**medians):
    per_cut = {cut: {"median_ms": ms, "frames": 30, "transport_overhead_ms": 2.0} for cut, ms in medians.items()}
    return {"per_cut": per_cut, "lost_features": 0}


def test_every_candidates_error_is_judged_against_the_median_of_its_runs_and_failures_are_reported():
    runs = [_run(a=6.0, b=5.0, old_rule=7.0), _run(a=6.2, b=5.4, old_rule=7.5), _run(a=5.6, b=5.2, old_rule=7.1)]
    (row,) = judge(PLAN, {"100": runs})
    assert row["measured_ms"]["a"] == 6.0 and row["measured_ms"]["b"] == 5.2 and math.isinf(row["measured_ms"]["c"])
    assert row["runs_ms"]["a"] == [6.0, 6.2, 5.6] and row["failed_runs"] == {"c": 3}
    assert row["prediction_error"]["a"] == pytest.approx(5.0 / 6.0 - 1) and row["prediction_error"]["c"] is None
    assert row["prediction_error"]["b"] == pytest.approx(6.0 / 5.2 - 1)
    assert (row["best"], row["pick"]) == ("b", "a") and row["pick_over_best"] == pytest.approx(6.0 / 5.2 - 1)
    assert not row["pick_ok"] and not row["predictions_ok"] and row["old_rule_ms"] == 7.1 and OLD_RULE in row["frames"]
    text = format_table(PLAN, [row])
    assert "a (pick)" in text and "b*" in text and "-16.7 % !" in text and "(over 5 %)" in text
    assert "c" in text and "failed" in text  # reported, not left out


def test_a_pick_within_5_percent_and_predictions_within_15_percent_pass():
    runs = [_run(a=5.5, b=5.4, c=9.5)]
    (row,) = judge(PLAN, {"100": runs})
    assert row["best"] == "b" and row["pick_ok"] and row["pick_over_best"] == pytest.approx(5.5 / 5.4 - 1)
    assert row["predictions_ok"]
