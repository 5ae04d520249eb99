"""bench video on the tiny bundle and a few real clip frames: inter-frame coding saves bytes, never agreement."""

import json

import pytest

from splitcomp_tools.bench import main
from splitcomp_tools.run.bench_video import choose, select


def test_inter_frame_coding_saves_bytes_on_a_clip_and_decodes_to_the_same_answers(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "video.json"
    argv = ["video", "--bundle", str(tiny_bundle.path), "--images", "generator", "--count", "6"]
    argv += ["--eval-images", "photos:test,video:carphone", "--eval-count", "12", "--bits", "3,6"]
    argv += ["--codecs", "zstd,entropy", "--keyframe-intervals", "0,10", "--answer-all", "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "JPEG-95 frame" in text and "cannot support it; its lower bound needs at least 381" in text
    report = json.loads(out.read_text())
    assert [s["frames"] for s in report["sources"]] == [12, 12] and report["sources"][1]["clip"]
    rows = {(r["bits"], r["codec"], r["keyframe_interval"]): r for r in report["rows"]}
    assert len(rows) == 8 and all(r["identical"] for r in rows.values())
    for (bits, codec, interval), row in rows.items():
        if interval == 10:
            intra = rows[(bits, codec, 0)]
            clip_inter, clip_intra = row["bytes"]["video:carphone"], intra["bytes"]["video:carphone"]
            assert clip_inter["mean"] < clip_intra["mean"], (bits, codec)
            assert row["key_frames"] == 4 and intra["key_frames"] == 24  # 2 sources of 12: keys at 1 and 11
            assert row["agreement"] == intra["agreement"]
    assert report["agreement"]["3"] == rows[(3, "zstd", 0)]["agreement"]
    by_source = rows[(3, "zstd", 0)]["agreement_by_source"]
    assert [a["frames"] for a in by_source.values()] == [12, 12]
    assert sum(a["agree"] for a in by_source.values()) == report["agreement"]["3"]["agree"]
    assert report["jpeg95"]["by_source"]["video:carphone"]["frames"] == 12
    assert report["jpeg95"]["frames"] == 24 and report["jpeg95"]["bytes"]["clips"]["frames"] == 12
    assert "lossless bounds on the clips" in text
    video = {(v["method"], v["crf"]): v for v in report["video"]}
    assert len(video) == 16 and {v["keyframe_interval"] for v in video.values()} == {10}  # beside the P-frame rows
    for method in ("h264_full", "h264", "h265_full", "h265"):
        clip = [video[(method, crf)]["bytes"]["video:carphone"]["mean"] for crf in (18, 23, 28, 33)]
        assert clip == sorted(clip, reverse=True) and clip[-1] > 0, method  # real encodes: a higher CRF, fewer bytes
        assert video[(method, 18)]["agreement"]["frames"] == 24
    assert "H.264 frame crf 18" in text and "H.265 model-scale crf 33" in text
    for bits in ("3", "6"):
        bounds = report["bounds"][bits]
        assert set(bounds) == {"video:carphone", "clips"} and bounds["clips"] == bounds["video:carphone"]
        clip = bounds["clips"]
        assert 0 < clip["given_reference"] <= min(clip["intra"], clip["delta"])
    assert not (tiny_bundle.path / "entropy.json").exists(), "the benchmark writes nothing into the bundle"


def test_delta_tables_fitted_on_a_clip_code_its_p_frames_in_fewer_bytes(tiny_bundle, tmp_path):
    def entropy_p_frames(*extra):
        out = tmp_path / "video.json"
        argv = ["video", "--bundle", str(tiny_bundle.path), "--images", "generator", "--count", "6", "--bits", "3"]
        argv += [
            "--eval-images",
            "video:carphone",
            "--eval-count",
            "20",
            "--codecs",
            "entropy",
            "--video-codecs",
            "none",
        ]
        argv += ["--keyframe-intervals"]
        assert main([*argv, "20", "--json", str(out), *extra]) == 0
        report = json.loads(out.read_text())
        return report["delta_fit"], report["rows"][0]["bytes"]["clips"]["mean"]

    fit, photos_delta = entropy_p_frames()
    assert fit == {"images": "generator", "frames": 6}
    fit, clip_delta = entropy_p_frames("--delta-images", "video:carphone", "--delta-count", "30")
    assert fit == {"images": "video:carphone", "frames": 30}
    assert clip_delta < photos_delta


def test_selection_falls_back_to_a_target_the_confident_frames_support():
    agreement = {"agree": 500, "frames": 500, "confident_agree": 200, "confident_frames": 200, "top5_overlap": 1.0}
    worse = {**agreement, "confident_agree": 190}
    jpeg = {**agreement, "agree": 400, "bytes": {}}
    rows = [
        {
            "bits": b,
            "codec": "zstd",
            "keyframe_interval": 0,
            "bytes": {"clips": {"mean": 100.0 * b}, "all": {"mean": 100.0 * b}},
        }
        for b in (2, 4)
    ]
    report = {"agreement": {"2": worse, "4": agreement}, "jpeg95": jpeg, "rows": rows, "video": []}
    first, fallback = select(report, 0.99)
    assert not first["supported"] and first["needed"] == 381
    assert fallback["supported"] and fallback["target"] == 0.98 and fallback["bits_meeting"] == [4]
    assert fallback["cheapest"]["bits"] == 4


def test_an_h264_row_with_as_many_bytes_and_better_agreement_rules_a_setting_out():
    full = {"agree": 500, "frames": 500, "confident_agree": 400, "confident_frames": 400, "top5_overlap": 1.0}
    rows = [{"bits": b, "codec": "zstd", "keyframe_interval": 0, "bytes": {"all": {"mean": 100.0 * b}}} for b in (2, 4)]
    report = {
        "agreement": {"2": {**full, "agree": 450}, "4": full},  # (a) 90 % at 200 B, 100 % at 400 B
        "jpeg95": {**full, "agree": 400},
        "rows": rows,
        "video": [{"method": "h264_full", "bytes": {"all": {"mean": 300.0}}, "agreement": {**full, "agree": 475}}],
    }
    assert choose(report, 0.99)["bits_meeting"] == [4]  # H.264 at 300 B agrees on 95 %: 2 bits at 200 B does not
    report["video"][0]["bytes"]["all"]["mean"] = 150.0  # an H.264 that sends fewer bytes raises no floor
    assert choose(report, 0.99)["bits_meeting"] == [2, 4]


@pytest.mark.parametrize(
    "extra",
    [
        ["--bits", "9"],
        ["--codecs", "gzip"],
        ["--target", "1"],
        ["--eval-images", "/no/such/video.mp4"],
        ["--video-codecs", "vp9"],
    ],
)
def test_bad_arguments_exit_2(tiny_bundle, extra, capsys):
    argv = ["video", "--bundle", str(tiny_bundle.path), "--images", "generator", "--count", "3", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
