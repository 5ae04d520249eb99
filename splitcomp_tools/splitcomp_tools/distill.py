"""distill: train a bottleneck at a bundle's cut (encoder on the robot, decoder on the edge, entropy-coded symbols)
by distillation from the unsplit model, and write it as a bundle (the work is splitcomp_tools.model.distill's).

ros2 run splitcomp_tools distill out/lite0_b7 --out out/lite0_b7_distilled
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from splitcomp_core.bundle import HEAD_FILE, MANIFEST_FILE, TAIL_FILE
from splitcomp_tools.cli import ToolParser, UsageError, check_outputs, float_in, int_in, progress_bars, run_cli
from splitcomp_tools.frames.registry import open_source
from splitcomp_tools.model.calibrate import shared_scenes
from splitcomp_tools.model.distill import build, judge
from splitcomp_tools.model.distill.training import Settings
from splitcomp_tools.report.distill import curve_json, curve_table

DEFAULTS = Settings()
SWEEP_CHANNELS = (12, 24, 48)
SWEEP_LAMBDAS = (0.03, 0.3)
MAX_FRAMES = 20_000


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="distill",
        description="Train a learned bottleneck at a bundle's one cut tensor (head and tail frozen; unlabeled "
        "frames; loss = KL of the tail's answer to the unsplit model's + weight * relative MSE at the cut + "
        "lambda * kilobytes per frame) and write a bundle whose head emits entropy-coded symbols and whose tail decodes them. Prints "
        "the training time, the encoder's share of the head's FLOPs and time, and bytes per frame against "
        "agreement with the unsplit model on held-out frames.",
    )
    parser.add_argument("bundle", help="a single-cut bundle written by split (its tail must have a gradient route)")
    parser.add_argument("--out", type=Path, required=True, help="the distilled bundle (with --sweep: a folder of them)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument(
        "--train-images", default="corpus:train,photos:train", help="unlabeled training frames (a comma list)"
    )
    parser.add_argument(
        "--train-count", type=int_in(1, MAX_FRAMES), default=600, help="frames of each training source (crops)"
    )
    parser.add_argument(
        "--eval-images",
        default="corpus:test,photos:test",
        help="held-out frames the curve is judged on (must share no scene with --train-images)",
    )
    parser.add_argument("--eval-count", type=int_in(1, MAX_FRAMES), default=100, help="frames of each eval source")
    parser.add_argument("--channels", type=int_in(1, 1024), default=DEFAULTS.channels, help="symbol channels")
    parser.add_argument("--lambda", dest="lam", type=float_in(0.0, 1e6), default=DEFAULTS.lam, help="loss per KB")
    parser.add_argument(
        "--mse-weight",
        type=float_in(0.0, 1e6),
        default=DEFAULTS.mse_weight,
        help="weight of the relative MSE at the cut, which keeps decoded tensors like real ones",
    )
    parser.add_argument("--bits", type=int_in(1, 8), default=DEFAULTS.bits, help="symbols are 0 .. 2**bits - 1")
    parser.add_argument(
        "--warmup-epochs", type=int_in(0, 10_000), default=DEFAULTS.warmup_epochs, help="epochs of MSE + rate only"
    )
    parser.add_argument("--epochs", type=int_in(0, 10_000), default=DEFAULTS.epochs, help="epochs with the KL term")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="one bundle per --sweep-channels x --sweep-lambdas setting under --out, and curve.json",
    )
    grids = (("channels", int, 1, 1024, SWEEP_CHANNELS), ("lambdas", float, 0, 1e6, SWEEP_LAMBDAS))
    for name, kind, low, high, default in grids:
        parser.add_argument(
            f"--sweep-{name}",
            type=_list(kind, low, high),
            default=default,
            metavar="LIST",
            help=f"{name} of the sweep, a comma list (default {','.join(map(str, default))})",
        )
    parser.add_argument("--seed", type=int, default=0, help="seed of the crops and the weights (eval: seed + 1)")
    parser.add_argument("--threads", type=int_in(1, 256), default=2, help="torch and ONNX Runtime threads")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    check_outputs([("--out", args.out)], [Path(args.bundle) / n for n in (MANIFEST_FILE, HEAD_FILE, TAIL_FILE)])
    if args.out.exists() and not args.overwrite:
        raise UsageError(f"--out {args.out}: already exists; choose another folder or pass --overwrite")
    shared = shared_scenes(args.train_images, args.eval_images)
    if shared:
        raise UsageError(f"--eval-images {', '.join(shared)} shows training scenes; judge on held-out frames only")
    torch.set_num_threads(args.threads)
    bundle = build.load(args.bundle)
    start = time.perf_counter()
    train_frames = _frames(args.train_images, args.train_count, args.seed)
    data, route = build.training_data(bundle, train_frames, args.threads)
    del train_frames
    features_seconds = time.perf_counter() - start
    eval_frames = _frames(args.eval_images, args.eval_count, args.seed + 1)
    reference = judge.unsplit(bundle, eval_frames)
    channels, lambdas = (args.sweep_channels, args.sweep_lambdas) if args.sweep else ((args.channels,), (args.lam,))
    settings = [
        Settings(c, lam, args.bits, args.warmup_epochs, args.epochs, seed=args.seed, mse_weight=args.mse_weight)
        for c in channels
        for lam in lambdas
    ]
    training = {"images": args.train_images, "count": len(data.features), "seed": args.seed}
    judged = {"images": args.eval_images, "count": len(eval_frames), "seed": args.seed + 1}
    with progress_bars(not args.quiet and sys.stderr.isatty()) as bars:
        results = build.distill(
            bundle,
            data,
            route,
            settings,
            args.out,
            args.overwrite,
            bars,
            judge=lambda path: judge.judge(path, eval_frames, reference),
            curve=lambda made: curve_json(made, training, judged),
            training_images=args.train_images,
        )
    total = time.perf_counter() - start
    spec = bundle.manifest.input
    original_ms, distilled_ms = build.head_times(
        bundle.head_path, results[0][0].path / HEAD_FILE, (spec.name, spec.shape), args.threads
    )
    print(curve_table(results))
    print(
        f"trained on {training['count']} frames of {args.train_images} (head features: {features_seconds:.0f} s), "
        f"judged on {judged['count']} held-out frames of {args.eval_images}; {total:.0f} s in all"
    )
    print(
        f"head: {original_ms:.2f} ms without, {distilled_ms:.2f} ms with the encoder of {results[0][0].settings.name} "
        f"(median of {build.TIMING_RUNS}, ONNX Runtime CPU, {args.threads} threads)"
    )
    print(f"wrote {args.out}" + (f" ({len(results)} bundles and {build.CURVE_FILE})" if args.sweep else ""))
    return 0


def _list(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            values = tuple(kind(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise UsageError(f"expected a comma list of numbers, got {text!r}") from None
        if not values or len(set(values)) != len(values) or any(not low <= v <= high for v in values):
            raise UsageError(f"expected distinct numbers in {low:g}..{high:g}, got {text!r}")
        return values

    return parse


def _frames(spec: str, count: int, seed: int) -> list:
    source = open_source(spec, seed=seed)
    try:
        return list(source.frames(count))  # `count` from each source of a comma list
    finally:
        source.close()


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
