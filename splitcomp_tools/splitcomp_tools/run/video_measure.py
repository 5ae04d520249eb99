"""What `bench video` measures: bytes per frame of every bits, codec and key-frame interval on real clips, and the
agreement with the unsplit model that decides which of them a robot may send.

Ranges (least-error, at each bit width) and the entropy tables are fitted on `images` (photos:train), never on
the frames judged. A detection bundle's answers are its boxes, judged by box agreement (model/answers.py). Every judged frame goes through HeadPipeline (features, then the head's encode, intra or as a
P-frame under the head's own KeyframeSchedule) and TailPipeline (validate, decode, the tail model, top-k), as in
deployment; the unsplit answer is the tail on float32 features, the JPEG-95 reference the model on the camera
frame after a quality-95 JPEG round trip, and beside it each H.264/H.265 setting of model/video (CRF 18..33, the
camera frame and the frame at the model's scale, a key frame every P-frame interval measured, or every 30 without
one), each source its own stream, in order. Codecs are lossless and P-frames decode to intra coding's codes bit for
bit (checked on every frame), so the agreement depends on the bits alone: the tail answers one pass per bit width
(`answer_all` answers every pass, to show it). Beside the codecs' bytes, each clip's code entropies at each bit
width (model/code_entropy) say how far any lossless coder of those forms could go.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from splitcomp_core.bundle import Bundle, load_bundle
from splitcomp_core.codec import CODE_BITS, payload_bytes
from splitcomp_core.detection import Detection
from splitcomp_core.entropy import EntropyModels, EntropyTable
from splitcomp_core.entropy_fit import fit_head_tables
from splitcomp_core.errors import SplitcompError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.interframe import Reference
from splitcomp_core.keyframes import KeyframeSchedule
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import Decoded, TailPipeline
from splitcomp_tools.cli import UsageError
from splitcomp_tools.frames import open_source
from splitcomp_tools.model import agreement as ag
from splitcomp_tools.model import answers as task
from splitcomp_tools.model.baseline import FULL_SIZE_QUALITY, jpeg_round_trip
from splitcomp_tools.model.box_agreement import BoxAgreement
from splitcomp_tools.model.calibrate import shared_scenes
from splitcomp_tools.model.code_entropy import BOUNDS, code_entropy_bytes
from splitcomp_tools.model.distill.judge import training_images
from splitcomp_tools.model.ranges import DEFAULT_PERCENTILE, calibrate_tensor, manifest_entry
from splitcomp_tools.model.video import CODECS, DEFAULT_KEYFRAME_INTERVAL, Setting, VideoBaseline

Features = Mapping[str, np.ndarray]
Scores = list[tuple[int, float]]  # one answer's top-k: (class id, probability), best first
Answer = Scores | list[Detection]  # a classifier's top-k, or a detector's boxes (model-input pixels)
RANGE_METHOD = "mse"  # least-error ranges at each bit width, as `calibrate` stores them


@dataclasses.dataclass(frozen=True)
class VideoBenchOptions:
    bundle: Path
    images: str = "photos:train"
    count: int = 200
    eval_images: str = "photos:test,video:bikes,video:carphone"
    delta_images: str | None = None  # frames in order the P-frames' delta tables are fitted on (default: images)
    delta_count: int = 0
    eval_count: int = 400  # per part of eval_images; a clip gives what it holds
    bits: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    codecs: tuple[str, ...] = ("zstd", "entropy")
    intervals: tuple[int, ...] = (0, 10)
    mode: str = "calibrated"  # the head's quantization: per-tensor ("calibrated") or per_channel ranges
    confidence: float = ag.DEFAULT_CONFIDENCE  # a detector's confident box: its score (bench video: 0.8)
    seed: int = 0
    answer_all: bool = False
    video_codecs: tuple[str, ...] = CODECS
    bottlenecks: tuple[str, ...] = ()  # bundles `distill` made of this one, judged on the same frames


@dataclasses.dataclass
class Judged:
    """One evaluation source: its frames' float cut tensors, the unsplit answers, JPEG-95's and each video setting's
    answers and bytes."""

    name: str
    clip: bool  # a source with its own frame rate (a video): its frames come in order
    features: list[Features]
    unsplit: list[Answer]
    jpeg: list[Answer]
    jpeg_bytes: list[int]
    video: dict[Setting, list[Answer]] = dataclasses.field(default_factory=dict)
    video_bytes: dict[Setting, list[int]] = dataclasses.field(default_factory=dict)
    learned: dict[str, list[Features]] = dataclasses.field(default_factory=dict)  # each bottleneck head's cut tensors


def measure_video(options: VideoBenchOptions) -> dict:
    """Every (bits, codec, key-frame interval) on every judged source: bytes per frame and agreement."""
    bundle = load_bundle(options.bundle)
    if bundle.cuts:
        raise UsageError(f"{options.bundle} is a multi-cut bundle; pass one of its cuts: {bundle.cuts[0].bundle.path}")
    if not set(options.bits) <= set(CODE_BITS):
        raise UsageError(f"--bits must be among 1..8 (codes), got {sorted(options.bits)}")
    start = EncoderConfig(options.bits[0], "clip")  # nothing the bundle's own entropy models would have to cover
    head = HeadPipeline(bundle, start, providers=["cpu"], entropy_models=EntropyModels([]))
    tail = TailPipeline(bundle, ["cpu"], entropy_models=head.entropy_models)
    if options.bottlenecks and task.is_detection(tail):
        raise UsageError("--bottleneck judges a classifier's bottleneck; this bundle is a detector")
    fit = source_features(head, options.images, options.count, options.seed)
    intervals = [i for i in options.intervals if i > 0] or [DEFAULT_KEYFRAME_INTERVAL]
    video = VideoBaseline(head.preprocess, options.video_codecs, keyframe_intervals=intervals)
    learned = _bottlenecks(bundle, options)
    judged = [
        _judge(head, tail, part, options.eval_count, options.seed + 1, video, {p: h for p, (h, _) in learned.items()})
        for part in _parts(options.eval_images)
    ]
    stacked = {name: np.stack([f[name] for f in fit]) for name in head.cut_names}
    rng = np.random.default_rng(options.seed)
    tensors = {name: calibrate_tensor(name, v, options.bits, rng=rng) for name, v in stacked.items()}
    ranged = {b: _with_ranges(bundle, tensors, b, len(fit)) for b in options.bits}
    delta = (
        source_features(head, options.delta_images, options.delta_count, options.seed) if options.delta_images else fit
    )
    tables = []
    for bits in options.bits:
        head.bundle = ranged[bits]
        tables += _tables(head, fit, delta, EncoderConfig(bits, options.mode))
    head.entropy_models = tail.entropy_models = EntropyModels(tables)
    unsplit = [s for j in judged for s in j.unsplit]
    jpeg = _measure(unsplit, [s for j in judged for s in j.jpeg], options.confidence)
    rows, agreement, bounds = [], {}, {}
    for bits in options.bits:
        head.bundle = ranged[bits]
        bits_rows, agreement[bits] = _bits_rows(head, tail, judged, bits, options)
        rows += bits_rows
        bounds[str(bits)] = _bounds(head, judged, bits, options.mode)
    return {
        "bundle": str(options.bundle),
        "tensors": {t.name: t.shape for t in bundle.manifest.cut},
        "quantization": options.mode,
        "fit": {"images": options.images, "frames": len(fit)},
        "delta_fit": {"images": options.delta_images or options.images, "frames": len(delta)},
        "sources": [_describe_source(j, options.confidence) for j in judged],
        "confidence": options.confidence,
        "task": "detection" if task.is_detection(tail) else "classification",
        "agreement": {str(b): _agreement_json(a) for b, a in agreement.items()},
        "jpeg95": {
            **_agreement_json(jpeg),
            "bytes": _source_bytes(judged, [j.jpeg_bytes for j in judged]),
            "by_source": {j.name: _agreement_json(_measure(j.unsplit, j.jpeg, options.confidence)) for j in judged},
        },
        "video": _video_rows(judged, video, options.confidence),
        "rows": rows,
        "bounds": bounds,
        "bottlenecks": [_bottleneck_row(path, h, t, judged, options) for path, (h, t) in learned.items()],
    }


def _bottlenecks(bundle: Bundle, options: VideoBenchOptions) -> dict[str, tuple[HeadPipeline, TailPipeline]]:
    """The pipelines of each distilled bundle of `bundle`, refused when the judged frames show its training scenes."""
    out = {}
    for path in options.bottlenecks:
        learned = load_bundle(path)
        trained_on = training_images(learned)
        if not trained_on or learned.manifest.input != bundle.manifest.input:
            raise UsageError(f"--bottleneck {path}: not a bundle distill made of {options.bundle}")
        shared = shared_scenes(trained_on, options.eval_images)
        if shared:
            raise UsageError(f"--bottleneck {path} was trained on {trained_on}; judge it on other than {shared}")
        out[path] = (HeadPipeline(learned, providers=["cpu"]), TailPipeline(learned, ["cpu"]))
    return out


def _bottleneck_row(
    path: str, head: HeadPipeline, tail: TailPipeline, judged: Sequence[Judged], options: VideoBenchOptions
) -> dict:
    """One distilled bundle on every judged source in order, intra and at each key-frame interval (its own
    entropy tables: the key table and the delta table fitted on its training frames)."""
    rows = []
    for interval in sorted({0, *options.intervals}):
        streams = [_stream(head, tail, j.learned[path], interval, True) for j in judged]
        answers = [s[3] for s in streams]
        unsplit = [a for j in judged for a in j.unsplit]
        rows.append(
            {
                "keyframe_interval": interval,
                "bytes": _source_bytes(judged, [s[0] for s in streams]),
                "identical": all(s[1] for s in streams),
                "agreement": _agreement_json(_measure(unsplit, [a for r in answers for a in r], options.confidence)),
                "agreement_by_source": {
                    j.name: _agreement_json(_measure(j.unsplit, a, options.confidence))
                    for j, a in zip(judged, answers, strict=True)
                },
            }
        )
    return {"bundle": path, "training_images": training_images(head.bundle), "rows": rows}


def _parts(spec: str) -> list[str]:
    return [part.strip() for part in spec.split(",") if part.strip()]


def source_features(head: HeadPipeline, spec: str, count: int, seed: int) -> list[Features]:
    """The head's float cut tensors of up to `count` frames of one source, in order (at least 2, or an error)."""
    source = open_source(spec, seed=seed)
    try:
        frames: list[Features] = [head.features(frame)[0] for frame in source.frames(count)]
    finally:
        source.close()
    if len(frames) < 2:
        raise SplitcompError(f"{spec} gave {len(frames)} frame(s); the benchmark needs at least 2")
    return frames


