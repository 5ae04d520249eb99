"""Reads of a real input's shape that bypass every cut, and the rewrite that moves a batch read onto the features.

A dynamic-batch export of `x.view(x.size(0), -1)` reads the batch size from the input; that path
goes around every tensor computed before the view, so none of them is a cut until the read is
pointed at the tensor the view reshapes (`rebase_batch_reads`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import onnx
from onnx import numpy_helper

from splitcomp_core.bundle import DYNAMIC
from splitcomp_tools.model.graph.structure import Graph, build_graph
from splitcomp_tools.model.graph.tensor_types import measure_types


@dataclass(frozen=True)
class InputShapeRead:
    """A Shape node that reads a real input, and the node where the value it computes meets the features.

    The path input -> Shape -> ... -> `meets` bypasses every tensor computed before `meets`, so
    none of them is a cut. `source` is set when only the input's batch size is read and the value
    meets one feature tensor (the tensor `x.view(x.size(0), -1)` reshapes, or the tokens a cls token
    expanded to `x.shape[0]` is concatenated with): that tensor's own dim 0 gives the same size if
    it is the batch, which `rebase_batch_reads` measures before it rewrites anything.
    """

    position: int  # of the Shape node
    shape_node: str
    input: str
    meets: str
    source: str | None


def input_shape_reads(model: onnx.ModelProto, g: Graph) -> list[InputShapeRead]:
    """Shape nodes reading a real input whose value reaches the outputs around computed features.

    The value is followed through shape arithmetic (nodes whose inputs are all computed from
    input shapes and constants, such as the pads of TensorFlow "same" padding, which may combine
    several Shape nodes) to the nodes where it meets a feature tensor. A Shape whose value only
    meets the input itself again (a stem's computed padding) bypasses nothing and is not listed.
    """
    derived: set[str] = set()  # computed from the shapes of real inputs and constants alone
    for i in range(len(g.nodes)):
        if _reads_input_shape(g, i) or (
            not derived.isdisjoint(g.reads[i]) and all(t in derived for t in g.reads[i] if t in g.dependent)
        ):
            derived.update(g.writes[i])
    found = []
    for s in g.relevant:
        if not _reads_input_shape(g, s):
            continue
        node = g.nodes[s]
        start, end = _int_attr(node, "start", 0), _int_attr(node, "end", None)
        # `vector`: the whole shape from dim 0, whose element 0 is the batch; `other`: values that
        # depend on other dims. The rest of the chain holds nothing but the batch size.
        vector = set(g.writes[s]) if start == 0 and end != 1 else set()
        other = set(g.writes[s]) if start != 0 else set()
        chain = set(g.writes[s])
        meets: list[int] = []
        batch_only = True
        for i in range(s + 1, len(g.nodes)):
            read = [t for t in g.reads[i] if t in chain]
            if not read:
                continue
            mixed = any(t in vector or t in other for t in read)
            if not all(t in derived for t in g.reads[i] if t in g.dependent):
                meets.append(i)
                batch_only = batch_only and not mixed
                continue
            takes_batch = read == [g.nodes[i].input[0]] and read[0] in vector and _takes_first(model, g, i)
            if mixed and not takes_batch:
                other.update(g.writes[i])
            chain.update(g.writes[i])
        batch_only = batch_only and (vector | other).isdisjoint(g.outputs)
        bypassing = [  # meeting nodes that read a computed feature, not only the input again
            i
            for i in meets
            if i in g.relevant
            and any(t not in g.real_inputs and t not in derived for t in g.reads[i] if t in g.dependent)
        ]
        if not bypassing:
            continue
        found.append(
            InputShapeRead(
                s,
                _node_label(g, s),
                node.input[0],
                _node_label(g, bypassing[0]),
                _batch_source(g, meets, derived) if batch_only else None,
            )
        )
    return found


def rebase_batch_reads(
    path: str | os.PathLike, model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]]
) -> list[InputShapeRead]:
    """Point every batch-only input Shape at the feature tensor its value meets, where that has the same dim 0.

    `x.view(x.size(0), -1)` in a dynamic-batch export reads the batch from the input, and that
    path bypasses every tensor before the view. Reading dim 0 of the reshaped tensor instead gives
    the same value exactly when that dim is the batch, which is measured first (in ONNX Runtime at
    two batch sizes, or at the one fixed batch). `model` is changed in place and re-sorted; the
    rewritten reads are returned.
    """
    g = build_graph(model)
    candidates = [r for r in input_shape_reads(model, g) if r.source is not None]
    if not candidates:
        return []
    declared = {v.name: v.type.tensor_type.shape.dim for v in model.graph.input}
    dynamic = any(not declared[n][0].HasField("dim_value") for n in g.real_inputs if declared[n])
    sources = sorted({r.source for r in candidates if r.source is not None})
    types = measure_types(path, model, sources, input_shapes, dynamic_batch=dynamic)
    done = []
    for r in candidates:
        assert r.source is not None
        dims = types[r.source].shape if r.source in types else ()
        if dims[:1] == ((DYNAMIC,) if dynamic else tuple(input_shapes[r.input][:1])):
            g.nodes[r.position].input[0] = r.source
            done.append(r)
    if done:
        ordered = [onnx.NodeProto() for _ in g.nodes]
        for copy, node in zip(ordered, build_graph(model).nodes):
            copy.CopyFrom(node)
        del model.graph.node[:]
        model.graph.node.extend(ordered)
    return done


def _reads_input_shape(g: Graph, i: int) -> bool:
    node = g.nodes[i]
    return node.op_type == "Shape" and node.domain in ("", "ai.onnx") and node.input[0] in g.real_inputs


def _int_attr(node: onnx.NodeProto, name: str, default: int | None) -> int | None:
    return next((a.i for a in node.attribute if a.name == name), default)


def _constant_ints(g: Graph, model: onnx.ModelProto, name: str) -> list[int] | None:
    """The integer values of a Constant node's output or an inline initializer, else None."""
    if not name:
        return None
    if name in g.producer:
        node = g.nodes[g.producer[name]]
        if node.op_type != "Constant":
            return None
        for attr in node.attribute:
            if attr.name == "value":
                return [int(v) for v in numpy_helper.to_array(attr.t).reshape(-1)]
            if attr.name in ("value_int", "value_ints"):
                return [attr.i] if attr.name == "value_int" else list(attr.ints)
        return None
    tensor = next((t for t in model.graph.initializer if t.name == name), None)
    if tensor is None or tensor.data_location == onnx.TensorProto.EXTERNAL:
        return None
    return [int(v) for v in numpy_helper.to_array(tensor).reshape(-1)]


def _takes_first(model: onnx.ModelProto, g: Graph, i: int) -> bool:
    """Whether node `i` keeps only element 0 of the shape vector it reads (Gather 0 or Slice 0:1)."""
    node = g.nodes[i]
    if node.op_type == "Gather" and _int_attr(node, "axis", 0) == 0:
        return _constant_ints(g, model, node.input[1]) == [0]
    if node.op_type == "Slice" and len(node.input) >= 3:  # opset >= 10: starts, ends, axes, steps as inputs
        given = [_constant_ints(g, model, t) if t else None for t in node.input[1:5]]
        given += [None] * (4 - len(given))
        starts, ends, axes, steps = given
        return starts == [0] and ends == [1] and axes in (None, [0]) and steps in (None, [1])
    return False


def _batch_source(g: Graph, meets: Sequence[int], derived: set[str]) -> str | None:
    """The one feature tensor that all the nodes where the value meets the features read, if there is one.

    Reading the batch from it instead cannot make a cycle: a path from the value to it would run
    through a meeting node, which reads it.
    """
    sources = {t for i in meets for t in g.reads[i] if t in g.dependent and t not in derived}
    if len(sources) != 1:
        return None
    (source,) = sources
    return None if source in g.real_inputs else source


def _node_label(g: Graph, i: int) -> str:
    node = g.nodes[i]
    return f"'{node.name}' ({node.op_type})" if node.name else f"{node.op_type} node #{i}"
