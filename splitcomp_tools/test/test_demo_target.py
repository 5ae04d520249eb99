"""make demo's target: the highest of its targets the judged set supports, said with the set and the reason;
and its summary's agreement figures beside JPEG-95's. Calibrations are built by hand (the choice is about the table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitcomp_core.bundle import QuantizationSpec
from splitcomp_tools.demo.command import TARGETS
from splitcomp_tools.demo.prepare import judged_set, supported_target
from splitcomp_tools.demo.summary import summary_lines
from splitcomp_tools.model.agreement import Agreement
from splitcomp_tools.model.baseline import JpegResult
from splitcomp_tools.model.calibration import Calibration, InsufficientFrames
from splitcomp_tools.model.encodings import Result

SET = "photos:test,video:bikes,video:carphone"


def _calibration(confident: int) -> Calibration:
    stats = Agreement(560, 570, confident, confident, 0.9)
    rows = [Result("per_channel_mse", 4, "zstd", None, 2_000.0, 560 / 570, stats)]
    return Calibration(
        Path("b"), "photos:train", 200, 4, "mse", 99.99, {}, rows, QuantizationSpec(), (0.0, 32.0), SET, 570
    )


def test_the_highest_supported_target_is_used_and_the_reason_printed():
    assert supported_target(_calibration(400), TARGETS) == 0.99
    calibration = _calibration(222)  # what photos:test (400 crops) and both clips hold at the demo cut
    assert supported_target(calibration, TARGETS) == 0.98
    said = judged_set(calibration, 0.98, 0.99)
    assert f"judged on 570 frames of {SET} (222 confident" in said
    assert "a 0.99 target needs 381 confident frames" in said and "target 0.98" in said
    assert "enough for a 0.99 target" in judged_set(_calibration(400), 0.99, 0.99)


def test_a_set_that_supports_no_target_is_refused():
    with pytest.raises(InsufficientFrames, match="only 20 confident frames"):
        supported_target(_calibration(20), TARGETS)


def test_the_summary_puts_the_split_features_beside_jpeg():
    split, jpeg = Agreement(58, 60, 30, 30, 0.95), Agreement(50, 60, 28, 30, 0.8)
    summary = {
        "frames": 60,
        "wall_s": 6.0,
        "fps": 10.0,
        "latency_p50_ms": 20.0,
        "latency_p95_ms": 30.0,
        "bytes_per_frame": 2_000.0,
        "agreement": split.rate,
        "stats": split,
        "confidence": 0.5,
        "compared": 60,
        "jpeg": {("jpeg_full", 95): JpegResult("jpeg_full", 95, 40_000.0, jpeg.rate, jpeg)},
    }
    choice = Result("per_channel_mse", 4, "zstd", None, 2_000.0, 0.98, Agreement(560, 570, 222, 222, 0.9))
    text = "\n".join(summary_lines(summary, choice))
    assert "96.7 % [88.6-99.1]" in text and "100.0 % [88.6-100.0]" in text and "83.3 % [72.0-90.7]" in text
    assert "(30 of 60 frames)" in text and "not independent" in text and "JPEG q95 of camera frame" in text
    assert "98.3 % lower bound on confident held-out frames" in text
