"""`calibrate` end to end on a tiny real model: the comparison table, the stored ranges, and clean failures.

Agreement and bytes are checked against what the deployed pipelines (HeadPipeline -> TailPipeline)
and the unsplit ONNX model give on the same frames, not against numbers copied from a run.
"""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from splitcomp_core.bundle import InputSpec, load_bundle, update_quantization
from splitcomp_core.codec import CODEC_NAMES as CODECS
from splitcomp_core.codec import packed_size_for
from splitcomp_core.head import HeadPipeline
from splitcomp_core.preprocess import Preprocessor
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.calibrate import build_parser, main
from splitcomp_tools.frames.shapes import CLASS_NAMES, ShapeGenerator
from splitcomp_tools.model import entropy_sizes
from splitcomp_tools.model.agreement import Agreement, frames_needed, meets
from splitcomp_tools.model.baseline import JPEG_QUALITIES
from splitcomp_tools.model.calibrate import calibrate, shared_scenes
from splitcomp_tools.model.calibration import InsufficientFrames
from splitcomp_tools.model.encodings import BITS, QUANTIZED_METHODS, Result
from splitcomp_tools.model.export import export_torch_module
from splitcomp_tools.model.split import split_model
from splitcomp_tools.model.video import CRFS, VideoStream

FRAMES = 16
CHANNELS = 8
CUT_ELEMENTS = CHANNELS * 16 * 16
MARGIN = 4.0
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
ENTROPY = ("entropy",) if entropy_sizes.available() else ()  # constriction is a pip-only package


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A folder of frames, the unsplit model and its bundle split after the first ReLU (1x8x16x16)."""
    root = tmp_path_factory.mktemp("calibrate")
    images = root / "images"
    images.mkdir()
    generator = ShapeGenerator(3, size=(48, 40))
    frames, labels = zip(*(generator.sample() for _ in range(FRAMES)))
    for i, frame in enumerate(frames):
        cv2.imwrite(str(images / f"{i:02d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, CHANNELS, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(CHANNELS, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, len(CLASS_NAMES)),
    )
    preprocess = Preprocessor(InputSpec("image", [1, 3, 32, 32], 32, 32, "RGB", MEAN, STD))
    inputs = torch.from_numpy(np.concatenate([preprocess(f) for f in frames]))
    with torch.no_grad():  # fit the last layer so these frames get their shape's class by a clear margin
        features = model[:-1](inputs)
        mean = features.mean(0)
        targets = MARGIN * nn.functional.one_hot(torch.tensor(labels), len(CLASS_NAMES)).float()
        weight = torch.linalg.lstsq(features - mean, targets, driver="gelsd").solution.T
        model[-1].weight.copy_(weight)
        model[-1].bias.copy_(-weight @ mean)
    onnx_path = root / "model.onnx"
    export_torch_module(
        model, inputs[:1], onnx_path, input_names=("image",), output_names=("logits",), dynamic_batch=True
    )
    cut = next(n.output[0] for n in onnx.load(str(onnx_path)).graph.node if n.op_type == "Relu")
    split_model(onnx_path, [cut], root / "bundle")
    return root, images, onnx_path, cut, labels


@pytest.fixture
def bundle(setup, tmp_path):
    """A fresh copy of the bundle for a test that may change it."""
    return Path(shutil.copytree(setup[0] / "bundle", tmp_path / "bundle"))


@pytest.fixture(scope="module")
def result(setup):
    root, images, _, _, _ = setup
    return calibrate(root / "bundle", str(images), count=FRAMES)


def _rows(result, method, bits):
    return {r.codec: r for r in result.results if r.method == method and r.bits == bits}


def _frames(images: Path) -> list[np.ndarray]:
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(images.iterdir())]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_results_have_every_row(result):
    keys = {(r.method, r.bits, r.codec, r.quality) for r in result.results}
    expected = {(m, b, c, None) for m in QUANTIZED_METHODS for b in BITS for c in (*CODECS, *ENTROPY)}
    expected |= {("raw", b, c, None) for b in (16, 32) for c in CODECS}
    expected |= {("jpeg", None, None, q) for q in JPEG_QUALITIES} | {("jpeg_full", None, None, 95)}
    expected |= {(m, None, None, crf) for m in ("h264_full", "h264", "h265_full", "h265") for crf in CRFS}
    assert keys == expected
    assert len(keys) == len(result.results)
    assert result.frames == FRAMES and result.bits == 4 and result.method == "mse"


def test_bytes_are_the_packed_sizes_and_codecs_shrink_them(result):
    for method in (*QUANTIZED_METHODS, "raw"):
        for bits in BITS if method != "raw" else (16, 32):
            rows = _rows(result, method, bits)
            assert rows["none"].bytes_per_frame == packed_size_for(CUT_ELEMENTS, bits)
            assert 0 < rows["zstd"].bytes_per_frame < rows["none"].bytes_per_frame + 64
            assert 0 < rows["lz4"].bytes_per_frame < rows["none"].bytes_per_frame + 64
            assert len({r.agreement for r in rows.values()}) == 1  # codecs are lossless
            assert len({r.stats for r in rows.values()}) == 1
            if ENTROPY and method != "raw":  # a model fitted on these frames codes them near their entropy
                assert 0 < rows["entropy"].bytes_per_frame < rows["none"].bytes_per_frame + 64


def test_agreement_is_exact_at_8_bits_and_worst_with_the_seed_clip_at_2(result):
    assert _rows(result, "raw", 32)["none"].agreement == 1.0
    for method in QUANTIZED_METHODS[1:]:
        assert _rows(result, method, 8)["none"].agreement == 1.0
    # activations here are ~0..3: the seed's 0..32 clip leaves 2-bit codes nearly all zero
    clip = _rows(result, "clip", 2)["none"].agreement
    assert clip < 0.5
    assert all(_rows(result, m, 2)["none"].agreement > clip for m in QUANTIZED_METHODS[1:])


def test_agreement_matches_the_deployed_pipelines(setup, result, bundle):
    """The stored 4-bit ranges, used by HeadPipeline -> TailPipeline, agree with the unsplit model as reported."""
    _, images, onnx_path, _, _ = setup
    update_quantization(bundle, result.quantization)
    bundle = load_bundle(bundle)
    full = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    frames = _frames(images)
    preprocess = Preprocessor(bundle.manifest.input)
    reference = [int(np.argmax(full.run(None, {"image": preprocess(f)})[0])) for f in frames]
    assert reference == list(setup[4])  # the model tells the frames' shapes apart, so agreement means something
    tail = TailPipeline(bundle, providers=["cpu"])
    for mode, method in (("calibrated", "per_tensor_mse"), ("per_channel", "per_channel_mse")):
        head = HeadPipeline(bundle, EncoderConfig(bits=4, mode=mode, codec="zstd"), providers=["cpu"])
        assert head.warnings == []
        answers, sizes = [], []
        for frame in frames:
            out = tail(bundle.manifest.model_id, head(frame).tensors)
            answers.append(out.results[0][0])
            sizes.append(out.feature_bytes)
        agreement = np.mean(np.array(answers) == reference)
        assert _rows(result, method, 4)["zstd"].agreement == pytest.approx(agreement)
        assert _rows(result, method, 4)["zstd"].bytes_per_frame == pytest.approx(np.mean(sizes))


def test_jpeg_baseline_bytes(setup, result):
    jpeg = {(r.method, r.quality): r for r in result.results if r.codec is None}
    sizes = [jpeg[("jpeg", q)].bytes_per_frame for q in JPEG_QUALITIES]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    full = [
        cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].size
        for f in _frames(setup[1])
    ]
    assert jpeg[("jpeg_full", 95)].bytes_per_frame == pytest.approx(np.mean(full))
    assert all(0.0 <= r.agreement <= 1.0 for r in jpeg.values())


def test_video_rows_are_real_streams_of_the_same_frames(setup, result):
    rows = {(r.method, r.quality): r for r in result.results if r.codec is None}
    for method in ("h264_full", "h264", "h265_full", "h265"):
        sizes = [rows[(method, crf)].bytes_per_frame for crf in CRFS]
        assert sizes == sorted(sizes, reverse=True) and sizes[-1] > 0, method  # a higher CRF, fewer bytes
        assert rows[(method, 18)].stats.frames == FRAMES
    stream = VideoStream("h264", 23)  # the camera frames in order, one stream, as calibrate sent them
    sent = np.mean([stream.round_trip(f)[1] for f in _frames(setup[1])])
    assert rows[("h264_full", 23)].bytes_per_frame == pytest.approx(sent)
    assert result.floor().h264 == tuple(
        (rows[("h264_full", crf)].bytes_per_frame, rows[("h264_full", crf)].stats) for crf in CRFS
    )


def test_cli_stores_ranges_and_writes_table_json_and_plot(setup, bundle, tmp_path, capsys):
    images = setup[1]
    before = json.loads((bundle / "manifest.json").read_text())
    out_json, out_png = tmp_path / "calibration.json", tmp_path / "calibration.png"
    code = main(
        [
            str(bundle),
            "--images",
            str(images),
            "--count",
            "12",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
            "--quiet",
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "clip 0..32" in table and "per_channel_mse" in table and "jpeg of the full frame" in table
    written = ["head.onnx", "manifest.json", "tail.onnx", *(["entropy.json"] if ENTROPY else [])]
    assert sorted(p.name for p in bundle.iterdir()) == sorted(written)
    assert "top-1 confident [95 % CI]" in table and "not independent" in table
    loaded = load_bundle(bundle)
    entry = loaded.manifest.quantization.calibrated[setup[3]]
    assert entry["method"] == "mse" and entry["bits"] == 4 and entry["frames"] == 12
    assert len(entry["per_channel"]["min"]) == len(entry["per_channel"]["max"]) == CHANNELS
    assert 0.0 <= entry["per_tensor"]["min"] < entry["per_tensor"]["max"]
    after = json.loads((bundle / "manifest.json").read_text())
    assert (after["quantization"]["mode"], after["quantization"]["bits"]) == ("calibrated", 4)
    for key in ("calibrated", "mode", "bits"):
        after["quantization"][key] = before["quantization"][key]
    assert after == before  # nothing but the calibrated ranges and the default mode/bits changed
    for mode in ("calibrated", "per_channel"):
        head = HeadPipeline(loaded, EncoderConfig(bits=4, mode=mode), providers=["cpu"])
        assert head.warnings == []
        tensor = head(_frames(images)[0]).tensors[0]
        expected = entry["per_tensor"]["min"] if mode == "calibrated" else entry["per_channel"]["min"]
        np.testing.assert_allclose(tensor.offset, np.atleast_1d(expected).astype(np.float32))
    report = json.loads(out_json.read_text())
    assert report["written"] is True and report["frames"] == 12
    assert report["calibrated"] == loaded.manifest.quantization.calibrated
    rows = len(QUANTIZED_METHODS) * len(BITS) * (len(CODECS) + len(ENTROPY)) + 2 * len(CODECS) + 4 + 4 * len(CRFS)
    assert len(report["results"]) == rows
    assert report["confidence"] == 0.5 and report["confident_frames"] == 12 and "not independent" in str(report)
    stats = next(r["stats"] for r in report["results"] if r["method"] == "jpeg_full")
    assert stats["frames"] == 12 and stats["interval"][0] <= stats["rate"] <= stats["interval"][1]
    image = cv2.imread(str(out_png))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "calibration.json", "calibration.png"]


def test_dry_run_leaves_the_bundle_alone(setup, bundle, tmp_path, capsys):
    before = _snapshot(bundle)
    out_json = tmp_path / "c.json"
    assert main([str(bundle), "--images", "generator", "--count", "3", "--dry-run", "--json", str(out_json)]) == 0
    assert _snapshot(bundle) == before
    assert json.loads(out_json.read_text())["written"] is False
    assert "3 frames from generator" in capsys.readouterr().out


@pytest.mark.parametrize(
    "case",
    [
        "missing bundle",
        "missing images",
        "empty folder",
        "unreadable images",
        "json folder missing",
        "zero count",
        "bad percentile",
        "not a bundle",
    ],
)
def test_errors_exit_2_and_leave_the_manifest_untouched(case, setup, bundle, tmp_path, capsys):
    images = setup[1]
    args = [str(bundle), "--images", str(images), "--count", "4"]
    expected = {
        "missing bundle": "bundle directory not found",
        "missing images": "no such file or folder",
        "empty folder": "no images",
        "unreadable images": "no frames",
        "json folder missing": "does not exist",
        "zero count": "--count: must be from 1 to",
        "bad percentile": "--percentile must be above 50",
        "not a bundle": "missing manifest",
    }[case]
    if case == "missing bundle":
        args[0] = str(tmp_path / "nowhere")
    elif case == "missing images":
        args[2] = str(tmp_path / "no-such-folder")
    elif case == "empty folder":
        (tmp_path / "empty").mkdir()
        args[2] = str(tmp_path / "empty")
    elif case == "unreadable images":
        (tmp_path / "broken").mkdir()
        (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
        args[2] = str(tmp_path / "broken")
    elif case == "json folder missing":
        args += ["--json", str(tmp_path / "missing" / "out.json")]
    elif case == "zero count":
        args[4] = "0"
    elif case == "bad percentile":
        args += ["--percentile", "20"]
    elif case == "not a bundle":
        args[0] = str(images)
    before = _snapshot(bundle)
    assert main([*args, "--json", str(tmp_path / "out.json")] if case != "json folder missing" else args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err
    assert _snapshot(bundle) == before
    assert not (tmp_path / "out.json").exists()


def test_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "splitcomp_tools.calibrate", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    assert "--images" in done.stdout and "--dry-run" in done.stdout


def test_the_cheapest_encoding_that_meets_the_rule_becomes_the_heads_default(setup, result, bundle):
    assert result.confident_frames() == FRAMES == frames_needed(0.8)  # 16 frames, all confident: 0.8 is supported
    choice = result.cheapest(0.8)
    assert choice is not None and choice.codec is not None and choice.stats is not None
    assert choice.stats.confident_interval()[0] >= 0.8 and choice.agreement >= result.jpeg_reference().agreement
    meeting = [r for r in result.results if r.codec and meets(r.stats, r.bytes_per_frame, result.floor(), 0.8)]
    assert all(r.bytes_per_frame >= choice.bytes_per_frame for r in meeting)
    assert result.best().stats.confident_interval()[0] == max(r.stats.confident_interval()[0] for r in meeting)
    chosen = result.with_default(choice)
    assert chosen.default == choice
    update_quantization(bundle, chosen.quantization)
    loaded = load_bundle(bundle)
    head = HeadPipeline(loaded, providers=["cpu"])  # no config: the bundle's default is the choice
    assert (head.config.bits, head.config.codec) == (choice.bits, choice.codec) and head.warnings == []
    tail = TailPipeline(loaded, providers=["cpu"])
    frames = _frames(setup[1])
    answers = [tail(loaded.manifest.model_id, head(f).tensors) for f in frames]
    assert np.mean([a.results[0][0] for a in answers] == np.array(setup[4])) == pytest.approx(choice.agreement)
    assert np.mean([a.feature_bytes for a in answers]) == pytest.approx(choice.bytes_per_frame)


def _row(method, bytes_, agree, confident_agree, frames=500, confident=400, codec="zstd"):
    stats = Agreement(agree, frames, confident_agree, confident, 0.9)
    bits = None if codec is None else 4
    return Result(method, bits, codec, 95 if codec is None else None, bytes_, agree / frames, stats)


def _synthetic(result, rows):
    return dataclasses.replace(result, results=rows, default=None)


def test_the_rule_needs_the_lower_bound_and_no_worse_than_jpeg(result):
    jpeg = _row("jpeg_full", 30_000, 470, 380, codec=None)
    cheap_but_worse_than_jpeg = _row("per_tensor_mse", 100, 450, 400)  # confident: all agree; all frames 90 %
    short_of_the_bound = _row("per_channel_mse", 150, 490, 399)  # 399 / 400: lower bound 98.6 %
    meets_it = _row("per_channel_percentile", 200, 480, 400)
    calibration = _synthetic(result, [cheap_but_worse_than_jpeg, short_of_the_bound, meets_it, jpeg])
    assert calibration.cheapest(0.99) == meets_it
    assert calibration.cheapest(0.95) == short_of_the_bound  # its 98.6 % lower bound reaches 0.95
    calibration = _synthetic(result, [cheap_but_worse_than_jpeg, short_of_the_bound, jpeg])
    assert calibration.cheapest(0.99) is None
    assert calibration.best() == cheap_but_worse_than_jpeg  # the highest lower bound, when none meets the rule


def test_an_h264_row_sending_as_many_bytes_raises_the_floor(result):
    jpeg = _row("jpeg_full", 30_000, 470, 380, codec=None)
    cheap = _row("per_tensor_mse", 200, 480, 400)  # (a) 96 %, confident all agree
    dearer = _row("per_channel_mse", 260, 490, 400)  # (a) 98 %
    h264 = dataclasses.replace(_row("h264_full", 250, 485, 400, codec=None), quality=28)  # (a) 97 % at 250 B
    assert _synthetic(result, [cheap, dearer, jpeg]).cheapest(0.99) == cheap
    with_h264 = _synthetic(result, [cheap, dearer, jpeg, h264])
    assert with_h264.floor().rate(200) == 0.97 and with_h264.floor().rate(260) == 0.94
    assert with_h264.cheapest(0.99) == dearer  # H.264 sends 250 B and agrees more often than the 200-B encoding


def test_too_few_confident_frames_is_refused_not_chosen_on_a_point_estimate(result):
    rows = [_row("per_tensor_mse", 100, 300, 300, frames=300, confident=300), _row("jpeg_full", 9e3, 1, 1, codec=None)]
    with pytest.raises(InsufficientFrames, match=r"only 300 confident frames.*at least 381"):
        _synthetic(result, rows).cheapest(0.99)


def test_cli_refuses_a_target_the_confident_frames_cannot_support(setup, bundle, tmp_path, capsys):
    before = _snapshot(bundle)
    args = [str(bundle), "--images", str(setup[1]), "--count", str(FRAMES), "--target-agreement", "0.8", "--quiet"]
    assert main([*args, "--confidence", "1.0", "--json", str(tmp_path / "c.json")]) == 2  # no frame is that sure
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and "only 0 confident frames" in err and "at least 16" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "top-1 confident [95 % CI]" in out  # what was measured is shown, but nothing is chosen
    assert _snapshot(bundle) == before and not (tmp_path / "c.json").exists()
    assert "never a choice on a point estimate" in " ".join(build_parser().format_help().split())


def test_cli_refuses_before_measuring_when_the_count_is_too_small(setup, bundle, capsys):
    args = [str(bundle), "--images", str(setup[1]), "--eval-images", "generator,video:carphone", "--eval-count", "6"]
    assert main([*args, "--target-agreement", "0.99"]) == 2
    out, err = capsys.readouterr()
    assert "at most 12 frames would be judged" in err and "381" in err and out == ""


def test_cli_target_writes_the_choice_and_its_entropy_model(setup, bundle, capsys):
    args = [str(bundle), "--images", str(setup[1]), "--count", str(FRAMES), "--target-agreement", "0.8", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "meets the rule at 0.8" in out and "confident-frame lower bound" in out
    loaded = load_bundle(bundle)
    assert loaded.manifest.quantization.codec in CODECS  # the default is a codec the bundle schema holds
    if not ENTROPY:
        return
    assert "head parameter codec:=entropy sends" in out
    head = HeadPipeline(loaded, providers=["cpu"])  # the stored default, now coded under the written model
    config = head.config
    head.configure(EncoderConfig(config.bits, config.mode, config.clip_min, config.clip_max, "entropy"))
    tail = TailPipeline(loaded, providers=["cpu"])
    answers = [tail(loaded.manifest.model_id, head(f).tensors).results[0][0] for f in _frames(setup[1])]
    assert answers == [
        tail(loaded.manifest.model_id, HeadPipeline(loaded, providers=["cpu"])(f).tensors).results[0][0]
        for f in _frames(setup[1])
    ]


def test_confidence_decides_which_frames_count(setup):
    root, images, _, _, _ = setup
    strict = calibrate(root / "bundle", str(images), count=8, confidence=1.0)
    assert strict.confident_frames() == 0
    assert all(r.stats.confident_frames == 0 and r.stats.frames == 8 for r in strict.results)


def test_eval_images_judge_on_other_frames_than_the_ranges(setup):
    root, images, _, _, _ = setup
    split_result = calibrate(root / "bundle", str(images), count=8, eval_images="generator", eval_count=5)
    assert (split_result.frames, split_result.eval_frames, split_result.eval_images) == (8, 5, "generator")
    full = {r.method: r for r in split_result.results if r.codec is None}["jpeg_full"]
    assert full.bytes_per_frame > 20_000  # 640x480 generator frames, not the 48x40 calibration images


def test_judging_on_the_scenes_the_ranges_came_from_is_flagged():
    assert shared_scenes("photos:train", "photos:test,video:bikes,video:carphone") == []
    assert shared_scenes("photos", "photos:test") == ["photos:test"]
    assert shared_scenes("photos:train,video:bikes", "photos:test,video:bikes") == ["video:bikes"]
    assert shared_scenes("generator", "generator") == [] and shared_scenes("generator", None) == []
