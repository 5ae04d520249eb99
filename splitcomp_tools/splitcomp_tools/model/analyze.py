"""analyze: every place an ONNX model can be split, and what each cut would cost.

A user picks a split point by trading the bytes that cross the network against the compute left
on the robot, so each cut is listed with its tensors, shapes, bytes at fp32 and bit-packed at
2/4/8 bits, and the head's share of parameters and FLOPs. Which tensors are cuts is decided in
`graph` (the one place cut logic lives); this module measures and presents them.
"""

from __future__ import annotations

import argparse
import ast
import bisect
import dataclasses
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from matplotlib.figure import Figure

from splitcomp_core.codec import packed_size_for
from splitcomp_core.files import atomic_write
from splitcomp_tools.cli import run_cli
from splitcomp_tools.model import graph as gr

PACKED_BITS = (2, 4, 8)
_MODULE_WALK_LIMIT = 32  # ancestors to try before giving up on finding a recorded PyTorch module


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
    params = _parameters_by_node(model, g)
    sizes = _parameter_sizes(model)
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


def node_flops(node: onnx.NodeProto, types: Mapping[str, gr.TensorType]) -> int:
    """Estimated floating-point operations of one node (a multiply-add counts 2).

    Convolutions and matrix products are counted exactly from their shapes; every other node
    counts one operation per output element.
    """

    def shape(k: int) -> tuple[int, ...] | None:
        if k >= len(node.input) or not node.input[k] or node.input[k] not in types:
            return None
        return types[node.input[k]].shape

    out = sum(math.prod(types[t].shape) for t in node.output if t in types)
    has_bias = len(node.input) > 2 and bool(node.input[2])
    op = node.op_type
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        weight = shape(3 if op == "QLinearConv" else 1)
        return 2 * out * math.prod(weight[1:]) + (out if has_bias and op == "Conv" else 0) if weight else out
    if op == "ConvTranspose":
        x, weight = shape(0), shape(1)
        return 2 * math.prod(x) * math.prod(weight[1:]) + (out if has_bias else 0) if x and weight else out
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        a = shape(0)
        return 2 * out * a[-1] if a else out
    if op == "Gemm":
        a = shape(0)
        if not a:
            return out
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        return 2 * out * (a[0] if trans_a else a[1]) + (out if has_bias else 0)
    return out


def module_name(node: onnx.NodeProto) -> str | None:
    """The PyTorch module a node was exported from, if the exporter recorded one.

    The dynamo exporter stores the scope list in metadata_props["pkg.torch.onnx.name_scopes"]
    (last entry: the op itself); the TorchScript exporter names nodes "/layer1/layer1.0/conv1/Conv",
    where a scope is either a full dotted path or a child of the previous one.
    """
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = [s for s in ast.literal_eval(prop.value)[:-1] if s]
            except (ValueError, SyntaxError):
                return None
            return scopes[-1] if scopes else None
    parts = node.name.split("/")
    if not node.name.startswith("/") or len(parts) < 3:
        return None
    path = ""
    for scope in parts[1:-1]:
        path = scope if not path or scope.startswith(path + ".") else f"{path}.{scope}"
    return path or None


def cut_records(analysis: Analysis) -> list[dict[str, Any]]:
    """The cuts as `analyze --json` prints them: one plain dict per cut, every CutReport field."""
    return [dataclasses.asdict(c) for c in analysis.cuts]


def format_table(analysis: Analysis) -> str:
    """Human-readable table, one row per cut tensor (multi-tensor cuts span several rows)."""
    notes = [f"note: {n}" for n in analysis.notes]
    if not analysis.cuts:
        reason = (
            "; models whose skip connections span the whole network may have cuts of several tensors "
            "(try --max-tensors 2 or 3)"
            if not analysis.notes
            else ""
        )
        return "\n".join([f"{analysis.model}: no valid cut found{reason}", *notes])
    header = ("#", "tensor", "shape", "fp32 B", "8-bit B", "4-bit B", "2-bit B", "head params", "head FLOPs", "module")
    rows = []
    for k, c in enumerate(analysis.cuts, 1):
        for j, tensor in enumerate(c.tensors):
            first = j == 0
            dims = c.shapes[j]
            shape = "?" if dims is None else "x".join(map(str, dims))
            rows.append(
                (
                    str(k) if first else "",
                    tensor,
                    shape if c.dtypes[j] in ("float32", None) else f"{shape} {c.dtypes[j]}",
                    *(_count(v) if first else "" for v in (c.fp32_bytes, c.bytes_8bit, c.bytes_4bit, c.bytes_2bit)),
                    f"{100 * c.head_params_share:.1f}%" if first else "",
                    f"{100 * c.head_flops_share:.1f}%" if first else "",
                    c.modules[j] or "",
                )
            )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    right = {0, 3, 4, 5, 6, 7, 8}
    lines = [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in (header, *rows)
    ]
    inputs = ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in analysis.input_shapes.items())
    summary = (
        f"{analysis.model}: {len(analysis.cuts)} cuts at input {inputs}; "
        f"{analysis.total_params:,} parameters, {analysis.total_flops:,} FLOPs"
    )
    return "\n".join([summary, *lines, *notes])


