"""demo: the whole product on one machine, on the shipped demo model, over real DDS.

Splits the demo model where a robot would (see `choose_cut`), calibrates it on generated frames,
starts image_source, head_node and tail_node as separate processes, prints a few results as
`ros2 topic echo splitcomp/classification` would, then a summary against what a robot would
otherwise send: the same frames as JPEG at image_transport's default quality.
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
from splitcomp_core.errors import SplitcompError
from splitcomp_core.preprocess import Preprocessor
from splitcomp_core.runtime import InferenceSession
from splitcomp_ros.echo import message_to_yaml
from splitcomp_ros.images import image_to_array
from splitcomp_ros.messages import stamp_key
from splitcomp_tools.cli import run_cli
from splitcomp_tools.nodes.annotate import write_png
from splitcomp_tools.run.pipeline_run import PipelineRun
from splitcomp_tools.shapes.bundle import DEMO_MODEL, prepare_bundle

JPEG_QUALITY = 95  # image_transport's default


class Reference:
    """The unsplit model on the very frames the camera published, for agreement and JPEG size."""

    def __init__(self, bundle_path: Path) -> None:
        manifest = load_bundle(bundle_path).manifest
        self._session = InferenceSession(DEMO_MODEL, ["cpu"], warmup_runs=1)
        self._preprocess = Preprocessor(manifest.input)
        self._input, self._output = manifest.input.name, manifest.output.name

    def top1(self, image: np.ndarray, encoding: str) -> int:
        return int(np.argmax(self._session.run({self._input: self._preprocess(image, encoding)})[self._output]))

    @staticmethod
    def jpeg_bytes(image: np.ndarray) -> int:
        _ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        return len(data)


def summarize(run: PipelineRun, reference: Reference, wall_s: float) -> dict:
    results = run.seen.results
    latency = np.array([r.latency_ms for r in results])
    feature_bytes = np.array([r.feature_bytes for r in results])
    jpeg, agree, compared = [], 0, 0
    for r in results:
        frame = run.seen.frames.get(stamp_key(r.header))
        if frame is None:
            continue
        image = image_to_array(frame)
        jpeg.append(reference.jpeg_bytes(image))
        compared += 1
        agree += int(reference.top1(image, frame.encoding) == r.results[0].class_id)
    stamps = sorted(r.header.stamp.sec + r.header.stamp.nanosec * 1e-9 for r in results)
    return {
        "frames": len(results),
        "fps": (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0,
        "latency_p50_ms": float(np.percentile(latency, 50)),
        "latency_p95_ms": float(np.percentile(latency, 95)),
        "bytes_per_frame": float(np.median(feature_bytes)),
        "jpeg95_bytes_per_frame": float(np.median(jpeg)) if jpeg else float("nan"),
        "agreement": agree / compared if compared else float("nan"),
        "compared": compared,
        "wall_s": wall_s,
    }


def print_summary(s: dict) -> None:
    ratio = s["jpeg95_bytes_per_frame"] / s["bytes_per_frame"] if s["bytes_per_frame"] else float("nan")
    print("\n== summary")
    print(f"frames classified      {s['frames']} in {s['wall_s']:.1f} s ({s['fps']:.1f} fps)")
    print(f"end-to-end latency     p50 {s['latency_p50_ms']:.1f} ms, p95 {s['latency_p95_ms']:.1f} ms")
    print(
        f"bytes per frame        {s['bytes_per_frame']:.0f} (features) vs {s['jpeg95_bytes_per_frame']:.0f} "
        f"(JPEG q{JPEG_QUALITY} of the same frames): {ratio:.1f}x less"
    )
    print(f"top-1 agreement        {s['agreement']:.1%} with the unsplit model ({s['compared']} frames)")


def save_overlay(msg, path: Path) -> None:
    """The overlay node's latest annotated frame as a PNG, written atomically."""
    image = image_to_array(msg)
    if msg.encoding == "rgb8":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    write_png(path, image)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/demo", help="where the bundle and node logs go (default: out/demo)")
    p.add_argument("--frames", type=int, default=60, help="classifications to collect (default: 60)")
    p.add_argument("--rate", type=float, default=10.0, help="camera frames per second (default: 10)")
    p.add_argument("--show", type=int, default=3, help="results to print as `ros2 topic echo` would (default: 3)")
    p.add_argument("--calibration-frames", type=int, default=200, help="frames to calibrate on (default: 200)")
    p.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds (default: 120)")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.frames < 1:
        raise SplitcompError("--frames must be at least 1")
    out = Path(args.out)
    print(f"== preparing the bundle from {DEMO_MODEL}")
    bundle = prepare_bundle(out / "bundle", args.calibration_frames)
    reference = Reference(bundle)
    print(f"\n== running image_source -> head_node -> tail_node at {args.rate:g} Hz (logs in {out / 'logs'})")

    def echo(msg) -> None:
        if len(run.seen.results) <= args.show:
            print(message_to_yaml(msg))

    run = PipelineRun(bundle, out / "logs", args.rate, on_result=echo, overlay=True)
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
    print_summary(summarize(run, reference, wall))
    if run.seen.overlay is not None:
        save_overlay(run.seen.overlay, out / "overlay.png")
        print(f"overlay image          {out / 'overlay.png'} (what rviz shows on splitcomp/overlay)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
