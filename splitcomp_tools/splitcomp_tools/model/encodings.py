"""Every way to send a cut tensor, measured: bytes per frame and top-1 agreement with the unsplit model.

The head runs once per frame and its float outputs are kept (`collect`); every (bits, method) is a
re-encoding of those through the wire codec, and the tail runs once per (bits, method): codecs are
lossless, they only change bytes, so every codec's size comes from the same packed payload.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from splitcomp_core.codec import (
    CODEC_BY_NAME,
    CODEC_NAMES,
    CODEC_NONE,
    QuantParams,
    clip_params,
    compress,
    decode,
    encode,
    range_params,
)
from splitcomp_core.entropy import EntropyTable
from splitcomp_core.errors import SplitcompError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.frames import FrameSource
from splitcomp_tools.model import entropy_sizes, video
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE
from splitcomp_tools.model.answers import Answers, Stats, agreement, answers
from splitcomp_tools.model.baseline import JpegBaseline, baseline_label
from splitcomp_tools.model.ranges import GRANULARITIES, TensorCalibration

BITS = (2, 3, 4, 6, 8)
RAW_FLOAT_BITS = (16, 32)
QUANTIZED_METHODS = ("clip", *tuple(f"{g}_{m}" for g in GRANULARITIES for m in ("percentile", "mse")))


# The head node's `quantization` mode that sends each table method's ranges.
HEAD_MODES = {"clip": "clip", "per_tensor": "calibrated", "per_channel": "per_channel"}


Progress = Callable[[str, int, int], None]  # (phase, done, total)


class CalibrationError(SplitcompError, ValueError):
    """A calibration request that cannot run: bad option values, or no frames to measure."""


@dataclass(frozen=True)
class Result:
    """One way to send a frame: its mean bytes per frame, and how often the answer is the unsplit model's.

    `method` is a QUANTIZED_METHODS name, "raw" (float16/32 features), "jpeg" (the frame at model input
    size), "jpeg_full" (the frame as the camera gave it) or a model/video method ("h264_full": H.264 of the camera
    frame, with the CRF in `quality`); `agreement` is (a), top-1 agreement on all
    frames as a fraction; `stats` adds (b) confident frames, (c) top-5 overlap and the Wilson intervals.
    """

    method: str
    bits: int | None
    codec: str | None
    quality: int | None
    bytes_per_frame: float
    agreement: float
    stats: Stats | None = None

    def to_json(self) -> dict[str, Any]:
        """The row as JSON: its fields, with `stats` as Agreement.to_json() gives it."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "stats"}
        data["stats"] = None if self.stats is None else self.stats.to_json()
        if self.codec is None:  # a row of the frames sent as they are: its name for people (the studio shows it)
            data["label"] = baseline_label(self.method)
        return data

    def setting(self) -> str:
        """How the head node is told to send this way, e.g. "bits 6, quantization per_channel, codec zstd"."""
        if self.bits is None or self.codec is None:
            return (
                f"{video.label(self.method)}, crf {self.quality}"
                if video.is_video(self.method)
                else f"JPEG q{self.quality}"
            )
        if self.method == "raw":
            return f"bits {self.bits}, codec {self.codec}"
        return f"bits {self.bits}, quantization {head_mode(self.method)}, codec {self.codec}"


def head_mode(method: str) -> str:
    """The head's `quantization` parameter for a QUANTIZED_METHODS name ("per_channel_mse" -> "per_channel")."""
    return HEAD_MODES[method.rsplit("_", 1)[0] if method != "clip" else "clip"]


