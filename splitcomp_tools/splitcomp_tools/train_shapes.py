"""train_shapes: train the shipped toy model on generated shapes and write it (shapes/train.py).

python -m splitcomp_tools.train_shapes --out splitcomp_tools/models/shapes --overwrite
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from splitcomp_tools.cli import ToolParser, float_in, int_in, run_cli
from splitcomp_tools.shapes.train import train_and_write


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="train_shapes",
        description="Train the demo ShapesResNet on generated shapes; write model.onnx, labels.json, training.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the training images")
    parser.add_argument("--heldout-seed", type=int, default=1_000_003, help="seed of the held-out images")
    parser.add_argument(
        "--heldout-images", type=int_in(1, 100_000), default=1200, help="held-out images for the accuracy check"
    )
    parser.add_argument("--epochs", type=int_in(1, 1000), default=12, help="epochs; each sees freshly generated images")
    parser.add_argument("--steps-per-epoch", type=int_in(1, 100_000), default=90, help="optimizer steps per epoch")
    parser.add_argument("--batch-size", type=int_in(1, 4096), default=64, help="images per step")
    parser.add_argument(
        "--lr",
        type=float_in(0.0, 10.0, low_open=True),
        default=4e-3,
        help="peak learning rate of the one-cycle schedule",
    )
    parser.add_argument("--weight-decay", type=float_in(0.0, 1.0), default=5e-4, help="AdamW weight decay")
    parser.add_argument("--threads", type=int_in(1, 256), default=2, help="torch and ONNX Runtime threads")
    parser.add_argument(
        "--min-accuracy",
        type=float_in(0.0, 1.0),
        default=0.95,
        help="refuse to write a model whose held-out accuracy (ONNX Runtime) is lower",
    )
    return parser


def _main(argv: Sequence[str] | None) -> int:
    out, summary, train_seconds = train_and_write(build_parser().parse_args(argv))
    print(
        f"held-out accuracy {summary['heldout_accuracy_onnxruntime']:.4f} (ONNX Runtime), "
        f"trained in {train_seconds:.0f} s; wrote {out}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
