"""split: cut an ONNX model at named tensors into a verified bundle (`ros2 run splitcomp_tools split`).

The command parses, calls `model.split.split_model` (which proves the cut, extracts head and tail
and verifies them against the model before writing anything) and prints `report.split`'s summary.
"""

from __future__ import annotations

from collections.abc import Sequence

from splitcomp_tools.cli import ToolParser, UsageError, int_in, run_cli
from splitcomp_tools.cli_options import add_model_arguments, preprocessing_from
from splitcomp_tools.model.analyze import analyze_model
from splitcomp_tools.model.cut_choice import MAX_HEAD_FLOPS_SHARE, choose_cut
from splitcomp_tools.model.split import MAX_SAMPLES, split_model
from splitcomp_tools.report.split import split_summary


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="split",
        description="Split an ONNX model at the named cut tensors into a bundle directory (manifest.json, "
        "head.onnx, tail.onnx, labels.json). The split is verified against the full model in ONNX Runtime "
        "before anything is written; list valid cuts with `analyze MODEL.onnx`.",
    )
    parser.add_argument("model", help="the .onnx file to split")
    parser.add_argument(
        "--at",
        required=True,
        action="append",
        metavar="NAME[,NAME...]",
        help="cut tensor name(s), comma-separated; may be repeated (see `analyze MODEL.onnx` for valid cuts); "
        f"`auto`: the smallest single-tensor cut whose head does at most {MAX_HEAD_FLOPS_SHARE * 100:.0f}%% of the FLOPs "
        "(the demo's choice)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="bundle directory to write")
    parser.add_argument(
        "--images", metavar="DIR", help="also verify on the images in DIR (preprocessed as the bundle says)"
    )
    parser.add_argument(
        "--samples", type=int_in(0, MAX_SAMPLES), default=4, help="random inputs to verify on (default 4)"
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--task",
        choices=("classification", "detection"),
        help="what the tail answers (default: what export recorded in the model, else classification); detection "
        "without a recorded decoder uses CenterFace's on the model's four outputs",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if not args.out.strip():
        raise UsageError("--out is empty; name the bundle directory to write, e.g. --out out/bundle")
    cut = [name for value in args.at for name in value.split(",") if name]
    if cut == ["auto"]:
        choice = choose_cut(analyze_model(args.model))
        cut = list(choice.tensors)
        print(f"--at auto: {cut[0]} {choice.shapes[0]}, head {choice.head_flops_share:.0%} of the FLOPs")
    bundle, check = split_model(
        args.model,
        cut,
        args.out,
        preprocessing=preprocessing_from(args),
        labels_path=args.labels,
        images_dir=args.images,
        random_samples=args.samples,
        output_name=args.output,
        output_kind=args.output_kind,
        overwrite=args.overwrite,
        rebase_batch=args.rebase_batch,
        dynamic_batch=args.dynamic_batch,
        task=args.task,
    )
    print(split_summary(bundle, cut, check))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools split` and `python -m splitcomp_tools.split`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