def collect(
    head: HeadPipeline,
    source: FrameSource,
    count: int,
    jpeg: JpegBaseline | None = None,
    on_progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """One pass over the frames: each frame's float cut tensors, stacked per tensor (and its JPEG baselines)."""
    kept: dict[str, list[np.ndarray]] = {name: [] for name in head.cut_names}
    for done, frame in enumerate(source.frames(count), 1):
        features = head.features(frame, "rgb8")[0]
        for name in head.cut_names:
            kept[name].append(features[name])
        if jpeg is not None:
            jpeg.add(frame)
        if on_progress is not None:
            on_progress("frames", done, count)
    if not kept[head.cut_names[0]]:
        raise CalibrationError(
            "the image source gave no frames that could be read; check --images, --eval-images (and --topic)"
        )
    features = {name: np.stack(arrays) for name, arrays in kept.items()}
    for name, values in features.items():
        if not np.all(np.isfinite(values)):
            raise CalibrationError(
                f"cut tensor '{name}' holds NaN or infinite values; the head model or the bundle's input spec is broken"
            )
    return features


def evaluate(
    features: Mapping[str, np.ndarray],
    tail: TailPipeline,
    reference: Answers,
    encodings: Mapping[tuple[str, int], Mapping[str, QuantParams | None]],
    on_progress: Progress | None = None,
    threshold: float = DEFAULT_CONFIDENCE,
    fit: Mapping[str, np.ndarray] | None = None,
) -> tuple[list[Result], dict[tuple[str, int], dict[str, EntropyTable]]]:
    """Encode every frame's tensors each way (params None = raw floats of that many bits), decode them as the
    tail would, and run the tail once per way; every codec's bytes come from the same packed payload.

    `reference` holds the unsplit model's answers of the frames (model/answers: probabilities or boxes); a frame
    (a box) is confident where its top-1 probability (its score) reaches `threshold`. With `fit` (the calibration frames' float
    tensors) and constriction installed, each quantized way also gets an entropy row, coded under a table
    fitted on `fit`; the tables come back by (method, bits).
    """
    results: list[Result] = []
    tables: dict[tuple[str, int], dict[str, EntropyTable]] = {}
    for done, ((method, bits), params) in enumerate(encodings.items()):
        if on_progress is not None:
            on_progress("encodings", done, len(encodings))
        fitted = None if fit is None else entropy_sizes.fit_tables(fit, params, head_mode_of(method))
        if fitted is not None:
            tables[(method, bits)] = fitted
        sizes, decoded = _sizes_and_decoded(features, params, bits, fitted)
        stats = agreement(reference, answers(tail, decoded), threshold)
        results.extend(Result(method, bits, c, None, n / len(reference), stats.rate, stats) for c, n in sizes.items())
    if on_progress is not None:
        on_progress("encodings", len(encodings), len(encodings))
    return results, tables


def _sizes_and_decoded(
    features: Mapping[str, np.ndarray],
    params: Mapping[str, QuantParams | None],
    bits: int,
    tables: Mapping[str, EntropyTable] | None,
) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Total bytes per codec over the frames (entropy too when `tables`), and the frames as the tail decodes them."""
    sizes = dict.fromkeys((*CODEC_NAMES, *([entropy_sizes.ENTROPY_CODEC] if tables else [])), 0)
    decoded = {}
    for name, frames in features.items():
        restored = np.empty_like(frames)
        p = params[name]
        for i, x in enumerate(frames):
            tensor = encode(name, x, p, CODEC_NONE, raw_bits=bits if p is None else 32)
            for codec in CODEC_NAMES:
                sizes[codec] += len(compress(tensor.data, CODEC_BY_NAME[codec]))
            if tables and p is not None:
                sizes[entropy_sizes.ENTROPY_CODEC] += entropy_sizes.coded_bytes(x, p, tables[name])
            restored[i] = decode(tensor)
        decoded[name] = restored
    return sizes, decoded


def head_mode_of(method: str) -> str:
    """The head's range mode of a table method, raw floats included (their mode does not matter)."""
    return head_mode(method) if method in QUANTIZED_METHODS else "clip"


def encodings_for(
    tensors: Mapping[str, TensorCalibration], bits: Sequence[int], clip: tuple[float, float]
) -> dict[tuple[str, int], dict[str, QuantParams | None]]:
    """Every (method, bits) to compare, with each tensor's parameters: seed clip, four calibrated ways, raw floats."""
    encodings: dict[tuple[str, int], dict[str, QuantParams | None]] = {}
    for b in bits:
        encodings[("clip", b)] = {name: clip_params(b, *clip) for name in tensors}
        for granularity in GRANULARITIES:
            for method in ("percentile", "mse"):
                ranges = {name: t.ranges(granularity, method, b) for name, t in tensors.items()}
                encodings[(f"{granularity}_{method}", b)] = {
                    name: range_params(b, r.lo, r.hi) for name, r in ranges.items()
                }
    for raw in RAW_FLOAT_BITS:
        encodings[("raw", raw)] = dict.fromkeys(tensors)
    return encodings
