"""triton_repo: write a Triton Inference Server model repository that serves a bundle's tail (one model per cut).

The command parses, loads the bundle and calls `model.triton.write_triton_repo`; it prints each model's
name (what tail_node's `triton_model` defaults to) and how to serve the repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from splitcomp_core.bundle import load_bundle
from splitcomp_tools.cli import ToolParser, UsageError, format_table, int_in, run_cli
from splitcomp_tools.model.triton import (
    DEFAULT_QUEUE_DELAY_US,
    MAX_BATCH_LIMIT,
    MAX_QUEUE_DELAY_US,
    PLATFORMS,
    write_triton_repo,
)


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="triton_repo",
        description="Write a Triton Inference Server model repository serving a bundle's tail: config.pbtxt and "
        "version folder 1/ per cut, named as tail_node's triton_model expects by default. Other models in the "
        "repository stay; see docs/triton.md.",
    )
    parser.add_argument("bundle", help="bundle directory written by split or plan --out")
    parser.add_argument("--out", required=True, metavar="REPO", help="model repository directory (made if missing)")
    parser.add_argument(
        "--platform",
        choices=PLATFORMS,
        default="python",
        help="python: ONNX Runtime inside Triton's python backend (CPU, what runs without NVIDIA's container; "
        "default); onnxruntime_onnx or tensorrt_plan: a GPU in NVIDIA's Triton container (a plan is built there "
        "with the build_plan.sh written beside it)",
    )
    parser.add_argument(
        "--max-batch",
        type=int_in(1, MAX_BATCH_LIMIT),
        default=None,
        help="most frames Triton merges into one run (default 16 for a dynamic-batch tail, 1 for a static one, "
        "which refuses more: make one with split --dynamic-batch)",
    )
    parser.add_argument(
        "--queue-delay-us",
        type=int_in(0, MAX_QUEUE_DELAY_US),
        default=DEFAULT_QUEUE_DELAY_US,
        help=f"how long Triton holds a request for others to join its batch (default {DEFAULT_QUEUE_DELAY_US})",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace this bundle's models already in REPO")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if not args.out.strip():
        raise UsageError("--out is empty; name the model repository directory, e.g. --out triton_models")
    bundle = load_bundle(args.bundle)
    models = write_triton_repo(
        bundle,
        args.out,
        platform=args.platform,
        max_batch=args.max_batch,
        queue_delay_us=args.queue_delay_us,
        overwrite=args.overwrite,
    )
    rows = [(m.name, m.cut_id or "-", m.platform, m.max_batch, m.path) for m in models]
    print(format_table(["model", "cut", "platform", "max batch", "folder"], rows, left=(0, 1, 2, 4)))
    repo = Path(args.out)
    if args.platform == "tensorrt_plan":
        print("build each plan on the serving GPU first: " + "; ".join(f"sh {m.path}/build_plan.sh" for m in models))
    print(f"serve: tritonserver --model-repository={repo.resolve()} (tail_node: backend triton, triton_url host:8001)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools triton_repo` and `python -m splitcomp_tools.triton_repo`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
