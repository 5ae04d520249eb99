"""Cut shapes are measured, not declared; and a batch size read from the input no longer bypasses every cut.

The hand-built graphs here are what exporters write: `x.view(x.size(0), -1)` becomes
Shape(input) -> Gather(0) -> Unsqueeze -> Concat -> Reshape, which makes every tensor before the
Reshape bypassable; declared shapes with symbolic sizes where the real ones are fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper
from tiny_models import onnx_model, save

from splitcomp_core.bundle import DYNAMIC, load_bundle
from splitcomp_tools import analyze, split
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.analyze import shape_read_note

RNG = np.random.default_rng(0)
WEIGHT = RNG.standard_normal((3, 2)).astype(np.float32)


def _view_model(source: str = "p", shape_end: int | None = None) -> onnx.ModelProto:
    """[batch, 3, 4, 4] -> Relu -> GlobalAveragePool -> Reshape to [batch, -1] with the batch read from the input.

    `source` is what the Reshape reshapes: "p" (the pooled features, dim 0 the batch) or "t" (the
    same transposed to [3, batch, 1, 1], whose dim 0 is not; the Reshape still gives [batch, 3]). `shape_end=1` writes the read as
    Shape(start=0, end=1), as the dynamo exporter does, instead of Shape + Gather(0).
    """
    read = (
        [helper.make_node("Shape", ["x"], ["b"], "/Shape", start=0, end=1)]
        if shape_end == 1
        else [
            helper.make_node("Shape", ["x"], ["s"], "/Shape"),
            helper.make_node("Gather", ["s", "zero"], ["g"], "/Gather", axis=0),
            helper.make_node("Unsqueeze", ["g", "axes"], ["b"], "/Unsqueeze"),
        ]
    )
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], "/Relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], "/Pool"),
        helper.make_node("Transpose", ["p"], ["t"], "/Transpose", perm=[1, 0, 2, 3]),
        *read,
        helper.make_node("Concat", ["b", "minus_one"], ["c"], "/Concat", axis=0),
        helper.make_node("Reshape", [source, "c"], ["f"], "/Reshape"),
        helper.make_node("MatMul", ["f", "w"], ["y"], "/MatMul"),
    ]
    inits = {
        "zero": np.array(0, np.int64),
        "axes": np.array([0], np.int64),
        "minus_one": np.array([-1], np.int64),
        "w": WEIGHT,
    }
    return onnx_model(nodes, {"x": ["batch", 3, 4, 4]}, {"y": ["batch", 2]}, inits, name="view")


def _run(model: onnx.ModelProto | Path, x: np.ndarray) -> np.ndarray:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("shape_end", [None, 1])
def test_a_batch_read_for_a_reshape_is_moved_to_the_reshaped_tensor(tmp_path, shape_end):
    model = _view_model(shape_end=shape_end)
    path = save(model, tmp_path / "view.onnx")
    g = gr.build_graph(model)
    assert gr.find_cuts(g) == [("f",)]  # Shape(x) bypasses r and p
    (read,) = gr.input_shape_reads(model, g)
    assert (read.shape_node, read.input, read.meets, read.source) == (
        "'/Shape' (Shape)",
        "x",
        "'/Reshape' (Reshape)",
        "p",
    )
    original = onnx.ModelProto()
    original.CopyFrom(model)
    assert gr.rebase_batch_reads(path, model, {"x": (1, 3, 4, 4)}) == [read]
    onnx.checker.check_model(model, full_check=True)
    shape_node = next(n for n in model.graph.node if n.op_type == "Shape")
    assert shape_node.input[0] == "p"
    g = gr.build_graph(model)
    assert gr.find_cuts(g) == [("r",), ("p",), ("f",)]
    assert gr.input_shape_reads(model, g) == []
    for batch in (1, 3):
        x = RNG.standard_normal((batch, 3, 4, 4)).astype(np.float32)
        np.testing.assert_array_equal(_run(model, x), _run(original, x))


def test_a_reshaped_tensor_whose_dim_0_is_not_the_batch_is_left_alone(tmp_path):
    model = _view_model(source="t")
    path = save(model, tmp_path / "transposed.onnx")
    (read,) = gr.input_shape_reads(model, gr.build_graph(model))
    assert read.source == "t"  # structurally a candidate, but dim 0 of t is 3, not the batch
    before = model.SerializeToString()
    assert gr.rebase_batch_reads(path, model, {"x": (1, 3, 4, 4)}) == []
    assert model.SerializeToString() == before


def test_a_read_of_other_dims_is_explained_but_not_rewritten(tmp_path):
    """Reshape(p, Shape(x)[2:]) style: the value depends on H and W, which no later tensor is known to carry."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], "/Relu"),
        helper.make_node("Shape", ["x"], ["s"], "/Shape"),
        helper.make_node("Gather", ["s", "two"], ["h"], "/Gather", axis=0),
        helper.make_node("Unsqueeze", ["h", "axes"], ["u"], "/Unsqueeze"),
        helper.make_node("Concat", ["u", "minus_one"], ["c"], "/Concat", axis=0),
        helper.make_node("Reshape", ["r", "c"], ["y"], "/Reshape"),
    ]
    inits = {"two": np.array(2, np.int64), "axes": np.array([0], np.int64), "minus_one": np.array([-1], np.int64)}
    model = onnx_model(nodes, {"x": ["batch", 3, 4, 4]}, {"y": [4, "n"]}, inits, name="hw")
    path = save(model, tmp_path / "hw.onnx")
    (read,) = gr.input_shape_reads(model, gr.build_graph(model))
    assert read.source is None
    assert gr.rebase_batch_reads(path, model, {"x": (1, 3, 4, 4)}) == []
    note = shape_read_note(read)
    assert "bypasses every tensor computed before it" in note and "--rebase-batch" not in note


