"""classify --frames judges the frames: the encoding's agreement with the unsplit model beside JPEG-95's.

On the tiny real bundle (conv head, pooled linear tail) and generated frames; the figures are checked
against the rows' own answers and the unsplit answers they carry.
"""

from __future__ import annotations

import json

import pytest

from splitcomp_tools.classify import main
from splitcomp_tools.model.agreement import wilson_interval

COUNT = 8


def _judged(bundle, capsys, *extra):
    assert main([str(bundle.path), "--frames", "generator", "--count", str(COUNT), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_carries_all_frames_confident_frames_and_top5_beside_jpeg(tiny_bundle, capsys):
    judged = _judged(tiny_bundle, capsys, "--bits", "2", "--confidence", "0.3")
    rows, split = judged["rows"], judged["agreement"]["split"]
    agree = sum(r["results"][0]["class_id"] == r["unsplit"]["class_id"] for r in rows)
    sure = [r for r in rows if r["unsplit"]["probability"] >= 0.3]
    assert (split["agree"], split["frames"], split["confident_frames"]) == (agree, COUNT, len(sure))
    assert split["interval"] == pytest.approx(list(wilson_interval(agree, COUNT)))
    assert 0.0 <= split["top5_overlap"] <= 1.0
    jpeg = judged["agreement"]["jpeg_full"]
    assert jpeg["frames"] == COUNT and jpeg["confident_frames"] == len(sure)  # the same frames, the same reference
    assert judged["confidence"] == 0.3 and "not independent" in judged["dependence_note"]


def test_raw_floats_agree_on_every_frame(tiny_bundle, capsys):
    split = _judged(tiny_bundle, capsys, "--bits", "32")["agreement"]["split"]
    assert split["rate"] == 1.0 and split["top5_overlap"] == 1.0


def test_the_text_puts_the_encoding_beside_jpeg_with_the_note(tiny_bundle, capsys):
    assert main([str(tiny_bundle.path), "--frames", "generator", "--count", "3"]) == 0
    out = capsys.readouterr().out
    assert "generator#2:" in out and "top-1 confident [95 % CI]" in out and "not independent" in out
    assert "bits 4, quantization calibrated, codec none" in out and "jpeg of the full frame (q95)" in out