def write_plot(analysis: Analysis, out: str | os.PathLike) -> None:
    """PNG of bytes per cut against depth, written atomically (temp file beside it, then rename)."""
    out = Path(out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out}: directory {out.parent} does not exist")
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.add_subplot()
    cuts = [c for c in analysis.cuts if c.fp32_bytes is not None]
    depth = [c.depth for c in cuts]
    for label, key, style in (
        ("fp32", "fp32_bytes", "o-"),
        ("8-bit", "bytes_8bit", "s--"),
        ("4-bit", "bytes_4bit", "^--"),
        ("2-bit", "bytes_2bit", "v:"),
    ):
        ax.plot(depth, [getattr(c, key) for c in cuts], style, label=label, markersize=4)
    multi = [c for c in cuts if len(c.tensors) > 1]
    if multi:
        multi_bytes = [c.fp32_bytes for c in multi if c.fp32_bytes is not None]  # all: `cuts` has no None
        ax.plot([c.depth for c in multi], multi_bytes, "kx", label="multi-tensor cut")
    ax.set_yscale("log")
    ax.set_xlabel("cut depth (share of the graph's nodes in the head)")
    ax.set_ylabel("bytes sent per frame")
    ax.set_title(Path(analysis.model).name)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def parse_input_shapes(values: Sequence[str]) -> dict[str, list[int]]:
    """`--input-shape` values, "1,3,224,224" (the only input, key "") or "NAME=1,3,224,224", as {name: dims}."""
    shapes = {}
    for value in values:
        name, _, dims = value.rpartition("=")
        try:
            shapes[name] = [int(d) for d in dims.split(",")]
        except ValueError:
            raise gr.ModelError(
                f"--input-shape {value!r}: expected comma-separated integers like 1,3,224,224"
            ) from None
    return shapes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analyze",
        description="List every valid cut of an ONNX model: the tensors through which every path from the "
        "input to the outputs passes. For each: shape, bytes at fp32 and bit-packed at 2/4/8 bits, and the "
        "share of parameters and FLOPs the head (robot side) would run.",
    )
    parser.add_argument("model", help="the .onnx file (external data next to it is used in place)")
    parser.add_argument("--json", action="store_true", help="print one JSON document (a list of cuts) on stdout")
    parser.add_argument(
        "--max-tensors",
        type=int,
        default=1,
        metavar="K",
        help=f"also list minimal cuts of up to K tensors (1-{gr.MAX_CUT_TENSORS}), for models whose skip "
        "connections leave no single-tensor cut in a region (default 1)",
    )
    parser.add_argument("--plot", metavar="FILE", help="write a PNG of bytes per cut against depth")
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="[NAME=]DIMS",
        help="input size to measure at, e.g. 1,3,224,224 (default: the declared shape, dynamic batch as 1)",
    )
    parser.add_argument(
        "--rebase-batch",
        action="store_true",
        help="when the model reads its batch size from the input (x.view(x.size(0), -1)), which bypasses every "
        "tensor before that view, read it from the tensor the view reshapes instead, once measured to have the same "
        "dim 0 (split --rebase-batch makes the same change)",
    )
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    analysis = analyze_model(args.model, args.max_tensors, parse_input_shapes(args.input_shape), args.rebase_batch)
    if args.plot:
        write_plot(analysis, args.plot)
    if args.json:
        print(json.dumps(cut_records(analysis), indent=2))
        for note in analysis.notes:
            print(f"note: {note}", file=sys.stderr)
    else:
        print(format_table(analysis))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools analyze`."""
    return run_cli(_main, argv)


def _report(
    g: gr.Graph, cut: gr.Cut, types: Mapping[str, gr.TensorType], flops_share: float, params_share: float
) -> CutReport:
    known = [types.get(t) for t in cut]
    complete = [t for t in known if t is not None]
    elements = None if len(complete) < len(known) else sum(math.prod(t.shape) for t in complete)
    return CutReport(
        tensors=list(cut),
        nodes=[g.nodes[g.producer[t]].name for t in cut],
        modules=[_nearest_module(g, t) for t in cut],
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


def _nearest_module(g: gr.Graph, tensor: str) -> str | None:
    """Module of the tensor's producer, else of the closest ancestor along first dependent inputs."""
    for _ in range(_MODULE_WALK_LIMIT):
        if tensor not in g.producer:
            return None
        i = g.producer[tensor]
        name = module_name(g.nodes[i])
        if name:
            return name
        tensor = next((t for t in g.reads[i] if t in g.dependent), "")
    return None


def _parameter_sizes(model: onnx.ModelProto) -> dict[str, int]:
    """Element count of every weight: initializers and the values of Constant nodes."""
    sizes = {t.name: math.prod(t.dims) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    sizes[node.output[0]] = math.prod(attr.t.dims)
                elif attr.type in (onnx.AttributeProto.FLOATS, onnx.AttributeProto.INTS):
                    sizes[node.output[0]] = len(attr.floats) + len(attr.ints)
                else:
                    sizes[node.output[0]] = 1
    return sizes


def _parameters_by_node(model: onnx.ModelProto, g: gr.Graph) -> dict[int, frozenset[str]]:
    """For each relevant node, the weights it uses directly or through a constant subgraph."""
    sizes = _parameter_sizes(model)
    origin: dict[str, frozenset[str]] = {t: frozenset({t}) for t in sizes}
    for i, reads in enumerate(g.reads):
        if g.dependent.isdisjoint(g.writes[i]):
            found = frozenset().union(*(origin.get(t, frozenset()) for t in reads))
            for t in g.writes[i]:
                origin[t] = origin.get(t, frozenset()) | found
    return {
        i: frozenset().union(*(origin.get(t, frozenset()) for t in g.reads[i] if t not in g.dependent))
        for i in g.relevant
    }


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


if __name__ == "__main__":
    sys.exit(main())
