"""Head and tail as ONNX models: the cut checked, the parts extracted from the model's own nodes and weights."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from splitcomp_core.bundle import DYNAMIC
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.split.spec import SplitError

CUT_DTYPES = ("float32", "float16")  # what the feature codec and the manifest carry


def make_parts(
    full: onnx.ModelProto, g: gr.Graph, cut: Sequence[str], value_infos: Mapping[str, onnx.ValueInfoProto]
) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Head (real input -> cut tensors) and tail (cut tensors -> all outputs), each checked by onnx.checker."""
    head = gr.extract(full, g, list(g.real_inputs), list(cut), value_infos)
    tail = gr.extract(full, g, list(cut), list(g.outputs), value_infos)
    for part, name in ((head, "head"), (tail, "tail")):
        if part.ByteSize() < onnx.checker.MAXIMUM_PROTOBUF:
            try:
                onnx.checker.check_model(part)
            except onnx.checker.ValidationError as exc:
                raise SplitError(f"the extracted {name} is not valid ONNX: {exc}") from exc
    return head, tail


def check_cut(g: gr.Graph, cut: Sequence[str]) -> None:
    """Refuse an invalid cut with the reason and the nearest valid cuts."""
    if len(cut) > gr.MAX_CUT_TENSORS:
        raise SplitError(f"a cut of {len(cut)} tensors is more than the {gr.MAX_CUT_TENSORS} this tool handles")
    problem = gr.cut_problem(g, cut)
    if problem is None:
        return
    valid = gr.find_cuts(g, max(len(cut), 1))
    known = [t for t in cut if t in g.producer]
    if known:
        suggestions = gr.nearest_cuts(g, valid, max(known, key=g.position))
    else:
        by_name = {c[0]: c for c in valid if len(c) == 1}
        close = difflib.get_close_matches(cut[0], list(by_name), n=5, cutoff=0.3) if cut else []
        suggestions = [by_name[n] for n in close] or valid[:5]
    listed = "\n  ".join(", ".join(c) for c in suggestions) or "(none: the model has no valid cut of this size)"
    raise SplitError(f"not a valid cut: {problem}.\nNearest valid cuts:\n  {listed}")


def value_infos(
    model: onnx.ModelProto, g: gr.Graph, cut: Sequence[str], types: Mapping[str, gr.TensorType]
) -> dict[str, onnx.ValueInfoProto]:
    """Types for the parts' inputs and outputs: the measured shapes, a DYNAMIC batch as the input's symbol.

    head.onnx and tail.onnx then declare for the cut what the manifest records, so the bundle's
    checks and the tail's warm-up see the same shapes.
    """
    infos = {v.name: v for v in (*model.graph.input, *model.graph.output)}
    batch = next(v for v in model.graph.input if v.name == g.real_inputs[0]).type.tensor_type.shape.dim[0]
    symbol = batch.dim_param or "batch"
    for t in (*cut, *g.outputs):
        if t in types:
            dims = [symbol if d == DYNAMIC else d for d in types[t].shape]
            elem_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(types[t].dtype))
            infos[t] = onnx.helper.make_tensor_value_info(t, elem_type, dims)
    return infos


def serialised(part: onnx.ModelProto, name: str) -> bytes:
    """The part as one ONNX file's bytes, refused with a reason past protobuf's 2 GiB."""
    if part.ByteSize() >= onnx.checker.MAXIMUM_PROTOBUF:
        raise SplitError(
            f"the {name} is {part.ByteSize() / 2**30:.1f} GiB; a bundle stores each half as one ONNX "
            f"file, which protobuf limits to 2 GiB (cut elsewhere)"
        )
    return part.SerializeToString()
