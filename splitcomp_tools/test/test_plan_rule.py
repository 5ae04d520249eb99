"""plan's choice per candidate follows calibrate's rule (lower bound on confident frames, no worse than JPEG-95),
refuses frame sets too small for the target, and prints and writes the agreement figures beside JPEG-95's.

Calibrations are built by hand here (the rule is about the table, not the measuring), on the tiny real bundle.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from splitcomp_core.bundle import QuantizationSpec, load_bundle
from splitcomp_tools.model import candidate_encodings
from splitcomp_tools.model.agreement import Agreement
from splitcomp_tools.model.calibrate import calibrate
from splitcomp_tools.model.calibration import Calibration
from splitcomp_tools.model.candidate_encodings import smallest_encoding
from splitcomp_tools.model.candidates import Candidate, PlanError
from splitcomp_tools.model.encodings import Result
from splitcomp_tools.model.latency import Link, bandwidth_ranges, predict
from splitcomp_tools.model.plan import Plan, make_plan
from splitcomp_tools.report.plan import format_table


def _row(method, bytes_, agree, confident_agree, frames=500, confident=400, codec="zstd"):
    stats = Agreement(agree, frames, confident_agree, confident, 0.9)
    return Result(
        method, None if codec is None else 4, codec, 95 if codec is None else None, bytes_, agree / frames, stats
    )


def _calibration(bundle, rows):
    return Calibration(bundle.path, "photos:train", 200, 4, "mse", 99.99, {}, rows, QuantizationSpec(), (0.0, 32.0))


JPEG = _row("jpeg_full", 30_000, 470, 380, codec=None)  # 94 % of all frames


def test_the_smallest_encoding_meets_the_lower_bound_and_the_jpeg_condition(tiny_bundle):
    worse_than_jpeg = _row("per_tensor_mse", 100, 450, 400)  # every confident frame agrees, 90 % of all frames
    short_of_the_bound = _row("per_channel_mse", 150, 490, 399)  # 399 of 400: lower bound 98.6 %
    meets = _row("per_channel_percentile", 200, 480, 400)  # lower bound 99.05 %, 96 % of all frames
    chosen = smallest_encoding(_calibration(tiny_bundle, [worse_than_jpeg, short_of_the_bound, meets, JPEG]), 0.99)
    assert chosen == meets


def test_no_encoding_meeting_the_rule_is_an_error_that_says_the_rule(tiny_bundle):
    with pytest.raises(
        PlanError, match=r"no encoding meets the rule at 0.99.*no worse than the highest of JPEG-95.*H.264"
    ):
        smallest_encoding(_calibration(tiny_bundle, [_row("per_tensor_mse", 100, 450, 400), JPEG]), 0.99)


def test_too_few_confident_frames_is_refused(tiny_bundle):
    jpeg = _row("jpeg_full", 30_000, 470, 360, confident=380, codec=None)
    rows = [_row("per_tensor_mse", 100, 500, 380, confident=380), jpeg]  # 380 confident frames, all agree: 0.98999
    with pytest.raises(PlanError, match=r"only 380 confident frames.*at least 381.*point estimate"):
        smallest_encoding(_calibration(tiny_bundle, rows), 0.99)


def test_the_table_and_json_carry_the_agreement_beside_jpeg():
    c = Candidate("cut1", ["/a"], 0.25, 1, 0.25, bits=4, quantization="per_channel_mse", codec="zstd", bytes=1_000.0)
    c.stats, c.jpeg_stats, c.agreement = _row("x", 1, 480, 400).stats, JPEG.stats, 0.96
    c.head_ms = c.head_total_ms = c.tail_ms = c.tail_total_ms = 1.0
    link, rates = Link(2.0), [1.1]
    best = predict([c], rates, link)
    plan = Plan(
        "m.onnx",
        "photos:test",
        500,
        0.99,
        rates,
        link,
        {"robot": "r", "edge": "r"},
        [c],
        best,
        None,
        bandwidth_ranges([c], rates, best, link),
        baselines=[JPEG, dataclasses.replace(_row("h264_full", 2_500, 450, 390, codec=None), quality=23)],
    )
    text = format_table(plan)
    assert "H.264 of the camera frame, key frame every 30" in text and "2,500" in text
    assert "96.0 % [93.9-97.4]" in text and "100.0 % [99.0-100.0]" in text  # (a) and (b) with their intervals
    assert "JPEG-95 of the full frame on the same frames: 94.0 % [91.6-95.8], 95.0 % [92.4-96.7], 0.90" in text
    assert "(400 of 500 frames)" in text and "not independent" in text
    data = json.loads(json.dumps(plan.to_json()))
    assert data["confidence"] == 0.5 and "not independent" in data["dependence_note"]
    (candidate,) = data["candidates"]
    assert candidate["stats"]["confident_frames"] == 400 and candidate["jpeg_stats"]["rate"] == pytest.approx(0.94)
    assert [(b["method"], b["quality"]) for b in data["baselines"]] == [("jpeg_full", 95), ("h264_full", 23)]
    assert candidate["stats"]["confident_interval"][0] == pytest.approx(400 / (400 + 1.959963984540054**2))


def test_help_says_the_rule_and_a_target_of_1_is_refused():
    run = [sys.executable, "-m", "splitcomp_tools.plan"]
    shown = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=120)
    assert "lower bound" in shown.stdout and "no worse than the highest of JPEG-95" in " ".join(shown.stdout.split())
    assert "H.264 of the camera frame" in " ".join(shown.stdout.split())
    refused = subprocess.run(
        [*run, "m.onnx", "--images", "generator", "--agreement", "1"], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "below 1" in refused.stderr


def test_a_count_too_small_for_the_target_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(PlanError, match=r"at most 300 frames would be judged.*381"):
        make_plan(tmp_path / "not-read.onnx", "photos:test,video:bikes", tmp_path, count=150, agreement=0.99)


def test_the_old_rules_bundle_is_calibrated_without_video_rows(tiny_bundle, tmp_path, monkeypatch):
    """The old rule's cut needs only calibrate's default encoding: H.264 rows (minutes on a real plan) judge a
    target agreement, which it has none of."""
    asked = []

    def recording(*args, **kwargs):
        asked.append(kwargs.get("video_codecs"))
        return calibrate(*args, **kwargs)

    monkeypatch.setattr(candidate_encodings, "calibrate", recording)
    heuristic = Candidate("cut1", ["feat"], 0.5, 64, 0.5, bundle=tiny_bundle.path)
    out = candidate_encodings.old_rule_bundle(heuristic, {}, tmp_path, "generator", 8, seed=0)
    assert asked == [()] and out is not None
    assert load_bundle(out).manifest.quantization.bits == 4  # calibrate's default choice, stored
