"""calibrate: clip ranges for a bundle's cut tensors from real frames, and what each choice costs.

The head spreads a few bits of code over a clip range; that range decides whether the tail still
gives the unsplit model's answer. The seed's fixed 0..32 clip is a guess. This measures the cut
tensors on frames like the robot's camera sends, finds ranges per tensor and per channel (a high
percentile, and the range with the least quantization error at the target bits: `ranges`), and
compares what every bit width, range method and codec costs in bytes per frame and in top-1
agreement with the unsplit model (`encodings`), next to JPEG and H.264/H.265 (model/video), which a robot would
send otherwise.
The result (`calibration.Calibration`) holds the manifest section to store.

With `eval_images` the ranges come from one set of frames and the table from another (photos:train
and photos:test share no photo), so the agreement is measured on frames the ranges never saw.
Everything runs through HeadPipeline and TailPipeline, as the nodes do.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.bundle.manifest import Bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.frames import open_source
from splitcomp_tools.frames.files import describe_skipped
from splitcomp_tools.frames.registry import scenes
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE
from splitcomp_tools.model.answers import Answers, answers, default_confidence
from splitcomp_tools.model.baseline import JpegBaseline
from splitcomp_tools.model.calibration import Calibration
from splitcomp_tools.model.distill.judge import bottleneck_row, training_images
from splitcomp_tools.model.encodings import (
    BITS,
    CalibrationError,
    Progress,
    Result,
    collect,
    encodings_for,
    evaluate,
)
from splitcomp_tools.model.ranges import (
    DEFAULT_MAX_SAMPLES,
    DEFAULT_PERCENTILE,
    RANGE_METHODS,
    calibrate_tensor,
    manifest_entry,
)
from splitcomp_tools.model.video import CODECS, CRFS, DEFAULT_KEYFRAME_INTERVAL, VideoBaseline, check_settings

DEFAULT_COUNT = 200
MAX_COUNT = 10_000  # every frame's float cut tensors are kept in memory


def calibrate(
    bundle_path: str | os.PathLike,
    images: str,
    count: int = DEFAULT_COUNT,
    topic: str = "",
    bits: int | None = None,
    method: str = "mse",
    percentile: float = DEFAULT_PERCENTILE,
    seed: int = 0,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    eval_images: str | None = None,
    eval_count: int | None = None,
    on_progress: Progress | None = None,
    confidence: float | None = None,
    video_codecs: Sequence[str] = CODECS,
    baselines: Sequence[Result] | None = None,
    bottlenecks: Sequence[str] = (),
) -> Calibration:
    """Measure a bundle's cut tensors on `count` frames from `images` and compare all ways to send them.

    Nothing is written: `update_quantization(bundle_path, result.quantization)` stores the ranges. `bits`
    (default: the bundle's own, or 4 for raw floats) is what the stored least-error ranges are searched for. With
    `eval_images`, the comparison runs on `eval_count` (default `count`) frames from there (seed + 1, so even the
    same source gives other frames); without it, on the calibration frames. `on_progress(phase, done, total)`
    reports the phases "frames" and "encodings". Every row carries model/answers' agreement (classes, or boxes
    for a detector; a frame or box is confident where the unsplit top-1 probability or score reaches
    `confidence`, None: 0.5 for classes, 0.8 for boxes). Beside the encodings: JPEG's and `video_codecs`' rows
    (model/video), or `baselines` measured before on the same frames (plan's candidates share them), and the
    `bottlenecks` (bottleneck_rows)."""
    bundle = load_bundle(bundle_path)
    quantization = bundle.manifest.quantization
    bits = (quantization.bits if quantization.bits <= 8 else 4) if bits is None else bits
    eval_count = count if eval_count is None else eval_count
    head, tail = HeadPipeline(bundle), TailPipeline(bundle)
    confidence = default_confidence(tail) if confidence is None else confidence
    _check_options(count, bits, method, percentile, max_samples, eval_count, confidence, video_codecs)
    sources = [open_source(images, seed=seed, topic=topic)]
    try:
        if eval_images:  # opened before the long first pass, so a wrong name fails at once
            sources.append(open_source(eval_images, seed=seed + 1, topic=topic))
        jpeg = _baseline(head, tail, video_codecs) if baselines is None else None
        features = collect(head, sources[0], count, None if eval_images else jpeg, on_progress)
        judged = collect(head, sources[1], eval_count, jpeg, on_progress) if eval_images else features
    finally:
        for source in sources:
            source.close()
    judged_spec = (eval_images, eval_count, seed + 1) if eval_images else (images, count, seed)
    frames = len(next(iter(features.values())))
    compared = sorted(set(BITS) | {bits})
    rng = np.random.default_rng(seed)
    tensors = {
        name: calibrate_tensor(name, values, compared, percentile, max_samples, rng)
        for name, values in features.items()
    }
    clip = (float(quantization.clip_min), float(quantization.clip_max))
    reference = answers(tail, judged)
    encodings = encodings_for(tensors, compared, clip)
    results, tables = evaluate(judged, tail, reference, encodings, on_progress, confidence, features)
    results.extend(_baseline_rows(jpeg, reference, confidence) if jpeg is not None else baselines or [])
    calibrated = {name: manifest_entry(t, method, bits, percentile, frames) for name, t in tensors.items()}
    return Calibration(
        bundle=bundle.path,
        images=images,
        frames=frames,
        bits=bits,
        method=method,
        percentile=percentile,
        tensors=tensors,
        results=results,
        # The measured ranges become the bundle's default: a head started without parameters uses them.
        quantization=dataclasses.replace(quantization, calibrated=calibrated, mode="calibrated", bits=bits),
        clip=clip,
        eval_images=eval_images,
        eval_frames=len(reference),
        notes=_notes(sources, images, eval_images),
        confidence=confidence,
        entropy_tables=tables,
        bottlenecks=bottleneck_rows(bundle, bottlenecks, judged_spec, topic, reference, confidence),
    )


def bottleneck_rows(
    bundle: Bundle,
    paths: Sequence[str],
    judged: tuple[str, int, int],  # the judged frames' source, count per part and seed
    topic: str,
    reference: Answers,
    confidence: float,
) -> list[tuple[str, Result]]:
    """Each bundle `distill` made of `bundle`, judged on the judged frames (read again: the same source, count and
    seed) against the same unsplit answers; refused where those frames show its training scenes."""
    if not paths:
        return []
    if not isinstance(reference, np.ndarray):
        raise CalibrationError("--bottleneck judges a classifier's bottleneck; this bundle is a detector")
    spec, count, seed = judged
    for path in paths:
        trained_on = training_images(load_bundle(path))
        shared = shared_scenes(trained_on, spec)
        if shared:
            raise CalibrationError(
                f"--bottleneck {path} was trained on {trained_on}; the judged frames {', '.join(shared)} show those "
                f"scenes: judge it on others (e.g. photos:test,video:bikes,video:carphone,corpus:test)"
            )
    source = open_source(spec, seed=seed, topic=topic)
    try:
        frames = list(source.frames(count))
    finally:
        source.close()
    rows = []
    for path in paths:
        point = bottleneck_row(path, bundle, frames, reference, confidence)
        rows.append(
            (
                str(path),
                Result(
                    "bottleneck", None, "entropy", None, point.bytes_per_frame, point.agreement.rate, point.agreement
                ),
            )
        )
    return rows


def _baseline(head: HeadPipeline, tail: TailPipeline, video_codecs: Sequence[str]) -> JpegBaseline:
    """What measures the rows of the frames sent as they are: JPEG, and the video codecs' streams."""
    return JpegBaseline(head, tail, VideoBaseline(head.preprocess, video_codecs) if video_codecs else None)


def _baseline_rows(jpeg: JpegBaseline, reference: Answers, confidence: float) -> list[Result]:
    return [
        Result(r.method, None, None, r.quality, r.bytes_per_frame, r.agreement, r.stats)
        for r in jpeg.results(reference, confidence)
    ]


def _notes(sources: list, images: str, eval_images: str | None) -> list[str]:
    """What a user should know about the frames: image files that did not decode, scenes both sides share."""
    notes = [f"{describe_skipped(s)}; measured on the others" for s in sources if describe_skipped(s)]
    shared = shared_scenes(images, eval_images)
    return notes + [f"{part} both calibrates and is judged: judge on other scenes" for part in shared]


def shared_scenes(images: str, eval_images: str | None) -> list[str]:
    """The sources of a comma list `eval_images` that show scenes the ranges came from (frames.registry.scenes): the
    same clip or source, or a photo both sets hold (opened again with another seed, a photo source gives other crops of
    the same photos: `photos` holds every photo of `photos:test`). The generator draws new scenes for every frame."""
    if not eval_images:
        return []
    ours = scenes(images)
    return [t for t in (p.strip() for p in eval_images.split(",") if p.strip()) if scenes(t) & ours]


def _check_options(
    count: int,
    bits: int,
    method: str,
    percentile: float,
    max_samples: int,
    eval_count: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    video_codecs: Sequence[str] = (),
) -> None:
    check_settings(video_codecs, CRFS, DEFAULT_KEYFRAME_INTERVAL)
    if not 0.0 <= confidence <= 1.0:
        raise CalibrationError(f"--confidence must be from 0 to 1, e.g. 0.5; got {confidence}")
    if not 1 <= count <= MAX_COUNT:
        raise CalibrationError(f"--count must be from 1 to {MAX_COUNT}, got {count}")
    if eval_count is not None and not 1 <= eval_count <= MAX_COUNT:
        raise CalibrationError(f"--eval-count must be from 1 to {MAX_COUNT}, got {eval_count}")
    if not 1 <= bits <= 8:
        raise CalibrationError(f"--bits must be 1..8 (the quantized widths the head can send), got {bits}")
    if method not in RANGE_METHODS:
        raise CalibrationError(f"--method must be one of {', '.join(RANGE_METHODS)}, got {method!r}")
    if not 50.0 < percentile <= 100.0:
        raise CalibrationError(f"--percentile must be above 50 and at most 100, e.g. 99.99; got {percentile}")
    if max_samples < 1:
        raise CalibrationError(f"max_samples must be at least 1, got {max_samples}")
