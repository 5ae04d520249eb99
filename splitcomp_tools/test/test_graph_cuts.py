"""Cut finding in splitcomp_tools.model.graph, checked against a brute-force oracle written independently of it."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from tiny_models import onnx_model

from splitcomp_tools.model import graph as gr


def _oracle_cuts(model: onnx.ModelProto, max_tensors: int) -> set[frozenset[str]]:
    """All minimal, non-trivial cuts by exhaustive search, from the path definition only.

    A set C is a cut iff no graph output can be reached from a real input along a path of nodes
    that avoids every tensor of C (constants never count as reaching).
    """
    g = model.graph
    initialized = {t.name for t in g.initializer}
    real = {v.name for v in g.input if v.name not in initialized}
    outputs = {v.name for v in g.output}
    read_by_any = {t for n in g.node for t in n.input}

    def reached(removed: frozenset[str]) -> set[str]:
        seen = set(real)
        for node in g.node:  # the test graphs are stored in topological order
            if seen.intersection(node.input):
                seen.update(o for o in node.output if o and o not in removed)
        return seen

    def is_cut(c: frozenset[str]) -> bool:
        return not (reached(c) & outputs)

    candidates = sorted(reached(frozenset()) - real)
    found = set()
    for k in range(1, max_tensors + 1):
        for combo in combinations(candidates, k):
            c = frozenset(combo)
            if not is_cut(c) or any(is_cut(c - {t}) for t in c):
                continue
            if all(t in outputs and t not in read_by_any for t in c):
                continue  # only unread final outputs: nothing left for the tail
            found.add(c)
    return found


@pytest.mark.parametrize(
    ("name", "max_tensors"),
    [("resnet", 2), ("mobilenet", 2), ("two_output", 3), ("parallel", 3), ("legacy", 3)],
)
def test_find_cuts_matches_exhaustive_search(zoo, name, max_tensors):
    model = onnx.load(str(zoo[name].path))
    found = gr.find_cuts(gr.build_graph(model), max_tensors)
    assert len(found) == len(set(found))
    assert {frozenset(c) for c in found} == _oracle_cuts(model, max_tensors)


def _chain_model(nodes: list, outputs: list[str]) -> onnx.ModelProto:
    return onnx_model(
        nodes,
        {"x": [1, 4]},
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [1, 4]) for o in outputs],
        name="g",
        ir_version=None,
        check=False,
    )


def test_non_convex_cut_is_found():
    """{c1, c2} is a minimal cut although no topological order has exactly {c1, c2} live: t is
    computed from c1 on both sides of it."""
    model = _chain_model(
        [
            helper.make_node("Relu", ["x"], ["c1"]),
            helper.make_node("Neg", ["c1"], ["t"]),
            helper.make_node("Sigmoid", ["x"], ["y"]),
            helper.make_node("Add", ["t", "y"], ["c2"]),
            helper.make_node("Mul", ["t", "c2"], ["out"]),
        ],
        ["out"],
    )
    found = {frozenset(c) for c in gr.find_cuts(gr.build_graph(model), 2)}
    assert frozenset({"c1", "c2"}) in found
    assert found == _oracle_cuts(model, 2)


def test_intermediate_output_is_the_last_cut():
    """`o` is a graph output the network also reads on: a cut, and every later cut would have to contain it."""
    model = _chain_model(
        [
            helper.make_node("Relu", ["x"], ["o"]),
            helper.make_node("Neg", ["o"], ["p"]),
            helper.make_node("Tanh", ["p"], ["q"]),
            helper.make_node("Sigmoid", ["q"], ["y"]),
        ],
        ["o", "y"],
    )
    g = gr.build_graph(model)
    assert gr.find_cuts(g, 1) == [("o",)]
    assert gr.cut_problem(g, ["p"]) is not None and gr.cut_problem(g, ["o", "p"]) is not None
    assert {frozenset(c) for c in gr.find_cuts(g, 3)} == _oracle_cuts(model, 3) == {frozenset({"o"})}


def test_tensor_inside_a_residual_block_is_not_a_single_cut(resnet_model):
    g = gr.build_graph(onnx.load(str(resnet_model.path)))
    singles = {c[0] for c in gr.find_cuts(g, 1)}
    inner = [t for t in g.producer if t.startswith("/layer1/conv1/") or t.startswith("/layer1/conv2/")]
    assert inner, "the export should name the block's tensors after its modules"
    assert not singles & set(inner)
    problem = gr.cut_problem(g, [inner[0]])
    assert problem is not None and "bypasses" in problem
    block_out = next(t for t in g.producer if t.startswith("/layer1/Add"))
    assert block_out in singles


def test_parallel_branches_only_have_two_tensor_cuts_inside(parallel_model):
    g = gr.build_graph(onnx.load(str(parallel_model.path)))
    branch = [t for t in g.producer if t.startswith(("/left/", "/right/"))]
    singles = {c[0] for c in gr.find_cuts(g, 1)}
    assert not singles & set(branch)
    pairs = [c for c in gr.find_cuts(g, 2) if len(c) == 2]
    assert pairs
    for pair in pairs:
        assert sorted(t.split("/")[1] for t in pair) == ["left", "right"]
        assert gr.cut_problem(g, pair) is None
        assert gr.cut_problem(g, pair[:1]) is not None


def test_weights_listed_as_inputs_are_not_real_inputs(legacy_model):
    g = gr.build_graph(onnx.load(str(legacy_model.path)))
    assert g.real_inputs == ("images:0",)
    assert "scale/w:0" not in g.dependent  # computed by the Constant/Shape/ConstantOfShape subgraph
    assert [c[0] for c in gr.find_cuts(g, 1)] == [
        "block.1/conv:0",
        "block.1/relu:0",
        "block.1/drop:0",
        "block.1/id:0",
        "block.2/mul:0",
    ]


def _shape_model() -> onnx.ModelProto:
    """x -> Relu -> r; Shape(r) feeds a late Reshape, so only r itself separates input from output."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Sigmoid", ["r"], ["a"]),
        helper.make_node("Flatten", ["a"], ["f"]),
        helper.make_node("Neg", ["f"], ["n"]),
        helper.make_node("Reshape", ["n", "s"], ["y"]),
    ]
    return onnx_model(nodes, {"x": ["batch", 2, 3]}, {"y": ["batch", 2, 3]}, name="shape", ir_version=None, check=False)


