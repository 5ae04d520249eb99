"""Every place an ONNX model can be split, and what each cut would cost: the library behind `analyze`.

A user picks a split point by trading the bytes that cross the network against the compute left
on the robot, so each cut is measured with its tensors, shapes, bytes at fp32 and bit-packed at
2/4/8 bits, and the head's share of parameters and FLOPs. Which tensors are cuts is decided in
`graph` (the one place cut logic lives), what a node costs in `costs`; this module measures the
cuts, and `report.analyze` presents them.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from splitcomp_core.codec import packed_size_for
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.costs import nearest_module, node_flops, parameter_sizes, parameters_by_node

PACKED_BITS = (2, 4, 8)


@dataclass
class CutReport:
    """One valid cut with its transfer size and the compute the head would do."""

    tensors: list[str]
    nodes: list[str]
    modules: list[str | None]
    shapes: list[list[int] | None]
    dtypes: list[str | None]
    position: int
    depth: float  # position among the relevant nodes: 0 at the input, 1 at the output
    elements: int | None
    fp32_bytes: int | None
    bytes_2bit: int | None
    bytes_4bit: int | None
    bytes_8bit: int | None
    head_params_share: float
    head_flops_share: float


@dataclass
class Analysis:
    """All cuts of one model, with the totals the shares refer to."""

    model: str
    input_shapes: dict[str, list[int]]
    total_flops: int
    total_params: int
    cuts: list[CutReport]
    notes: list[str] = dataclasses.field(default_factory=list)  # why cuts are missing, what was rewritten


def analyze_model(
    path: str | os.PathLike,
    max_tensors: int = 1,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    rebase_batch: bool = False,
) -> Analysis:
    """Find every cut of up to `max_tensors` tensors and measure it at the given (or declared) input sizes.

    `input_shapes` maps input names to dims; the name "" stands for the model's only input.
    `rebase_batch` first applies `graph.rebase_batch_reads` (what `split --rebase-batch` does).
    """
    model = gr.load_model(path)
    g = gr.build_graph(model)
    shapes = gr.fixed_input_shapes(model, g, _named(input_shapes or {}, g.real_inputs))
    notes = []
    if rebase_batch:
        for read in gr.rebase_batch_reads(path, model, shapes):
            notes.append(f"--rebase-batch: node {read.shape_node} now reads the batch size from '{read.source}'")
        g = gr.build_graph(model)
    notes.extend(shape_read_note(read) for read in gr.input_shape_reads(model, g))
    cuts = gr.find_cuts(g, max_tensors)
    wanted = {t for i in g.relevant for t in (*g.nodes[i].input, *g.nodes[i].output) if t}
    wanted.update(t for cut in cuts for t in cut)
    types = gr.infer_tensor_types(path, model, sorted(wanted), shapes)
    flops = {i: node_flops(g.nodes[i], types) for i in g.relevant}
    params = parameters_by_node(model, g)
    sizes = parameter_sizes(model)
    all_params = set().union(*params.values()) if params else set()
    total_params = sum(sizes[p] for p in all_params)
    total_flops = sum(flops.values())
    reports = []
    for cut in cuts:
        head = gr.head_nodes(g, cut)
        head_params = set().union(*(params[i] for i in head)) if head else set()
        reports.append(
            _report(
                g,
                cut,
                types,
                _share(sum(flops[i] for i in head), total_flops),
                _share(sum(sizes[p] for p in head_params), total_params),
            )
        )
    return Analysis(
        model=str(path),
        input_shapes={k: list(v) for k, v in shapes.items()},
        total_flops=total_flops,
        total_params=total_params,
        cuts=reports,
        notes=notes,
    )


def shape_read_note(read: gr.InputShapeRead) -> str:
    """Why no tensor before `read.meets` is a cut, and what to do about it."""
    why = (
        f"node {read.shape_node} reads the shape of input '{read.input}', and its value meets the features only at "
        f"node {read.meets}: that path bypasses every tensor computed before it, so none of them is a cut"
    )
    if read.source is not None:
        return (
            f"{why}. The model takes its batch size from the input (x.size(0) in a dynamic-batch export, as in "
            f"x.view(x.size(0), -1)); pass --rebase-batch (here and to split) to read it from '{read.source}', which "
            f"that node reads, export with `export --dynamic-batch` (which does that), or export with a static batch"
        )
    return f"{why}. Export the model with a static input size, or compute that size from a later tensor"


def cut_records(analysis: Analysis) -> list[dict[str, Any]]:
    """The cuts as `analyze --json` prints them: one plain dict per cut, every CutReport field."""
    return [dataclasses.asdict(c) for c in analysis.cuts]


def _report(
    g: gr.Graph, cut: gr.Cut, types: Mapping[str, gr.TensorType], flops_share: float, params_share: float
) -> CutReport:
    known = [types.get(t) for t in cut]
    complete = [t for t in known if t is not None]
    elements = None if len(complete) < len(known) else sum(math.prod(t.shape) for t in complete)
    return CutReport(
        tensors=list(cut),
        nodes=[g.nodes[g.producer[t]].name for t in cut],
        modules=[nearest_module(g, t) for t in cut],
        shapes=[None if t is None else list(t.shape) for t in known],
        dtypes=[None if t is None else t.dtype for t in known],
        position=g.cut_position(cut),
        depth=_share(bisect.bisect_right(g.relevant, g.cut_position(cut)), len(g.relevant)),
        elements=elements,
        fp32_bytes=None if elements is None else 4 * elements,
        **{f"bytes_{b}bit": None if elements is None else packed_size_for(elements, b) for b in PACKED_BITS},
        head_params_share=params_share,
        head_flops_share=flops_share,
    )


def _named(shapes: Mapping[str, Sequence[int]], inputs: Sequence[str]) -> dict[str, Sequence[int]]:
    """Resolve the unnamed ("") entry to the model's only input."""
    named = {k: v for k, v in shapes.items() if k}
    if "" in shapes:
        if len(inputs) != 1:
            raise gr.ModelError(f"the model has inputs {list(inputs)}; name one: --input-shape NAME=DIMS")
        named[inputs[0]] = shapes[""]
    return named


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0