def _judge(
    head: HeadPipeline,
    tail: TailPipeline,
    spec: str,
    count: int,
    seed: int,
    video: VideoBaseline,
    learned: Mapping[str, HeadPipeline],
) -> Judged:
    """The frames of one source with their unsplit answers and the answers to their JPEG-95 round trip and to each
    video setting's decoded frame (new streams for the source)."""
    source = open_source(spec, seed=seed)
    judged = Judged(spec, source.fps is not None, [], [], [], [])
    video.restart()
    try:
        for frame in source.frames(count):
            features = head.features(frame)[0]
            judged.features.append(features)
            judged.unsplit.append(_answer(tail, features))
            for path, learned_head in learned.items():
                judged.learned.setdefault(path, []).append(learned_head.features(frame)[0])
            decoded, size = jpeg_round_trip(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), FULL_SIZE_QUALITY)
            judged.jpeg_bytes.append(size)
            judged.jpeg.append(_answer(tail, head.features(decoded, "bgr8")[0]))
            for setting, pixels, sent in video.round_trips(frame):
                judged.video_bytes.setdefault(setting, []).append(sent)
                judged.video.setdefault(setting, []).append(_answer(tail, head.features(pixels)[0]))
    finally:
        source.close()
    if len(judged.features) < 2:
        raise SplitcompError(f"{spec} gave {len(judged.features)} frame(s); the benchmark needs at least 2")
    return judged


