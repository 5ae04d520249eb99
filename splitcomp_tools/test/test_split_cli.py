"""split: every cut analyze lists becomes a bundle whose head -> tail reproduces the model; bad input writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from tiny_models import onnx_model

from splitcomp_core.bundle import DYNAMIC, load_bundle
from splitcomp_tools import analyze, split
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.split import SplitError, parts, split_model


def _session(model: Path | bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), providers=["CPUExecutionProvider"])


def _through_bundle(bundle_dir: Path, x: np.ndarray) -> list[np.ndarray]:
    head, tail = _session(bundle_dir / "head.onnx"), _session(bundle_dir / "tail.onnx")
    features = head.run(None, {head.get_inputs()[0].name: x})
    return tail.run(None, dict(zip([o.name for o in head.get_outputs()], features)))


def _input_of(path: Path) -> tuple[str, tuple[int, ...]]:
    arg = _session(path).get_inputs()[0]
    return arg.name, tuple(d if isinstance(d, int) else 1 for d in arg.shape)


def _listed_cuts(path: Path, capsys, max_tensors: int = 2) -> list[list[str]]:
    assert analyze.main([str(path), "--json", "--max-tensors", str(max_tensors)]) == 0
    return [c["tensors"] for c in json.loads(capsys.readouterr().out)]


def _assert_refused(capsys, out: Path, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    assert not out.exists()
    assert [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []
    return err


@pytest.mark.parametrize("name", ["resnet", "mobilenet", "two_output", "parallel", "legacy"])
def test_every_listed_cut_splits_into_a_bundle_that_reproduces_the_model(zoo, name, tmp_path, capsys):
    model = zoo[name]
    cuts = _listed_cuts(model.path, capsys)
    assert cuts
    input_name, shape = _input_of(model.path)
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    expected = _session(model.path).run(None, {input_name: x})
    if model.module is not None:  # the exported model itself still matches PyTorch
        with torch.no_grad():
            reference = model.module(torch.from_numpy(x))
        reference = reference if isinstance(reference, tuple) else (reference,)
        for ref, exp in zip(reference, expected):
            np.testing.assert_allclose(exp, ref.numpy(), rtol=1e-4, atol=1e-4)
    for k, cut in enumerate(cuts):
        out = tmp_path / f"bundle{k}"
        assert split.main([str(model.path), "--at", ",".join(cut), "--out", str(out), "--samples", "2"]) == 0
        bundle = load_bundle(out)
        assert [c.name for c in bundle.manifest.cut] == cut
        tail = onnx.load(str(bundle.tail_path))
        weights = {t.name for t in tail.graph.initializer}
        assert [v.name for v in tail.graph.input if v.name not in weights] == cut, "the tail needs only the cut"
        head = onnx.load(str(bundle.head_path))
        assert [o.name for o in head.graph.output] == cut
        for part in (head, tail):  # only the weights a part's own nodes read
            read = {t for node in part.graph.node for t in node.input}
            assert {t.name for t in part.graph.initializer} <= read
        got = _through_bundle(out, x)
        assert len(got) == len(expected)
        for g_out, e_out in zip(got, expected):
            np.testing.assert_allclose(g_out, e_out, rtol=1e-5, atol=1e-5)
        assert bundle.manifest.verification["max_abs_diff"] <= 1e-4


def test_manifest_records_preprocessing_labels_images_and_dynamic_batch(resnet_model, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    for k in range(3):
        cv2.imwrite(str(images / f"frame{k}.png"), rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    (images / "notes.txt").write_text("not an image")
    labels = tmp_path / "class_index.json"
    labels.write_text(json.dumps({str(i): [f"n{i:08d}", f"class {i}"] for i in range(10)}))
    out = tmp_path / "bundle"
    argv = [
        str(resnet_model.path),
        "--at",
        "/layer1/Relu_1_output_0",
        "--out",
        str(out),
        "--bgr",
        "--crop",
        "--size",
        "32",
        "--mean",
        "0.5,0.4,0.3",
        "--std",
        "0.2,0.25,0.3",
        "--labels",
        str(labels),
        "--images",
        str(images),
        "--samples",
        "1",
    ]
    assert split.main(argv) == 0
    assert "3 images" in capsys.readouterr().out
    bundle = load_bundle(out)
    spec = bundle.manifest.input
    assert (spec.name, spec.height, spec.width, spec.color_order) == ("input", 32, 32, "BGR")
    assert (spec.resize, spec.resize_size) == ("center_crop", round(32 / 0.875))
    assert spec.mean == [0.5, 0.4, 0.3] and spec.std == [0.2, 0.25, 0.3]
    assert bundle.labels == [f"class {i}" for i in range(10)]
    assert bundle.manifest.verification["image_samples"] == 3
    assert bundle.manifest.verification["samples"] == 4
    assert bundle.manifest.output.name == "logits" and bundle.manifest.output.kind == "logits"
    (cut,) = bundle.manifest.cut
    assert cut.shape == [DYNAMIC, 8, 32, 32] and cut.dtype == "float32"
    x = np.random.default_rng(4).standard_normal((3, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(
        _through_bundle(out, x)[0], _session(resnet_model.path).run(None, {"input": x})[0], rtol=1e-5, atol=1e-5
    )


def test_model_with_external_data_splits_into_self_contained_parts(resnet_model, tmp_path):
    model = onnx.load(str(resnet_model.path))
    source = tmp_path / "model" / "resnet.onnx"
    source.parent.mkdir()
    onnx.save_model(model, str(source), save_as_external_data=True, location="weights.bin", size_threshold=0)
    out = tmp_path / "bundle"
    assert split.main([str(source), "--at", "/layer2/Relu_1_output_0", "--out", str(out), "--samples", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["head.onnx", "manifest.json", "tail.onnx"]
    x = np.random.default_rng(6).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(
        _through_bundle(out, x)[0], _session(resnet_model.path).run(None, {"input": x})[0], rtol=1e-5, atol=1e-5
    )


def test_output_choice_and_kind(two_output_model, tmp_path):
    out = tmp_path / "mask"
    assert (
        split.main(
            [
                str(two_output_model.path),
                "--at",
                "/trunk/trunk.3/Relu_output_0",
                "--out",
                str(out),
                "--output",
                "mask",
                "--samples",
                "1",
            ]
        )
        == 0
    )
    assert load_bundle(out).manifest.output.name == "mask"

    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Softmax", ["a"], ["p"], axis=1)]
    path = tmp_path / "soft.onnx"
    onnx.save(
        onnx_model(nodes, {"x": [1, 3, 4, 4]}, {"p": [1, 3, 4, 4]}, name="soft", ir_version=None, check=False),
        str(path),
    )
    assert split.main([str(path), "--at", "a", "--out", str(tmp_path / "soft"), "--samples", "1"]) == 0
    assert load_bundle(tmp_path / "soft").manifest.output.kind == "probabilities"


def test_overwrite(legacy_model, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert split.main([str(legacy_model.path), "--at", "block.1/relu:0", "--out", str(out)]) == 0
    first = load_bundle(out).manifest.model_id
    assert split.main([str(legacy_model.path), "--at", "block.2/mul:0", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert load_bundle(out).manifest.model_id == first
    assert split.main([str(legacy_model.path), "--at", "block.2/mul:0", "--out", str(out), "--overwrite"]) == 0
    replaced = load_bundle(out)
    assert replaced.manifest.model_id != first and replaced.manifest.cut[0].name == "block.2/mul:0"


def test_cut_inside_a_residual_block_lists_the_nearest_valid_cuts(resnet_model, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert split.main([str(resnet_model.path), "--at", "/layer1/conv1/conv1.0/Conv_output_0", "--out", str(out)]) == 2
    err = _assert_refused(capsys, out, "bypasses", "Nearest valid cuts")
    suggested = [line.strip() for line in err.split("Nearest valid cuts:")[1].strip().splitlines()]
    g = gr.build_graph(onnx.load(str(resnet_model.path)))
    assert len(suggested) == 5
    assert all(gr.cut_problem(g, s.split(", ")) is None for s in suggested)
    assert "/layer1/Add_output_0" in suggested  # the end of the very block the name is in


def test_unknown_tensor_name(resnet_model, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert split.main([str(resnet_model.path), "--at", "/layer1/Add_output", "--out", str(out)]) == 2
    err = _assert_refused(capsys, out, "no tensor named '/layer1/Add_output'")
    assert "/layer1/Add_output_0" in err.split("Nearest valid cuts:")[1]


def test_failed_verification_writes_nothing(resnet_model, tmp_path, capsys, monkeypatch):
    make_parts = parts.make_parts

    def corrupt_tail(full, g, cut, value_infos):
        head, tail = make_parts(full, g, cut, value_infos)
        weight = tail.graph.initializer[0]
        weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5 + 0.1, weight.name))
        return head, tail

    monkeypatch.setattr(parts, "make_parts", corrupt_tail)
    out = tmp_path / "bundle"
    assert split.main([str(resnet_model.path), "--at", "/stem/stem.1/Relu_output_0", "--out", str(out)]) == 2
    _assert_refused(capsys, out, "differ from the full model", "refusing to write")


def test_cut_through_an_integer_tensor_is_refused(tmp_path, capsys):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Neg", ["f"], ["n"]),
        helper.make_node("Reshape", ["n", "s"], ["y"]),
    ]
    path = tmp_path / "ints.onnx"
    onnx.save(
        onnx_model(nodes, {"x": [1, 3, 4, 4]}, {"y": [1, 3, 4, 4]}, name="ints", ir_version=None, check=False),
        str(path),
    )
    out = tmp_path / "bundle"
    assert split.main([str(path), "--at", "n,s", "--out", str(out)]) == 2
    _assert_refused(capsys, out, "'s' is int64")


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--labels", "LABELS"], ("3 labels", "10 classes")),
        (["--mean", "0.5,0.5"], ("--mean", "3 finite numbers")),
        (["--std", "1,0,1"], ("--std values must be > 0",)),
        (["--size", "24"], ("height 24 differs",)),
        (["--crop", "20"], ("--crop 20 is smaller",)),
        (["--images", "MISSING"], ("must be a directory",)),
        (["--output", "nope"], ("not a graph output",)),
        (["--samples", "0"], ("nothing to verify",)),
    ],
)
def test_bad_options_write_nothing(mobilenet_model, tmp_path, capsys, extra, fragments):
    (tmp_path / "labels.json").write_text(json.dumps(["a", "b", "c"]))
    extra = [
        str(tmp_path / "labels.json") if e == "LABELS" else str(tmp_path / "none") if e == "MISSING" else e
        for e in extra
    ]
    out = tmp_path / "bundle"
    cut = "/features/features.2/Add_output_0"
    assert split.main([str(mobilenet_model.path), "--at", cut, "--out", str(out), *extra]) == 2
    _assert_refused(capsys, out, *fragments)


@pytest.mark.parametrize(("content", "message"), [(None, "no such file"), (b"\x00\x01 not onnx", "not an ONNX model")])
def test_bad_model_file(tmp_path, capsys, content, message):
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "bundle"
    assert split.main([str(path), "--at", "x", "--out", str(out)]) == 2
    _assert_refused(capsys, out, message)


def test_model_with_two_inputs_is_refused(tmp_path, capsys):
    nodes = [helper.make_node("Add", ["x", "z"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    path = tmp_path / "two.onnx"
    onnx.save(
        onnx_model(
            nodes,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 4, 4]) for n in ("x", "z")],
            {"y": [1, 3, 4, 4]},
            name="two",
            ir_version=None,
            check=False,
        ),
        str(path),
    )
    out = tmp_path / "bundle"
    assert split.main([str(path), "--at", "a", "--out", str(out)]) == 2
    _assert_refused(capsys, out, "exactly one image input")


def _log_model(path: Path) -> Path:
    """x -> Neg -> h -> Log -> y: NaN wherever x > 0, which random normal inputs hit."""
    nodes = [helper.make_node("Neg", ["x"], ["h"]), helper.make_node("Log", ["h"], ["y"])]
    onnx.save(
        onnx_model(nodes, {"x": [1, 3, 4, 4]}, {"y": [1, 3, 4, 4]}, name="log", ir_version=None, check=False), str(path)
    )
    return path


def _shift_log(tail: onnx.ModelProto) -> None:
    """Log(h) + 5: NaN where the full model has NaN, 5 off everywhere else."""
    tail.graph.node[0].output[0] = "logh"
    tail.graph.initializer.append(numpy_helper.from_array(np.array(5, np.float32), "five"))
    tail.graph.node.append(helper.make_node("Add", ["logh", "five"], ["y"]))


def _abs_log(tail: onnx.ModelProto) -> None:
    """Log(|h|): equal where the full model is finite, finite where it is NaN."""
    tail.graph.node[0].input[0] = "abs_h"
    tail.graph.node.insert(0, helper.make_node("Abs", ["h"], ["abs_h"]))


@pytest.mark.parametrize(
    ("corrupt", "fragments"),
    [
        (_shift_log, ("differ from the full model by 5",)),
        (_abs_log, ("the full model or head + tail produce NaN where the other does not (output y)",)),
    ],
    ids=["shifted", "nan_in_one_only"],
)
def test_nan_never_hides_a_difference(tmp_path, capsys, monkeypatch, corrupt, fragments):
    make_parts = parts.make_parts

    def corrupt_tail(full, g, cut, value_infos):
        head, tail = make_parts(full, g, cut, value_infos)
        corrupt(tail)
        return head, tail

    monkeypatch.setattr(parts, "make_parts", corrupt_tail)
    out = tmp_path / "bundle"
    assert split.main([str(_log_model(tmp_path / "log.onnx")), "--at", "h", "--out", str(out)]) == 2
    _assert_refused(capsys, out, *fragments, "refusing to write")


def test_nan_where_the_full_model_has_nan_is_no_difference(tmp_path):
    bundle, check = split_model(_log_model(tmp_path / "log.onnx"), ["h"], tmp_path / "bundle")
    assert check.max_abs_diff == 0 and check.relative_diff == 0 and check.nan_mismatch == ()
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(np.float32)
    (y,) = _through_bundle(bundle.path, x)
    assert np.isnan(y).any() and not np.isnan(y).all()  # the samples did hit NaN
    np.testing.assert_array_equal(y, _session(tmp_path / "log.onnx").run(None, {"x": x})[0])


def _softmax_then(path: Path, ops: list[str]) -> Path:
    """x [1,3,4,4] -> Flatten -> a -> Softmax -> then each op in `ops` (shape-only) -> y."""
    nodes = [helper.make_node("Flatten", ["x"], ["a"]), helper.make_node("Softmax", ["a"], ["p0"], axis=1)]
    weights, shape = [], [1, 48]
    for k, op in enumerate(ops):
        src, dst = f"p{k}", f"p{k + 1}"
        if op == "Reshape":
            weights.append(numpy_helper.from_array(np.array([1, 48], np.int64), f"s{k}"))
            nodes.append(helper.make_node(op, [src, f"s{k}"], [dst]))
        elif op in ("Unsqueeze", "Squeeze"):
            weights.append(numpy_helper.from_array(np.array([2], np.int64), f"s{k}"))
            nodes.append(helper.make_node(op, [src, f"s{k}"], [dst]))
            shape = [1, 48, 1] if op == "Unsqueeze" else [1, 48]
        elif op == "Cast":
            nodes.append(helper.make_node(op, [src], [dst], to=TensorProto.FLOAT))
        elif op == "Transpose":
            nodes.append(helper.make_node(op, [src], [dst], perm=[1, 0]))
            shape = shape[::-1]
        else:
            nodes.append(helper.make_node(op, [src], [dst]))
    nodes.append(helper.make_node("Identity", [f"p{len(ops)}"], ["y"]))
    model = onnx_model(
        nodes,
        {"x": [1, 3, 4, 4]},
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        weights,
        name="soft",
        ir_version=None,
        check=False,
    )
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "ops",
    [["Reshape"], ["Flatten"], ["Unsqueeze", "Squeeze"], ["Cast", "Transpose", "Transpose"], []],
)
def test_softmax_behind_shape_only_ops_is_probabilities(tmp_path, ops):
    path = _softmax_then(tmp_path / "soft.onnx", ops)
    bundle, _ = split_model(path, ["a"], tmp_path / "bundle", random_samples=1)
    assert bundle.manifest.output.kind == "probabilities"


def test_output_kind_option_overrides_the_guess(tmp_path, capsys):
    soft = _softmax_then(tmp_path / "soft.onnx", ["Flatten"])
    assert split.main([str(soft), "--at", "a", "--out", str(tmp_path / "a"), "--output-kind", "logits"]) == 0
    assert load_bundle(tmp_path / "a").manifest.output.kind == "logits"
    relu = tmp_path / "relu.onnx"
    onnx.save(
        onnx_model(
            [helper.make_node("Flatten", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])],
            {"x": [1, 3, 4, 4]},
            {"y": [1, 48]},
            name="relu",
            ir_version=None,
            check=False,
        ),
        str(relu),
    )
    assert split.main([str(relu), "--at", "a", "--out", str(tmp_path / "b")]) == 0
    assert load_bundle(tmp_path / "b").manifest.output.kind == "logits"
    assert split.main([str(relu), "--at", "a", "--out", str(tmp_path / "c"), "--output-kind", "probabilities"]) == 0
    assert load_bundle(tmp_path / "c").manifest.output.kind == "probabilities"
    with pytest.raises(SplitError, match="output kind must be one of auto, logits, probabilities"):
        split_model(relu, ["a"], tmp_path / "d", output_kind="probs")
    assert not (tmp_path / "d").exists()


def test_dynamic_batch_refuses_a_model_that_drops_its_batch_and_writes_nothing(tmp_path, capsys):
    """A batch-1 export that squeezes the batch away cannot be rewritten: one error line that says what to do."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Squeeze", ["r", "axes"], ["s"]),
        helper.make_node("Neg", ["s"], ["n"]),
        helper.make_node("Unsqueeze", ["n", "axes"], ["y"]),
    ]
    path = tmp_path / "squeezed.onnx"
    axes = {"axes": np.array([0], dtype=np.int64)}
    onnx.save(onnx_model(nodes, {"x": [1, 3, 4, 4]}, {"y": [1, 3, 4, 4]}, axes), str(path))
    out = tmp_path / "bundle"
    assert split.main([str(path), "--at", "r", "--out", str(out), "--dynamic-batch"]) == 2
    _assert_refused(capsys, out, "--dynamic-batch", "batch of 3", "export the model with a dynamic batch")
    assert split.main([str(path), "--at", "r", "--out", str(out)]) == 0  # without it, the static split works


