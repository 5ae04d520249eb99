"""What the demo measured: latency, rate and bytes from the results, agreement with the unsplit model and
the JPEG a robot would otherwise send, from the frames those results answer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_ros.images import image_to_array
from splitcomp_ros.messages import stamp_key
from splitcomp_tools.cli import format_table
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE, measure
from splitcomp_tools.model.baseline import FULL_FRAME, FULL_SIZE_QUALITY, MODEL_SIZE, JpegBaseline
from splitcomp_tools.model.encodings import Result
from splitcomp_tools.report import agreement
from splitcomp_tools.run.pipeline_run import PipelineRun


def _published(answers: list[dict[int, float]], classes: int) -> np.ndarray:
    """The tail's published top-k as score rows (the other classes 0): enough for top-1 and top-5 agreement."""
    rows = np.zeros((len(answers), classes))
    for row, answer in zip(rows, answers):
        for class_id, probability in answer.items():
            if 0 <= class_id < classes:
                row[class_id] = probability
    return rows


def summarize(run: PipelineRun, bundle_path: Path, wall_s: float, confidence: float = DEFAULT_CONFIDENCE) -> dict:
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
    classes = 0
    for r in results:
        frame = run.seen.frames.get(stamp_key(r.header))
        if frame is None:
            continue
        image = image_to_array(frame)
        rgb = image if frame.encoding == "rgb8" else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        features = head.features(rgb, "rgb8")[0]
        reference.append(tail.probabilities({n: a[np.newaxis] for n, a in features.items()})[0])
        classes = len(reference[-1])
        answers.append({c.class_id: float(c.score) for c in r.results})
        jpeg.add(rgb)
    stats = measure(np.stack(reference), _published(answers, classes), confidence) if reference else None
    stamps = sorted(r.header.stamp.sec + r.header.stamp.nanosec * 1e-9 for r in results)
    return {
        "frames": len(results),
        "fps": (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0,
        "latency_p50_ms": float(np.percentile(latency, 50)),
        "latency_p95_ms": float(np.percentile(latency, 95)),
        "bytes_per_frame": float(np.median(feature_bytes)),
        "agreement": stats.rate if stats else float("nan"),
        "stats": stats,
        "confidence": confidence,
        "compared": len(reference),
        "jpeg": {(j.method, j.quality): j for j in jpeg.results(np.stack(reference), confidence)} if reference else {},
        "wall_s": wall_s,
    }


def summary_lines(s: dict, choice: Result | None) -> list[str]:
    """What the demo prints after its run: throughput, the encoder, latency, bytes against JPEG, agreement."""
    lines = ["", "== summary"]
    lines.append(f"frames classified      {s['frames']} in {s['wall_s']:.1f} s ({s['fps']:.1f} fps)")
    if choice is not None:
        low = choice.stats.confident_interval()[0] if choice.stats else 0.0
        lines.append(
            f"encoder                {choice.method} at {choice.bits} bits, codec {choice.codec} (chosen from the "
            f"table by the rule: {100 * low:.1f} % lower bound on confident held-out frames, "
            f"{100 * choice.agreement:.1f} % on all)"
        )
    lines.append(f"end-to-end latency     p50 {s['latency_p50_ms']:.1f} ms, p95 {s['latency_p95_ms']:.1f} ms")
    full = s["jpeg"].get((FULL_FRAME, FULL_SIZE_QUALITY))
    if full is not None and s["bytes_per_frame"]:
        lines.append(
            f"bytes per frame        {s['bytes_per_frame']:,.0f} (features) vs {full.bytes_per_frame:,.0f} "
            f"(JPEG q{FULL_SIZE_QUALITY} of the camera frame): {full.bytes_per_frame / s['bytes_per_frame']:.1f}x less"
        )
    if not s["compared"]:
        lines.append(
            "top-1 agreement        not measured: the probe received none of the classified frames (best effort)"
        )
        return lines
    stats = s["stats"]
    lines.append(f"top-1 agreement        {s['agreement']:.1%} with the unsplit model ({s['compared']} frames)")
    lines.append(f"on these frames        {agreement.legend(s['confidence'], stats)}")
    rows = [["split features", *agreement.cells(stats)]]
    if full is not None:
        rows.append([f"JPEG q{full.quality} of camera frame", *agreement.cells(full.stats)])
    lines.extend("  " + line for line in format_table(["", *agreement.HEADER], rows).splitlines())
    small = [j for (method, _), j in sorted(s["jpeg"].items()) if method == MODEL_SIZE]
    if small:
        cells = ", ".join(f"q{j.quality} {j.bytes_per_frame:,.0f} B {j.agreement:.0%}" for j in small)
        lines.append(f"JPEG at model size     {cells} (bytes, agreement on the same frames)")
    if full is not None:
        lines.append(f"JPEG of camera frame   q{full.quality} {full.bytes_per_frame:,.0f} B {full.agreement:.0%}")
    return lines