def _tables(head: HeadPipeline, fit: Sequence[Features], delta: Sequence[Features], config: EncoderConfig) -> list:
    """Entropy tables whose key-frame model comes from `fit` and whose P-frame (delta) model from `delta`."""
    keys = fit_head_tables(head, fit, [config])
    if delta is fit:
        return keys
    deltas = {t.tensor: t for t in fit_head_tables(head, delta, [config])}
    return [EntropyTable(t.tensor, t.bits, t.mode, t.key, deltas[t.tensor].delta) for t in keys]


def _answer(tail: TailPipeline, feeds: Features) -> Answer:
    """The tail's answer to float (or decoded) features: its top-k, or a detector's boxes in model-input pixels."""
    if task.is_detection(tail):
        return list(task.answer(tail, feeds))
    result = tail.answer(Decoded(dict(feeds), None, 0.0, 0))
    return [(int(c), float(p)) for c, _, p in result.results]


def _boxes(answers: Sequence[Answer]) -> bool:
    """Whether these are a detector's answers: no class score among them (a top-k is never empty)."""
    return not any(isinstance(x, tuple) for a in answers for x in a)


def _measure(unsplit: Sequence[Answer], answers: Sequence[Answer], confidence: float) -> ag.Agreement | BoxAgreement:
    """The agreement of `answers` with the unsplit answers to the same frames, by the task (model/answers)."""
    if _boxes([*unsplit, *answers]):
        boxes = cast(Sequence[list[Detection]], unsplit), cast(Sequence[list[Detection]], answers)
        return task.agreement(task.joined(boxes[0]), task.joined(boxes[1]), confidence)
    scores = cast(Sequence[Scores], unsplit), cast(Sequence[Scores], answers)
    width = 1 + max(c for a in (*scores[0], *scores[1]) for c, _ in a)
    return ag.measure(_matrix(scores[0], width), _matrix(scores[1], width), confidence)


