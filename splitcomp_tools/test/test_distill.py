"""distill on the toy model, in seconds: a loadable bundle whose head emits entropy-coded symbols that the stored
tables decode bit for bit, a HeadPipeline -> TailPipeline round trip, the tail's PyTorch route, and the refusals."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from splitcomp_core.bundle import load_bundle
from splitcomp_core.bundle.manifest import TensorSpec
from splitcomp_core.entropy import ENTROPY_FILE, decode_symbols, encode_symbols, load_entropy_models
from splitcomp_core.errors import BundleError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_tools import bench, calibrate, distill
from splitcomp_tools.frames.registry import open_source
from splitcomp_tools.model.distill.bottleneck import SYMBOLS_NAME
from splitcomp_tools.model.distill.build import check_bundle
from splitcomp_tools.model.distill.errors import DistillError
from splitcomp_tools.model.distill.torch_graph import TorchGraph, tail_route
from splitcomp_tools.model.distill.training import Data, Settings, train
from splitcomp_tools.model.split import split_model

SHAPES = Path(__file__).resolve().parents[1] / "models" / "shapes" / "model.onnx"
CUT = "/stage2/block1/relu/Relu_output_0"
FAST = ["--train-images", "generator", "--train-count", "40", "--eval-images", "generator", "--eval-count", "8"]
FAST += ["--warmup-epochs", "2", "--epochs", "1", "--channels", "4", "--quiet"]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return split_model(SHAPES, [CUT], tmp_path_factory.mktemp("split") / "bundle")[0]


@pytest.fixture(scope="module")
def distilled(split, tmp_path_factory):
    out = tmp_path_factory.mktemp("distilled") / "bundle"
    assert distill.main([str(split.path), "--out", str(out), *FAST]) == 0
    return load_bundle(out)


def _frames(count, seed=5):
    source = open_source("generator", 128, 128, seed)
    return list(source.frames(count))


def test_the_bundle_sends_entropy_coded_symbols_by_default(distilled, split):
    q = distilled.manifest.quantization
    assert (q.bits, q.mode, q.clip_min, q.clip_max, q.codec) == (4, "clip", 0.0, 15.0, "entropy")
    assert [t.name for t in distilled.manifest.cut] == [SYMBOLS_NAME]
    assert distilled.manifest.cut[0].shape[1:] == [4, *split.manifest.cut[0].shape[2:]]
    assert distilled.manifest.verification["kind"] == "distillation"
    assert distilled.labels == split.labels


def test_pipelines_round_trip_the_symbols_exactly(distilled):
    head, tail = HeadPipeline(distilled), TailPipeline(distilled)
    session = ort.InferenceSession(str(distilled.head_path), providers=["CPUExecutionProvider"])
    for frame in _frames(6):
        result = head(frame)
        assert [t.codec for t in result.tensors] == [3]  # CODEC_ENTROPY
        symbols = session.run([SYMBOLS_NAME], {distilled.manifest.input.name: head.preprocess(frame, "rgb8")})[0]
        assert np.array_equal(symbols, np.round(symbols)) and symbols.min() >= 0 and symbols.max() <= 15
        assert np.array_equal(result.codes[SYMBOLS_NAME], symbols.astype(np.uint8))  # the codes are the symbols
        decoded = tail.decode(distilled.manifest.model_id, result.tensors)
        assert np.array_equal(decoded.feeds[SYMBOLS_NAME], symbols)
        answer = tail.answer(decoded)
        assert len(answer.results) > 0


def test_the_stored_tables_decode_what_the_encoder_emits_bit_for_bit(distilled):
    table = load_entropy_models(distilled.path).for_use(SYMBOLS_NAME, 4, "clip")
    session = ort.InferenceSession(str(distilled.head_path), providers=["CPUExecutionProvider"])
    head = HeadPipeline(distilled)
    for frame in _frames(4, seed=9):
        symbols = session.run([SYMBOLS_NAME], {distilled.manifest.input.name: head.preprocess(frame, "rgb8")})[0]
        codes = symbols.astype(np.uint8)
        for delta in (False, True):
            data = encode_symbols(codes, table, delta)
            assert np.array_equal(decode_symbols(data, table, delta, codes.shape), codes)


@pytest.mark.parametrize("weight", [1.0, 10.0])
def test_the_cut_mse_weighs_in_the_loss_as_set(weight):
    # At weight 1 the KL outweighs the cut's MSE and Lite0's bottleneck learned tensors unlike any real cut
    # (relative MSE near 1) that fit its training frames only (docs/distill.md); the weight must reach the loss.
    features = torch.from_numpy(np.random.default_rng(0).standard_normal((64, 8, 4, 4)).astype(np.float32))
    data = Data(features, torch.zeros(64, 3))
    settings = Settings(channels=2, lam=0.5, warmup_epochs=1, epochs=0, batch=32, mse_weight=weight)
    [epoch] = train(data, lambda x: x, "logits", settings).history
    assert epoch["loss"] == pytest.approx(weight * epoch["mse"] + 0.5 * epoch["kb_per_frame"], rel=1e-5)


def test_the_torch_route_reproduces_tail_onnx(split):
    head = HeadPipeline(split)
    feats = [head.features(f)[0] for f in _frames(3)]
    route = tail_route(split.tail_path, split.manifest.output.name, feats)
    session = ort.InferenceSession(str(split.tail_path), providers=["CPUExecutionProvider"])
    for f in feats:
        want = session.run(None, f)[0]
        with torch.no_grad():
            got = route(torch.from_numpy(f[CUT])).numpy()
        assert np.abs(want - got).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_a_tail_with_an_op_outside_the_route_is_refused():
    graph = helper.make_graph(
        [helper.make_node("Erf", ["x"], ["y"])],
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    with pytest.raises(DistillError, match="no gradient route here: Erf"):
        TorchGraph(helper.make_model(graph), "y")


def test_a_cut_of_several_tensors_is_refused(split):
    two = dataclasses.replace(split.manifest, cut=[*split.manifest.cut, TensorSpec("other", [1, 2, 3, 4], "float32")])
    with pytest.raises(DistillError, match="2 cut tensors"):
        check_bundle(dataclasses.replace(split, manifest=two))


def _refused(argv, capsys, out):
    assert distill.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    return err[0]


def test_too_few_frames_writes_nothing(split, tmp_path, capsys):
    out = tmp_path / "few"
    argv = [str(split.path), "--out", str(out), *FAST, "--train-count", "3"]
    assert "at least 16" in _refused(argv, capsys, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_existing_output_needs_overwrite(split, tmp_path, capsys):
    out = tmp_path / "there"
    out.mkdir()
    assert "--overwrite" in _refused([str(split.path), "--out", str(out), *FAST], capsys, out)
    assert list(out.iterdir()) == []


def test_judging_on_training_scenes_is_refused(split, tmp_path, capsys):
    argv = [str(split.path), "--out", str(tmp_path / "x"), *FAST, "--train-images", "corpus:train"]
    argv += ["--eval-images", "corpus"]
    assert "training scenes" in _refused(argv, capsys, tmp_path / "x")


def test_a_bundle_without_its_entropy_tables_is_refused_with_one_line(distilled, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(distilled.path, copy)
    (copy / ENTROPY_FILE).unlink()
    with pytest.raises(BundleError, match="no entropy table for 'bottleneck/symbols' at 4 bits"):
        load_bundle(copy)
    document = json.loads((distilled.path / ENTROPY_FILE).read_text())
    document["tables"][0]["bits"] = 3
    (copy / ENTROPY_FILE).write_text(json.dumps(document))
    with pytest.raises(BundleError, match=ENTROPY_FILE):
        load_bundle(copy)


def test_the_encoder_is_in_the_head_and_the_decoder_in_the_tail(distilled):
    head = onnx.load(str(distilled.head_path))
    tail = onnx.load(str(distilled.tail_path))
    assert any(n.name.startswith("bottleneck/enc") for n in head.graph.node)
    assert tail.graph.node[0].name.startswith("bottleneck/dec")
    assert [o.name for o in head.graph.output] == [SYMBOLS_NAME]


def test_calibrate_judges_the_bottleneck_beside_the_codecs_by_the_same_rule(split, distilled, capsys):
    assert distilled.manifest.verification["training_images"] == "generator"
    argv = [str(split.path), "--images", "generator", "--count", "12", "--bottleneck", str(distilled.path)]
    argv += ["--video-codecs", "none", "--dry-run", "--quiet", "--target-agreement", "0.5", "--confidence", "0.0"]
    assert calibrate.main(argv) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(str(distilled.path)))
    assert "(a) needed" in out and ("meets the rule at 0.5" in out)
    sizes = [int(c.replace(",", "")) for c in row.split() if c.replace(",", "").isdigit()]
    assert sizes and 0 < sizes[-1] < 4 * 16 * 16  # entropy-coded symbols: fewer bytes than 4 channels of float bytes


def test_calibrate_refuses_to_judge_a_bottleneck_on_its_training_scenes(split, tmp_path, capsys):
    out = tmp_path / "corpus_trained"
    assert distill.main([str(split.path), "--out", str(out), *FAST, "--train-images", "photos:train"]) == 0
    argv = [str(split.path), "--images", "generator", "--count", "4", "--eval-images", "photos", "--eval-count", "4"]
    argv += ["--bottleneck", str(out), "--video-codecs", "none", "--dry-run", "--quiet"]
    assert calibrate.main(argv) == 2
    assert "trained on photos:train" in capsys.readouterr().err


def test_bench_video_runs_the_bottleneck_on_a_clip_with_p_frames_that_decode_exactly(
    split, distilled, tmp_path, capsys
):
    out = tmp_path / "video.json"
    argv = ["video", "--bundle", str(split.path), "--images", "generator", "--count", "6", "--bits", "4"]
    argv += ["--eval-images", "video:carphone", "--eval-count", "10", "--codecs", "entropy", "--video-codecs", "none"]
    argv += ["--keyframe-intervals", "0,5", "--bottleneck", str(distilled.path), "--json", str(out)]
    assert bench.main(argv) == 0
    assert "learned bottlenecks, trained on (never judged)" in capsys.readouterr().out
    learned = json.loads(out.read_text())["bottlenecks"][0]
    assert learned["training_images"] == "generator"
    assert [r["keyframe_interval"] for r in learned["rows"]] == [0, 5]
    assert all(r["identical"] and r["agreement"]["frames"] == 10 for r in learned["rows"])
    intra, inter = learned["rows"]
    assert intra["agreement"] == inter["agreement"]  # P-frames decode to the intra codes, so the answers match


def test_a_sweep_writes_one_bundle_per_setting_and_the_curve(split, tmp_path):
    out = tmp_path / "sweep"
    argv = [str(split.path), "--out", str(out), *FAST, "--sweep", "--sweep-channels", "2,4", "--sweep-lambdas", "1"]
    assert distill.main(argv) == 0
    curve = json.loads((out / "curve.json").read_text())
    names = [b["name"] for b in curve["bottlenecks"]]
    assert names == ["c2_l1", "c4_l1"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "curve.json"])
    for entry in curve["bottlenecks"]:
        assert load_bundle(out / entry["name"]).manifest.cut[0].shape[1] == entry["channels"]
        assert entry["bytes_per_frame"] > 0 and 0 < entry["encoder_share"] < 1
        assert entry["mse_weight"] == 10.0  # the default, recorded with the point it made
    assert curve["training"]["images"] == "generator" and curve["judged"]["images"] == "generator"


@pytest.mark.parametrize("grid", [["--sweep-channels", "0,4"], ["--sweep-lambdas", "1,1"], ["--sweep-channels", "x"]])
def test_a_bad_sweep_grid_is_one_error_line(split, tmp_path, capsys, grid):
    assert "error:" in _refused([str(split.path), "--out", str(tmp_path / "s"), *FAST, "--sweep", *grid], capsys, None)
    assert not (tmp_path / "s").exists()
