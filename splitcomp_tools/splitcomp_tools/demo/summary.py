"""What the demo measured: latency, rate and bytes from the results, agreement with the unsplit model and
the JPEG a robot would otherwise send, from the frames those results answer.

Agreement follows the bundle's task (model/answers.py): a classifier's published top-k against the unsplit
probabilities, a detector's published boxes against the unsplit boxes (F1, recall of confident boxes, mean IoU).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.detection import Detection
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_ros.images import image_to_array
from splitcomp_ros.messages import stamp_key
from splitcomp_tools.cli import format_table
from splitcomp_tools.model import answers
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


def _published_boxes(msg, frame, input_size: tuple[int, int]) -> list[Detection]:
    """A Detections message's boxes (camera pixels) in the model input's pixels, where the unsplit boxes are
    (a per-axis scale leaves IoU unchanged)."""
    sx, sy = input_size[0] / frame.width, input_size[1] / frame.height
    return [
        Detection(d.class_id, d.label, d.score, d.x * sx, d.y * sy, d.width * sx, d.height * sy) for d in msg.detections
    ]


def summarize(run: PipelineRun, bundle_path: Path, wall_s: float, confidence: float | None = None) -> dict:
    """Latency, fps and bytes from the results; agreement and the JPEG baseline from the frames they answer.

    The unsplit model's answer is head∘tail on float32 features (what split verified), through the same
    HeadPipeline and TailPipeline as everything else. `confidence` None: the task's default (model/answers).
    """
    bundle = load_bundle(bundle_path)
    head, tail = HeadPipeline(bundle, providers=["cpu"]), TailPipeline(bundle, ["cpu"])
    confidence = answers.default_confidence(tail) if confidence is None else confidence
    jpeg = JpegBaseline(head, tail)
    results = run.seen.results
    latency = np.array([r.latency_ms for r in results])
    feature_bytes = np.array([r.feature_bytes for r in results])
    reference, published, boxes = [], [], []
    for r in results:
        frame = run.seen.frames.get(stamp_key(r.header))
        if frame is None:
            continue
        image = image_to_array(frame)
        rgb = image if frame.encoding == "rgb8" else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        reference.append(answers.answer(tail, head.features(rgb, "rgb8")[0]))
        if answers.is_detection(tail):
            assert tail.decoder is not None
            boxes.append(_published_boxes(r, frame, tail.decoder.input_size))
        else:
            published.append({c.class_id: float(c.score) for c in r.results})
        jpeg.add(rgb)
    unsplit = answers.joined(reference)
    said = boxes if answers.is_detection(tail) else _published(published, len(reference[-1]) if reference else 0)
    stats = answers.agreement(unsplit, said, confidence) if reference else None
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
        "jpeg": {(j.method, j.quality): j for j in jpeg.results(unsplit, confidence)} if reference else {},
        "wall_s": wall_s,
        "boxes": sum(len(r.detections) for r in results) if answers.is_detection(tail) else None,
    }


def summary_lines(s: dict, choice: Result | None) -> list[str]:
    """What the demo prints after its run: throughput, the encoder, latency, bytes against JPEG, agreement."""
    boxes = s.get("boxes") is not None
    lines = ["", "== summary"]
    done = "frames detected       " if boxes else "frames classified     "
    lines.append(f"{done} {s['frames']} in {s['wall_s']:.1f} s ({s['fps']:.1f} fps)")
    if boxes:
        lines.append(f"boxes published        {s['boxes']} on splitcomp/detections")
    if choice is not None:
        low = choice.stats.confident_interval()[0] if choice.stats else 0.0
        on = "of recall on confident held-out boxes" if boxes else "on confident held-out frames"
        all_ = "F1 on all" if boxes else "on all"
        lines.append(
            f"encoder                {choice.method} at {choice.bits} bits, codec {choice.codec} (chosen from the "
            f"table by the rule: {100 * low:.1f} % lower bound {on}, "
            f"{100 * choice.agreement:.1f} % {all_})"
        )
    lines.append(f"end-to-end latency     p50 {s['latency_p50_ms']:.1f} ms, p95 {s['latency_p95_ms']:.1f} ms")
    full = s["jpeg"].get((FULL_FRAME, FULL_SIZE_QUALITY))
    if full is not None and s["bytes_per_frame"]:
        ratio = full.bytes_per_frame / s["bytes_per_frame"]
        versus = f"{ratio:.1f}x less" if ratio >= 1 else f"{1 / ratio:.1f}x more"
        lines.append(
            f"bytes per frame        {s['bytes_per_frame']:,.0f} (features) vs {full.bytes_per_frame:,.0f} "
            f"(JPEG q{FULL_SIZE_QUALITY} of the camera frame): {versus}"
        )
    return lines + _agreement_lines(s, full)


def _agreement_lines(s: dict, full) -> list[str]:
    """Agreement with the unsplit model, beside JPEG's on the same frames."""
    stats = s["stats"]
    boxes = s.get("boxes") is not None
    name = "box agreement          " if boxes else "top-1 agreement        "
    if not s["compared"]:
        answered = "answered" if boxes else "classified"
        return [f"{name}not measured: the probe received none of the {answered} frames (best effort)"]
    measure = "F1 " if boxes else ""
    lines = [f"{name}{measure}{s['agreement']:.1%} with the unsplit model ({s['compared']} frames)"]
    lines.append(f"on these frames        {agreement.legend(s['confidence'], stats)}")
    rows = [["split features", *agreement.cells(stats)]]
    if full is not None:
        rows.append([f"JPEG q{full.quality} of camera frame", *agreement.cells(full.stats)])
    lines.extend("  " + line for line in format_table(["", *agreement.header(stats)], rows).splitlines())
    small = [j for (method, _), j in sorted(s["jpeg"].items()) if method == MODEL_SIZE]
    if small:
        cells = ", ".join(f"q{j.quality} {j.bytes_per_frame:,.0f} B {j.agreement:.0%}" for j in small)
        lines.append(f"JPEG at model size     {cells} (bytes, agreement on the same frames)")
    if full is not None:
        lines.append(f"JPEG of camera frame   q{full.quality} {full.bytes_per_frame:,.0f} B {full.agreement:.0%}")
    return lines