def _matrix(answers: Sequence[Scores], width: int) -> np.ndarray:
    """Frames x classes probabilities from top-k answers (zero outside each top-k: enough for top-1, confidence
    and top-k overlap)."""
    matrix = np.zeros((len(answers), width))
    for i, answer in enumerate(answers):
        for c, p in answer:
            matrix[i, c] = p
    return matrix


def _with_ranges(bundle: Bundle, tensors: Mapping, bits: int, frames: int) -> Bundle:
    """The bundle as `calibrate --bits BITS` would leave it: least-error ranges for BITS (in memory only)."""
    calibrated = {n: manifest_entry(t, RANGE_METHOD, bits, DEFAULT_PERCENTILE, frames) for n, t in tensors.items()}
    quantization = dataclasses.replace(bundle.manifest.quantization, calibrated=calibrated, bits=bits)
    return dataclasses.replace(bundle, manifest=dataclasses.replace(bundle.manifest, quantization=quantization))


def _bits_rows(
    head: HeadPipeline, tail: TailPipeline, judged: Sequence[Judged], bits: int, options: VideoBenchOptions
) -> tuple[list[dict], ag.Agreement | BoxAgreement]:
    """One row per codec and interval at `bits`, and the agreement of the tail's answers to the decoded frames."""
    unsplit = [s for j in judged for s in j.unsplit]
    rows, answered = [], None
    for codec in options.codecs:
        head.configure(EncoderConfig(bits, options.mode, codec=codec))
        for interval in options.intervals:
            answer = options.answer_all or answered is None
            streams = [_stream(head, tail, j.features, interval, answer) for j in judged]
            row = {
                "bits": bits,
                "codec": codec,
                "keyframe_interval": interval,
                "bytes": _source_bytes(judged, [s[0] for s in streams]),
                "identical": all(s[1] for s in streams),
                "key_frames": sum(s[2] for s in streams),
            }
            if answer:
                measured = _measure(unsplit, [a for s in streams for a in s[3]], options.confidence)
                row["agreement"] = _agreement_json(measured)
                row["agreement_by_source"] = {
                    j.name: _agreement_json(_measure(j.unsplit, s[3], options.confidence))
                    for j, s in zip(judged, streams, strict=True)
                }
                answered = measured if answered is None else answered
            rows.append(row)
    assert answered is not None  # at least one codec and interval
    return rows, answered


def _stream(
    head: HeadPipeline, tail: TailPipeline, frames: Sequence[Features], interval: int, answer: bool
) -> tuple[list[int], bool, int, list[Answer]]:
    """One source's frames in order through the head's schedule and the tail's decode: bytes per frame, whether
    every decoded code equals intra coding's, how many key frames, and (when `answer`) the tail's answers."""
    schedule = KeyframeSchedule(interval)
    sizes, answers, identical, reference = [], [], True, None
    for sequence, features in enumerate(frames, 1):
        reference_sequence, reference_codes = schedule.reference(sequence, "cut", head.encoding, 0.0)
        tensors, codes = head.encode_codes(features, reference_codes)
        schedule.sent(sequence, "cut", head.encoding, codes, reference_sequence, 0.0)
        decoded = tail.decode(tail.model_id, tensors, reference_sequence, reference)
        schedule.answered(sequence)
        assert codes is not None and decoded.codes is not None  # bits 1..8 always give codes
        identical = identical and all(np.array_equal(decoded.codes[n], codes[n]) for n in codes)
        reference = Reference(sequence, tail.model_id, decoded.codes)
        sizes.append(payload_bytes(tensors))
        if answer:
            answers.append(_answer(tail, decoded.feeds))
    return sizes, identical, schedule.key_frames, answers