def test_a_shape_read_shared_by_the_batch_and_other_dims_is_left_alone(tmp_path):
    """One Shape(x) (exporters merge identical ones) feeds both a scale from H and the flatten's batch."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], "/Shape"),
        helper.make_node("Gather", ["s", "two"], ["h"], axis=0),
        helper.make_node("Cast", ["h"], ["hf"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "hf"], ["m"]),
        helper.make_node("Relu", ["m"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Unsqueeze", ["b", "axes"], ["u"]),
        helper.make_node("Concat", ["u", "minus_one"], ["c"], axis=0),
        helper.make_node("Reshape", ["p", "c"], ["f"], "/Reshape"),
        helper.make_node("MatMul", ["f", "w"], ["y"]),
    ]
    inits = {
        "two": np.array(2, np.int64),
        "zero": np.array(0, np.int64),
        "axes": np.array([0], np.int64),
        "minus_one": np.array([-1], np.int64),
        "w": WEIGHT,
    }
    model = onnx_model(nodes, {"x": ["batch", 3, 4, 4]}, {"y": ["batch", 2]}, inits, name="shared")
    path = save(model, tmp_path / "shared.onnx")
    (read,) = gr.input_shape_reads(model, gr.build_graph(model))
    assert read.meets == "'/Reshape' (Reshape)" and read.source is None  # p's dim 0 would be wrong for H
    assert gr.rebase_batch_reads(path, model, {"x": (1, 3, 4, 4)}) == []


def test_a_shape_read_that_only_meets_the_input_again_is_not_reported():
    """A stem's computed padding, Pad(x, f(Shape(x))), bypasses nothing."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "two", "four"], ["hw"]),
        helper.make_node("Mod", ["hw", "two_two"], ["odd"]),
        helper.make_node("Concat", ["zeros", "odd"], ["pads"], axis=0),
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Relu", ["p"], ["y"]),
    ]
    inits = {
        "two": np.array([2], np.int64),
        "four": np.array([4], np.int64),
        "two_two": np.array([2, 2], np.int64),
        "zeros": np.zeros(6, np.int64),
    }
    model = onnx_model(nodes, {"x": [1, 3, 5, 5]}, {"y": [1, 3, "h", "w"]}, inits, name="pad")
    assert gr.input_shape_reads(model, gr.build_graph(model)) == []