def test_shape_of_an_input_dependent_tensor_is_input_dependent():
    g = gr.build_graph(_shape_model())
    assert "s" in g.dependent
    assert list(gr.find_cuts(g, 1)) == [("r",)]
    assert {frozenset(c) for c in gr.find_cuts(g, 2) if len(c) == 2} == {frozenset({"s", t}) for t in ("a", "f", "n")}
    problem = gr.cut_problem(g, ["n"])
    assert problem is not None and "x -> r -> s ->" in problem


def test_subgraph_reads_from_the_outer_scope_count():
    """An If branch that reads `a` from the enclosing graph keeps `a` live until the If runs."""
    branch = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["o"])],
        "branch",
        [],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [1, 2])],
    )
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Neg", ["a"], ["b"]),
        helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["cond"], ["i"], then_branch=branch, else_branch=branch),
        helper.make_node("Mul", ["b", "i"], ["y"]),
    ]
    model = onnx_model(nodes, {"x": [1, 2]}, {"y": [1, 2]}, name="if", ir_version=None, check=False)
    g = gr.build_graph(model)
    assert gr.find_cuts(g, 1) == [("a",)]
    assert gr.cut_problem(g, ["b"]) is not None
    inferred = onnx.shape_inference.infer_shapes(model).graph
    infos = {v.name: v for v in (*inferred.value_info, *inferred.input, *inferred.output)}
    tail = gr.extract(model, g, ["a"], ["y"], infos)
    session = ort.InferenceSession(tail.SerializeToString(), providers=["CPUExecutionProvider"])
    a = np.array([[1.0, 2.0]], np.float32)
    np.testing.assert_allclose(session.run(None, {"a": a})[0], -a * a)


def test_topological_order_is_recovered_from_an_unsorted_file():
    nodes = [helper.make_node("Neg", ["a"], ["y"]), helper.make_node("Relu", ["x"], ["a"])]
    g = gr.build_graph(onnx_model(nodes, {"x": [1]}, {"y": [1]}, name="unsorted", ir_version=None, check=False))
    assert [n.op_type for n in g.nodes] == ["Relu", "Neg"]
    assert gr.find_cuts(g) == [("a",)]


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([helper.make_node("Neg", ["ghost"], ["y"])], "reads 'ghost'"),
        ([helper.make_node("Neg", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["y"])], "defined twice"),
        (
            [
                helper.make_node("Add", ["x", "b"], ["a"]),
                helper.make_node("Neg", ["a"], ["b"]),
                helper.make_node("Relu", ["a"], ["y"]),
            ],
            "cycle",
        ),
    ],
)
def test_broken_graphs_are_refused_clearly(nodes, message):
    with pytest.raises(gr.ModelError, match=message):
        gr.build_graph(onnx_model(nodes, {"x": [1]}, {"y": [1]}, name="bad", ir_version=None, check=False))


def test_cut_problem_names_what_is_wrong(legacy_model):
    g = gr.build_graph(onnx.load(str(legacy_model.path)))
    assert "model input" in gr.cut_problem(g, ["images:0"])
    assert "no tensor named" in gr.cut_problem(g, ["nope"])
    assert "constant" in gr.cut_problem(g, ["scale/w:0"])
    assert "redundant" in gr.cut_problem(g, ["block.1/relu:0", "block.1/id:0"])
    assert "nothing to compute" in gr.cut_problem(g, ["logits:0", "mask.out:0"])
    assert "listed twice" in gr.cut_problem(g, ["block.1/id:0", "block.1/id:0"])
    with pytest.raises(gr.ModelError, match="max_tensors"):
        gr.find_cuts(g, 4)


def test_nearest_cuts_are_ordered_by_topological_distance(legacy_model):
    g = gr.build_graph(onnx.load(str(legacy_model.path)))
    cuts = gr.find_cuts(g, 1)
    nearest = gr.nearest_cuts(g, cuts, "block.1/drop_mask:0", count=2)
    assert nearest == [("block.1/drop:0",), ("block.1/relu:0",)]