def _bounds(head: HeadPipeline, judged: Sequence[Judged], bits: int, mode: str) -> dict[str, dict[str, float]]:
    """model/code_entropy's bounds in bytes per frame on each clip, and over all clips ("clips", weighted by frames)."""
    head.configure(EncoderConfig(bits, mode))
    out, weights = {}, {}
    for j in judged:
        if j.clip:
            codes = []
            for features in j.features:
                frame_codes = head.encode_codes(features)[1]
                assert frame_codes is not None  # bits 1..8 always give codes
                codes.append(frame_codes)
            out[j.name] = code_entropy_bytes(codes, bits)
            weights[j.name] = len(codes) - 1
    if out:
        total = sum(weights.values())
        out["clips"] = {b: sum(out[n][b] * w for n, w in weights.items()) / total for b in BOUNDS}
    return out


def _video_rows(judged: Sequence[Judged], video: VideoBaseline, confidence: float) -> list[dict]:
    """Per video setting: its bytes per source and the agreement of the answers to its decoded frames."""
    unsplit = [s for j in judged for s in j.unsplit]
    return [
        {
            "method": v.method,
            "codec": v.codec,
            "version": v.version,
            "crf": v.crf,
            "keyframe_interval": v.keyframe_interval,
            "bytes": _source_bytes(judged, [j.video_bytes[v] for j in judged]),
            "agreement": _agreement_json(_measure(unsplit, [a for j in judged for a in j.video[v]], confidence)),
            "agreement_by_source": {
                j.name: _agreement_json(_measure(j.unsplit, j.video[v], confidence)) for j in judged
            },
        }
        for v in video.settings
    ]


def _source_bytes(judged: Sequence[Judged], sizes: Sequence[Sequence[int]]) -> dict[str, dict[str, float]]:
    """Median and mean bytes per frame of each source, of all clips together ("clips") and of every judged frame
    ("all": the frames the agreement is measured on, which the rule compares bytes on)."""
    out = {j.name: _stats(s) for j, s in zip(judged, sizes, strict=True)}
    clips = [b for j, s in zip(judged, sizes, strict=True) if j.clip for b in s]
    if clips:
        out["clips"] = _stats(clips)
    out["all"] = _stats([b for s in sizes for b in s])
    return out


def _stats(sizes: Sequence[int]) -> dict[str, float]:
    return {"median": float(statistics.median(sizes)), "mean": float(statistics.fmean(sizes)), "frames": len(sizes)}


def _agreement_json(a: ag.Agreement | BoxAgreement) -> dict:
    if isinstance(a, BoxAgreement):  # its own figures, and the names the rule and the tables read
        return {**a.to_json(), "iou_sum": a.iou_sum, "rate": a.rate, "confident_frames": a.confident_boxes}
    return {
        "agree": a.agree,
        "frames": a.frames,
        "rate": a.rate,
        "interval": list(a.interval()),
        "confident_agree": a.confident_agree,
        "confident_frames": a.confident_frames,
        "confident_rate": a.confident_rate,
        "confident_interval": list(a.confident_interval()),
        "top5_overlap": a.top5_overlap,
    }


def agreement_of(record: Mapping) -> ag.Agreement | BoxAgreement:
    """An Agreement (a BoxAgreement) back from its JSON record (to apply `meets`)."""
    if "f1" in record:
        keys = ("matched", "reference_boxes", "candidate_boxes", "confident_matched", "confident_boxes", "iou_sum")
        return BoxAgreement(*(record[k] for k in keys))
    return ag.Agreement(
        record["agree"], record["frames"], record["confident_agree"], record["confident_frames"], record["top5_overlap"]
    )


def _describe_source(judged: Judged, confidence: float) -> dict:
    if _boxes(judged.unsplit):
        scores = [d.score for a in cast(list[list[Detection]], judged.unsplit) for d in a]
        return {
            "name": judged.name,
            "clip": judged.clip,
            "frames": len(judged.features),
            "boxes": len(scores),
            "confident": sum(1 for score in scores if score >= confidence),
            "median_box_score": float(np.median(scores)) if scores else 0.0,
        }
    answers = cast(list[Scores], judged.unsplit)
    width = 1 + max(c for a in answers for c, _ in a)
    unsplit = _matrix(answers, width)
    probabilities = unsplit.max(axis=1)
    return {
        "name": judged.name,
        "clip": judged.clip,
        "frames": len(judged.features),
        "confident": int(ag.confident(unsplit, confidence).sum()),
        "median_top1_probability": float(np.median(probabilities)),
    }
