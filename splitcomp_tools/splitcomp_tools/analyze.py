"""analyze: every place an ONNX model can be split, and what each cut would cost (`ros2 run splitcomp_tools analyze`).

The command parses, calls `model.analyze.analyze_model` and prints what `report.analyze` makes of it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from splitcomp_core.files import atomic_write_bytes
from splitcomp_tools.cli import ToolParser, UsageError, check_outputs, int_in, run_cli
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.analyze import analyze_model
from splitcomp_tools.report.analyze import analysis_json, analysis_plot, analysis_table


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="analyze",
        description="List every valid cut of an ONNX model: the tensors through which every path from the "
        "input to the outputs passes. For each: shape, bytes at fp32 and bit-packed at 2/4/8 bits, and the "
        "share of parameters and FLOPs the head (robot side) would run.",
    )
    parser.add_argument("model", help="the .onnx file (external data next to it is used in place)")
    parser.add_argument("--json", action="store_true", help="print one JSON document (a list of cuts) on stdout")
    parser.add_argument(
        "--max-tensors",
        type=int_in(1, gr.MAX_CUT_TENSORS),
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


def parse_input_shapes(values: Sequence[str]) -> dict[str, list[int]]:
    """`--input-shape` values, "1,3,224,224" (the only input, key "") or "NAME=1,3,224,224", as {name: dims}."""
    shapes = {}
    for value in values:
        name, _, dims = value.rpartition("=")
        try:
            shapes[name] = [int(d) for d in dims.split(",")]
        except ValueError:
            raise UsageError(f"--input-shape {value!r}: expected comma-separated integers like 1,3,224,224") from None
    return shapes


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    check_outputs([("--plot", args.plot)], [Path(args.model)])
    analysis = analyze_model(args.model, args.max_tensors, parse_input_shapes(args.input_shape), args.rebase_batch)
    if args.plot:
        plot = Path(args.plot)
        if not plot.parent.is_dir():
            raise FileNotFoundError(f"{plot}: directory {plot.parent} does not exist")
        atomic_write_bytes(plot, analysis_plot(analysis))
    if args.json:
        print(analysis_json(analysis))
        for note in analysis.notes:
            print(f"note: {note}", file=sys.stderr)
    else:
        print(analysis_table(analysis))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools analyze` and `python -m splitcomp_tools.analyze`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
