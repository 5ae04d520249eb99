"""plan: where to cut a model, at how many bits, for which link (the method: splitcomp_tools.model.plan)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from splitcomp_core.files import atomic_write_bytes, atomic_write_text
from splitcomp_core.link import MESSAGE_FRAMING_BYTES
from splitcomp_tools.cli import ToolParser, UsageError, check_outputs, run_cli
from splitcomp_tools.cli_options import add_model_arguments, add_video_codecs, preprocessing_from
from splitcomp_tools.model import plan as planning
from splitcomp_tools.model.candidates import ModelOptions
from splitcomp_tools.model.devices import TIMING_FRAMES, TIMING_RATE_HZ, profile_device
from splitcomp_tools.model.latency import DEFAULT_OVERHEAD_MS, Link, key
from splitcomp_tools.report.agreement import RULE_HELP
from splitcomp_tools.report.plan import format_table, plot_png
from splitcomp_tools.run import deployed


def build_parser() -> ToolParser:
    parser = ToolParser(prog="plan", description=planning.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("model", help="the .onnx file to plan for")
    add("--images", help="frames the agreement is measured on: photos:test, generator, a folder, a video, a rosbag2")
    add("--calibration-images", help="frames the ranges are found on, e.g. photos:train (default: --images)")
    add(
        "--count",
        type=int,
        default=planning.DEFAULT_COUNT,
        help=f"frames per candidate (default {planning.DEFAULT_COUNT})",
    )
    add(
        "--agreement",
        type=float,
        default=planning.DEFAULT_AGREEMENT,
        metavar="FRACTION",
        help=f"per candidate, {RULE_HELP} (default {planning.DEFAULT_AGREEMENT})",
    )
    confident = "a judged frame is confident where the unsplit model's top-1 probability is >= P (default 0.5); "
    confident += "for a detector, an unsplit box is confident where its score is >= P (default 0.8)"
    add("--confidence", type=float, default=None, metavar="P", help=confident)
    default_bandwidths = ",".join(key(b) for b in planning.DEFAULT_BANDWIDTHS)
    add(
        "--bandwidths",
        default=default_bandwidths,
        help="link rates in Mbit/s to predict for (default 1.1,5.85,18.88,100)",
    )
    add("--robot-profile", metavar="F", help="robot times from `plan --profile-device F` run there")
    add("--edge-profile", metavar="F", help="edge times from `plan --profile-device F` run there")
    slowdown = "multiply the robot's times by K: a robot K times slower than its profile (or this machine), when no "
    slowdown += "profile measured on the real robot exists yet; the output says so (default 1)"
    add("--robot-slowdown", type=float, default=1.0, metavar="K", help=slowdown)
    overhead = f"fixed transport overhead (default {DEFAULT_OVERHEAD_MS}: measured by bench pipeline --link)"
    add("--overhead-ms", type=float, default=DEFAULT_OVERHEAD_MS, help=overhead)
    burst = "bytes of a message a token-bucket link lets through at once (the test bed's tbf: 1600; a serial "
    add("--link-burst", type=float, default=0.0, metavar="BYTES", help=burst + "link: 0, the default)")
    framing = "bytes a features message carries beyond its payload, before the IP and Ethernet headers of each packet "
    framing += f"(default {MESSAGE_FRAMING_BYTES}: SplitFeatures' other fields, RTPS and UDP; 0: the payload alone)"
    add("--link-framing", type=float, default=MESSAGE_FRAMING_BYTES, metavar="BYTES", help=framing)
    add("--json", metavar="F", help="write the plan as JSON")
    add("--plot", metavar="F", help="write a PNG of predicted latency against bandwidth")
    add("--out", metavar="BUNDLE", help="write a multi-cut bundle of the cuts that win")
    add("--overwrite", action="store_true", help="replace an existing bundle at --out")
    add("--work", metavar="DIR", help="keep each candidate's bundle here (default: a temporary folder)")
    profile = "instead of planning: time every candidate's head and tail on this machine and write a device profile"
    add("--profile-device", metavar="OUT", help=profile)
    add("--providers", default="cuda,cpu", help="--profile-device: ONNX Runtime providers (cuda,cpu)")
    add("--threads", type=int, default=0, help="--profile-device: intra-op threads (0: default)")
    add("--timing-frames", type=int, default=TIMING_FRAMES, help=f"frames to time on (default {TIMING_FRAMES})")
    rate = f"frames per second while timing, as the camera sends them (default {TIMING_RATE_HZ:g}; 0: back to back)"
    add("--timing-rate", type=float, default=TIMING_RATE_HZ, help=rate)
    add("--seed", type=int, default=0, help="seed of the generator")
    add("--quiet", action="store_true", help="no progress lines")
    deployed.add_arguments(parser)
    add_model_arguments(parser)
    add_video_codecs(parser)
    return parser


def _bandwidths(text: str) -> list[float]:
    try:
        return sorted({float(v) for v in text.split(",") if v.strip()})
    except ValueError:
        example = "e.g. 1.1,5.85,18.88,100"
        raise UsageError(f"--bandwidths must be numbers separated by commas, {example}; got {text!r}") from None


def _say(text: str) -> None:
    print(f"[plan] {text}", file=sys.stderr, flush=True)


def _profile(args: argparse.Namespace, work: Path, options: ModelOptions) -> None:
    providers = [p for p in args.providers.split(",") if p]
    threads, images = args.threads or None, args.images or "generator"
    profile = profile_device(
        args.model, work, images, providers, threads, args.timing_frames, options, args.timing_rate
    )
    atomic_write_text(args.profile_device, json.dumps(profile, indent=1) + "\n")
    print(f"wrote {args.profile_device}: {len(profile['candidates'])} candidates timed on {profile['host']}")


def _plan(args: argparse.Namespace, work: Path, options: ModelOptions) -> None:
    if not args.images:
        raise UsageError("--images is required to plan (frames like the robot's camera sends)")
    bandwidths = _bandwidths(args.bandwidths)
    settings = deployed.settings_from(args, args.timing_rate)
    measure = None
    if args.deployed:
        mbps = args.deployed_link or max(bandwidths)
        measure = deployed.deployed_measure(args.loopback, mbps, settings, work / "deployed")
    plan = planning.make_plan(
        args.model,
        args.images,
        work,
        options,
        count=args.count,
        agreement=args.agreement,
        bandwidths=bandwidths,
        robot_profile=args.robot_profile,
        edge_profile=args.edge_profile,
        link=Link(args.overhead_ms, args.link_burst, framing_bytes=args.link_framing),
        timing_frames=args.timing_frames,
        timing_rate=args.timing_rate,
        seed=args.seed,
        calibration_images=args.calibration_images,
        robot_slowdown=args.robot_slowdown,
        say=None if args.quiet else _say,
        confidence=args.confidence,
        video_codecs=args.video_codecs,
        deployed=measure,
    )
    if args.refine is not None:
        planning.refine_plan(plan, deployed.refine_measure(settings, work / "refine"), args.refine)
    if args.out:
        written = planning.write_bundle_of_winners(plan, args.out, overwrite=args.overwrite)
        print(f"wrote {written.path}: cuts {', '.join(c.cut_id for c in written.cuts)}", file=sys.stderr)
    if args.json:
        atomic_write_text(args.json, json.dumps(plan.to_json(with_bundles=bool(args.work)), indent=1) + "\n")
    if args.plot:
        atomic_write_bytes(args.plot, plot_png(plan))
    print(format_table(plan))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    outputs = [("--json", args.json), ("--plot", args.plot), ("--profile-device", args.profile_device)]
    check_outputs(outputs, [Path(args.model)], files=True)
    if args.out and Path(args.out).exists() and not args.overwrite:
        raise UsageError(f"--out {args.out}: already exists; choose another folder or pass --overwrite")
    deployed.settings_from(args, args.timing_rate)  # the runs' options checked before anything is made
    args.loopback = deployed.where_to_run(args.deployed) if args.deployed else None  # None: on the bed
    if args.refine is not None:
        deployed.check_refine(args.refine, args.deployed)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="splitcomp-plan-"))
    work.mkdir(parents=True, exist_ok=True)
    options = ModelOptions(
        preprocessing_from(args), args.labels, args.output, args.output_kind, args.rebase_batch, args.dynamic_batch
    )
    try:
        (_profile if args.profile_device else _plan)(args, work, options)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools plan`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