def test_analyze_says_why_cuts_are_missing_and_rebase_batch_finds_them(tmp_path, capsys):
    path = save(_view_model(), tmp_path / "view.onnx")
    assert analyze.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 cuts" in out and "note: node '/Shape' (Shape) reads the shape of input 'x'" in out
    assert "'/Reshape' (Reshape)" in out and "--rebase-batch" in out and "'p'" in out
    assert analyze.main([str(path), "--json", "--rebase-batch"]) == 0
    captured = capsys.readouterr()
    assert [c["tensors"] for c in json.loads(captured.out)] == [["r"], ["p"], ["f"]]
    assert "now reads the batch size from 'p'" in captured.err
    assert onnx.load(str(path)).SerializeToString() == _view_model().SerializeToString()  # the file is untouched


def test_split_rebase_batch_cuts_before_the_reshape(tmp_path, capsys):
    path = save(_view_model(), tmp_path / "view.onnx")
    out = tmp_path / "bundle"
    argv = [str(path), "--at", "p", "--out", str(out), "--samples", "2"]
    assert split.main(argv) == 2
    assert "bypasses" in capsys.readouterr().err and not out.exists()
    assert split.main([*argv, "--rebase-batch"]) == 0
    bundle = load_bundle(out)
    assert bundle.manifest.cut[0].shape == [DYNAMIC, 3, 1, 1]
    head = ort.InferenceSession(str(bundle.head_path), providers=["CPUExecutionProvider"])
    tail = ort.InferenceSession(str(bundle.tail_path), providers=["CPUExecutionProvider"])
    x = RNG.standard_normal((3, 3, 4, 4)).astype(np.float32)
    (p,) = head.run(None, {"x": x})
    np.testing.assert_array_equal(tail.run(None, {"p": p})[0], _run(path, x))


def _batch_model(kind: str) -> onnx.ModelProto:
    """x [batch, 3, 4] -> Relu -> `kind`: "merged" reshapes to [batch * 3, 4], "moved" transposes to [3, batch, 4]."""
    if kind == "merged":
        last = helper.make_node("Reshape", ["r", "shape"], ["c"])
        inits = {"shape": np.array([-1, 4], np.int64)}
    else:
        last = helper.make_node("Transpose", ["r"], ["c"], perm=[1, 0, 2])
        inits = {}
    nodes = [helper.make_node("Relu", ["x"], ["r"]), last, helper.make_node("Neg", ["c"], ["y"])]
    return onnx_model(nodes, {"x": ["batch", 3, 4]}, {"y": ["n", "m"] if kind == "merged" else [3, "n", 4]}, inits)


def test_measured_shapes_keep_only_a_true_batch_dynamic(tmp_path):
    for kind, cut_shape in (("merged", (3, 4)), ("moved", (3, 1, 4))):
        model = _batch_model(kind)
        path = save(model, tmp_path / f"{kind}.onnx")
        types = gr.measure_types(path, model, ["r", "c"], {"x": (1, 3, 4)}, dynamic_batch=True)
        assert types["r"] == gr.TensorType("float32", (DYNAMIC, 3, 4))
        assert types["c"] == gr.TensorType("float32", cut_shape)  # grows with the batch, but is not it
        static = gr.measure_types(path, model, ["r", "c"], {"x": (1, 3, 4)})
        assert static["r"].shape == (1, 3, 4) and static["c"].shape == cut_shape


def test_a_model_that_cannot_run_at_a_larger_batch_gets_static_shapes(tmp_path):
    """Declared dynamic, but a fixed Reshape to [1, 12] only works at batch 1."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "shape"], ["y"])]
    model = onnx_model(nodes, {"x": ["batch", 3, 4]}, {"y": [1, 12]}, {"shape": np.array([1, 12], np.int64)})
    path = save(model, tmp_path / "fixed.onnx")
    types = gr.measure_types(path, model, ["r", "y"], {"x": (1, 3, 4)}, dynamic_batch=True)
    assert types["r"].shape == (1, 3, 4) and types["y"].shape == (1, 12)