def test_dynamic_batch_rewrites_a_batch_1_reshape_and_concatenated_constant(tmp_path, capsys):
    """Reshape to [1, -1] and a [1, 1, 48] token concatenated with the features: head and tail take any batch."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Reshape", ["r", "flat"], ["f"]),
        helper.make_node("Unsqueeze", ["f", "one"], ["u"]),
        helper.make_node("Concat", ["token", "u"], ["c"], axis=1),
        helper.make_node("ReduceMean", ["c"], ["m"], axes=[1], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["y"]),
    ]
    weights = {
        "flat": np.array([1, -1], dtype=np.int64),
        "one": np.array([1], dtype=np.int64),
        "token": rng.standard_normal((1, 1, 48)).astype(np.float32),
        "w": rng.standard_normal((48, 5)).astype(np.float32),
    }
    path = tmp_path / "static.onnx"
    onnx.save(onnx_model(nodes, {"x": [1, 3, 4, 4]}, {"y": [1, 5]}, weights), str(path))
    out = tmp_path / "bundle"
    assert split.main([str(path), "--at", "r", "--out", str(out), "--dynamic-batch"]) == 0
    manifest = load_bundle(out).manifest
    assert manifest.input.shape[0] == manifest.cut[0].shape[0] == manifest.output.shape[0] == DYNAMIC
    x = rng.standard_normal((3, 3, 4, 4)).astype(np.float32)
    (batched,) = _through_bundle(out, x)
    full = _session(path)
    alone = np.concatenate([full.run(None, {"x": x[k : k + 1]})[0] for k in range(3)])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert str(path) == manifest.source  # the model, not the rewritten copy, is what the bundle came from
