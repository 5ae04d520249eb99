"""How `analyze` shows an Analysis: the cut table, the JSON list of cuts, and the plot of bytes per cut."""

from __future__ import annotations

import io
import json
from pathlib import Path

from matplotlib.figure import Figure

from splitcomp_tools.cli import format_table
from splitcomp_tools.model.analyze import Analysis, cut_records

_HEADER = ("#", "tensor", "shape", "fp32 B", "8-bit B", "4-bit B", "2-bit B", "head params", "head FLOPs", "module")
_NAMES = (1, 2, 9)  # left-aligned columns; the figures are right-aligned


def analysis_table(analysis: Analysis) -> str:
    """Summary line, then one row per cut tensor (multi-tensor cuts span several rows), then the notes."""
    notes = [f"note: {n}" for n in analysis.notes]
    if not analysis.cuts:
        reason = (
            "; models whose skip connections span the whole network may have cuts of several tensors "
            "(try --max-tensors 2 or 3)"
            if not analysis.notes
            else ""
        )
        return "\n".join([f"{analysis.model}: no valid cut found{reason}", *notes])
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
    inputs = ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in analysis.input_shapes.items())
    summary = (
        f"{analysis.model}: {len(analysis.cuts)} cuts at input {inputs}; "
        f"{analysis.total_params:,} parameters, {analysis.total_flops:,} FLOPs"
    )
    return "\n".join([summary, format_table(_HEADER, rows, left=_NAMES), *notes])


def analysis_json(analysis: Analysis) -> str:
    """The cuts as one JSON document (a list, every CutReport field), what `analyze --json` prints."""
    return json.dumps(cut_records(analysis), indent=2)


def analysis_plot(analysis: Analysis) -> bytes:
    """PNG of bytes per cut against depth, at fp32 and bit-packed, multi-tensor cuts marked."""
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
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    return png.getvalue()


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"
