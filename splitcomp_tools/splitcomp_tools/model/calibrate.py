"""calibrate: clip ranges for a bundle's cut tensors from real frames, and what each choice costs.

The head spreads a few bits of code over a clip range; that range decides whether the tail still
gives the unsplit model's answer. The seed's fixed 0..32 clip is a guess. This tool measures the cut
tensors on frames like the robot's camera sends, finds ranges per tensor and per channel (a high
percentile, and the range with the least quantization error at the target bits), stores them in the
bundle's manifest, and reports what every bit width, range method and codec costs in bytes per frame
and in top-1 agreement with the unsplit model, next to JPEG, which a robot would send otherwise.

The head runs once per frame and its float outputs are kept; every (bits, method) is a re-encoding
of those, and the tail runs once per (bits, method): codecs are lossless, they only change bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from splitcomp_core.bundle import DYNAMIC, Bundle, QuantizationSpec, load_bundle, update_quantization
from splitcomp_core.codec import (
    CODEC_BY_NAME,
    CODEC_NAMES,
    CODEC_NONE,
    QuantParams,
    clip_params,
    compress,
    decode,
    dequantize,
    encode,
    quantize,
    range_params,
)
from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write, atomic_write_text
from splitcomp_core.head import HeadPipeline
from splitcomp_core.preprocess import Preprocessor
from splitcomp_core.runtime import InferenceSession
from splitcomp_tools.cli import run_cli
from splitcomp_tools.frames import FrameSource, open_source

BITS = (2, 3, 4, 6, 8)
RAW_FLOAT_BITS = (16, 32)
GRANULARITIES = ("per_tensor", "per_channel")
RANGE_METHODS = ("mse", "percentile")
QUANTIZED_METHODS = ("clip", *tuple(f"{g}_{m}" for g in GRANULARITIES for m in ("percentile", "mse")))
JPEG_QUALITIES = (50, 75, 95)
FULL_SIZE_QUALITY = 95  # image_transport's default JPEG quality
DEFAULT_COUNT = 200
DEFAULT_PERCENTILE = 99.99
DEFAULT_MAX_SAMPLES = 1 << 18  # values per tensor that the range searches look at
SEARCH_STEPS = 48
SEARCH_ROUNDS = 2
TAIL_BATCH = 32
_CANDIDATE_ELEMENTS = 1 << 22  # floats quantized at once while scoring candidate ranges


class CalibrationError(SplitcompError, ValueError):
    """A calibration request that cannot run: bad option values, or no frames to measure."""


@dataclass(frozen=True)
class Ranges:
    """Clip ranges of one or more groups: one group is the whole tensor, or one group per channel (axis 1)."""

    lo: np.ndarray
    hi: np.ndarray


@dataclass
class TensorCalibration:
    """Ranges found for one cut tensor: the percentile ranges, and the least-error ranges per bit width."""

    name: str
    percentile: dict[str, Ranges]
    mse: dict[int, dict[str, Ranges]]

    def ranges(self, granularity: str, method: str, bits: int) -> Ranges:
        return self.percentile[granularity] if method == "percentile" else self.mse[bits][granularity]


@dataclass(frozen=True)
class Result:
    """One way to send a frame: its mean bytes per frame, and how often the answer is the unsplit model's.

    `method` is a QUANTIZED_METHODS name, "raw" (float16/32 features), "jpeg" (the frame at model input
    size) or "jpeg_full" (the frame as the camera gave it); `agreement` is a fraction of frames.
    """

    method: str
    bits: int | None
    codec: str | None
    quality: int | None
    bytes_per_frame: float
    agreement: float


@dataclass
class Calibration:
    """Everything one run found; `quantization` is the manifest section `calibrate` writes."""

    bundle: Path
    images: str
    frames: int
    bits: int
    method: str
    percentile: float
    tensors: dict[str, TensorCalibration]
    results: list[Result]
    quantization: QuantizationSpec
    clip: tuple[float, float]

    def to_json(self, written: bool) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "images": self.images,
            "frames": self.frames,
            "bits": self.bits,
            "method": self.method,
            "percentile": self.percentile,
            "clip": list(self.clip),
            "written": written,
            "calibrated": self.quantization.calibrated,
            "results": [dataclasses.asdict(r) for r in self.results],
        }


def channel_rows(frames: np.ndarray) -> np.ndarray:
    """(C, M) values of each channel (axis 1 of every frame's tensor) over all frames; one row without a channel axis.

    `frames` stacks the frames' tensors: shape (N, *tensor_shape).
    """
    if frames.ndim < 3:
        return frames.reshape(1, -1)
    return np.moveaxis(frames, 2, 0).reshape(frames.shape[2], -1)


def subsample(rows: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """The same random columns of every row, at most `max_samples` values in all: bounds the searches' cost."""
    per_row = max(1, max_samples // rows.shape[0])
    if rows.shape[1] <= per_row:
        return rows
    return rows[:, np.sort(rng.choice(rows.shape[1], per_row, replace=False))]


def percentile_ranges(rows: np.ndarray, percentile: float) -> Ranges:
    """Clip each row at its `percentile` at the top; at the bottom at its smallest value when it has no
    negatives (post-ReLU tensors start at exactly 0), otherwise at the mirrored percentile."""
    low_p, high_p = np.percentile(rows.astype(np.float64), [100.0 - percentile, percentile], axis=1)
    smallest = rows.min(axis=1).astype(np.float64)
    lo = np.where(smallest >= 0, smallest, low_p)
    return Ranges(lo, np.maximum(high_p, lo))


def quantization_mse(rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """Mean squared error of each row quantized with each candidate range: rows (G, M), lo and hi (G, K) -> (G, K).

    The codec's own quantize and dequantize do the work, so this is the error the tail will see.
    """
    groups, count = rows.shape
    candidates = lo.shape[1]
    errors = np.empty((groups, candidates))
    step = max(1, _CANDIDATE_ELEMENTS // (groups * count))
    for start in range(0, candidates, step):
        stop = min(candidates, start + step)
        params = range_params(bits, lo[:, start:stop].T.ravel(), hi[:, start:stop].T.ravel())
        tiled = np.broadcast_to(rows, (stop - start, groups, count)).reshape(1, -1, count)
        restored = dequantize(quantize(tiled, params), tiled.shape, params)
        np.subtract(restored, tiled, out=restored)
        squared = np.square(restored, out=restored).mean(axis=2, dtype=np.float64)
        errors[:, start:stop] = squared.reshape(stop - start, groups).T
    return errors


def mse_ranges(
    rows: np.ndarray, start: Ranges, bits: int, steps: int = SEARCH_STEPS, rounds: int = SEARCH_ROUNDS
) -> Ranges:
    """The range with the least quantization error at `bits`, by coordinate search from `start`.

    Each round tries `steps` tops between the bottom and the largest value, then, for rows with
    negatives, `steps` bottoms between the top and the smallest value. The current value is always a
    candidate (and wins ties), so the result never has more error on `rows` than `start` has.
    """
    smallest = rows.min(axis=1).astype(np.float64)
    largest = rows.max(axis=1).astype(np.float64)
    grid = np.linspace(1.0 / steps, 1.0, steps)
    lo, hi = start.lo.astype(np.float64), start.hi.astype(np.float64)
    negative = smallest < 0
    for _ in range(rounds):
        tops = np.column_stack([hi, lo[:, None] + (largest - lo)[:, None] * grid])
        lo, hi = _least_error(rows, np.broadcast_to(lo[:, None], tops.shape), tops, bits)
        if negative.any():
            grid_bottoms = hi[:, None] - (hi - smallest)[:, None] * grid
            bottoms = np.column_stack([lo, np.where(negative[:, None], grid_bottoms, lo[:, None])])
            lo, hi = _least_error(rows, bottoms, np.broadcast_to(hi[:, None], bottoms.shape), bits)
    return Ranges(lo, hi)


def _least_error(rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    best = np.argmin(quantization_mse(rows, lo, hi, bits), axis=1)
    index = np.arange(rows.shape[0])
    return lo[index, best], hi[index, best]


def calibrate_tensor(
    name: str,
    frames: np.ndarray,
    bits: Iterable[int],
    percentile: float = DEFAULT_PERCENTILE,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    rng: np.random.Generator | None = None,
) -> TensorCalibration:
    """Percentile and least-error ranges, per tensor and per channel, of one cut tensor's values over frames."""
    rng = rng if rng is not None else np.random.default_rng(0)
    samples = {
        "per_tensor": subsample(frames.reshape(1, -1), max_samples, rng),
        "per_channel": subsample(channel_rows(frames), max_samples, rng),
    }
    by_percentile = {g: percentile_ranges(rows, percentile) for g, rows in samples.items()}
    by_mse = {b: {g: mse_ranges(rows, by_percentile[g], b) for g, rows in samples.items()} for b in bits}
    return TensorCalibration(name, by_percentile, by_mse)


def manifest_entry(tensor: TensorCalibration, method: str, bits: int, percentile: float, frames: int) -> dict[str, Any]:
    """The manifest's `quantization.calibrated[name]` record: both granularities plus how they were found."""
    whole = tensor.ranges("per_tensor", method, bits)
    channels = tensor.ranges("per_channel", method, bits)
    return {
        "per_tensor": {"min": float(whole.lo[0]), "max": float(whole.hi[0])},
        "per_channel": {"min": channels.lo.tolist(), "max": channels.hi.tolist()},
        "method": method,
        "bits": bits,
        "percentile": percentile,
        "frames": frames,
    }


class _Tail:
    """The tail's session (created once) and its top-1 class for frames' stacked cut tensors."""

    def __init__(self, bundle: Bundle) -> None:
        self.session = InferenceSession(bundle.tail_path)
        self.output = bundle.manifest.output.name
        dynamic = all(c.shape[0] == DYNAMIC for c in bundle.manifest.cut)
        self.batch = TAIL_BATCH if dynamic else 1

    def top1(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """`features[name]` is (N, *tensor_shape); batches of frames go through at once where the batch is dynamic."""
        count = len(next(iter(features.values())))
        batch = self.batch if all(a.shape[1] == 1 for a in features.values()) else 1
        answers = []
        for start in range(0, count, batch):
            stop = min(count, start + batch)
            feeds = {
                name: a[start:stop].reshape((-1, *a.shape[2:])) if batch > 1 else a[start]
                for name, a in features.items()
            }
            scores = np.asarray(self.session.run(feeds)[self.output])
            answers.append(scores.reshape(stop - start, -1).argmax(axis=1))
        return np.concatenate(answers)


class _JpegBaseline:
    """What a robot would send instead of features: the frame as a JPEG, run through the unsplit model.

    The model-size JPEG is the image the model actually sees (after the bundle's resize or crop),
    recovered exactly from the model input, so JPEG loss is the only difference from the reference.
    """

    def __init__(self, head: HeadPipeline, tail: _Tail) -> None:
        self.head, self.tail = head, tail
        spec = head.bundle.manifest.input
        self._input = spec.name
        self._mean = np.asarray(spec.mean, dtype=np.float64).reshape(3, 1, 1)
        self._std = np.asarray(spec.std, dtype=np.float64).reshape(3, 1, 1)
        self._rgb_model = spec.color_order == "RGB"
        self._normalise = Preprocessor(dataclasses.replace(spec, resize="stretch", resize_size=None))
        self.keys = [("jpeg", q) for q in JPEG_QUALITIES] + [("jpeg_full", FULL_SIZE_QUALITY)]
        self.bytes: dict[tuple[str, int], list[int]] = {k: [] for k in self.keys}
        self.top1: dict[tuple[str, int], list[int]] = {k: [] for k in self.keys}

    def add(self, frame: np.ndarray) -> None:
        small = self._model_size_bgr(frame)
        for quality in JPEG_QUALITIES:
            decoded = self._round_trip(("jpeg", quality), small, quality)
            outputs = self.head.session.run({self._input: self._normalise(decoded, "bgr8")})
            self._answer(("jpeg", quality), {n: outputs[n] for n in self.head.cut_names})
        key = ("jpeg_full", FULL_SIZE_QUALITY)
        decoded = self._round_trip(key, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), FULL_SIZE_QUALITY)
        self._answer(key, self.head.features(decoded, "bgr8")[0])

    def _model_size_bgr(self, frame: np.ndarray) -> np.ndarray:
        chw = self.head.preprocess(frame, "rgb8")[0].astype(np.float64)
        pixels = np.clip(np.rint((chw * self._std + self._mean) * 255.0), 0, 255).astype(np.uint8)
        hwc = pixels.transpose(1, 2, 0)
        return np.ascontiguousarray(hwc[:, :, ::-1] if self._rgb_model else hwc)

    def _round_trip(self, key: tuple[str, int], bgr: np.ndarray, quality: int) -> np.ndarray:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise CalibrationError(f"OpenCV could not JPEG-encode a {bgr.shape[1]}x{bgr.shape[0]} frame")
        self.bytes[key].append(int(data.size))
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert decoded is not None  # OpenCV decodes the JPEG it just encoded
        return decoded

    def _answer(self, key: tuple[str, int], features: Mapping[str, np.ndarray]) -> None:
        self.top1[key].append(int(self.tail.top1({n: a[np.newaxis] for n, a in features.items()})[0]))

    def results(self, reference: np.ndarray) -> list[Result]:
        return [
            Result(
                method,
                None,
                None,
                quality,
                float(np.mean(self.bytes[(method, quality)])),
                float(np.mean(np.asarray(self.top1[(method, quality)]) == reference)),
            )
            for method, quality in self.keys
        ]


def collect(
    head: HeadPipeline, tail: _Tail, source: FrameSource, count: int, progress: bool = False
) -> tuple[dict[str, np.ndarray], _JpegBaseline]:
    """One pass over the frames: each frame's float cut tensors (stacked per tensor) and its JPEG baselines."""
    kept: dict[str, list[np.ndarray]] = {name: [] for name in head.cut_names}
    jpeg = _JpegBaseline(head, tail)
    with tqdm(total=count, desc="frames", unit="frame", disable=not progress, file=sys.stderr) as bar:
        for frame in source.frames(count):
            features = head.features(frame, "rgb8")[0]
            for name in head.cut_names:
                kept[name].append(features[name])
            jpeg.add(frame)
            bar.update()
    if not kept[head.cut_names[0]]:
        raise CalibrationError("the image source gave no frames that could be read; check --images (and --topic)")
    features = {name: np.stack(arrays) for name, arrays in kept.items()}
    for name, values in features.items():
        if not np.all(np.isfinite(values)):
            raise CalibrationError(
                f"cut tensor '{name}' holds NaN or infinite values; the head model or the bundle's input spec is broken"
            )
    return features, jpeg


def evaluate(
    features: Mapping[str, np.ndarray],
    tail: _Tail,
    reference: np.ndarray,
    encodings: Mapping[tuple[str, int], Mapping[str, QuantParams | None]],
    progress: bool = False,
) -> list[Result]:
    """Encode every frame's tensors each way (params None = raw floats of that many bits), decode them as the
    tail would, and run the tail once per way; every codec's bytes come from the same packed payload."""
    results: list[Result] = []
    for (method, bits), params in tqdm(encodings.items(), desc="encodings", disable=not progress, file=sys.stderr):
        sizes = dict.fromkeys(CODEC_NAMES, 0)
        decoded = {}
        for name, frames in features.items():
            restored = np.empty_like(frames)
            for i, x in enumerate(frames):
                tensor = encode(name, x, params[name], CODEC_NONE, raw_bits=bits if params[name] is None else 32)
                for codec in CODEC_NAMES:
                    sizes[codec] += len(compress(tensor.data, CODEC_BY_NAME[codec]))
                restored[i] = decode(tensor)
            decoded[name] = restored
        agreement = float(np.mean(tail.top1(decoded) == reference))
        results.extend(Result(method, bits, c, None, sizes[c] / len(reference), agreement) for c in CODEC_NAMES)
    return results


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
    progress: bool = False,
) -> Calibration:
    """Measure a bundle's cut tensors on `count` frames from `images` and compare all ways to send them.

    Nothing is written: `update_quantization(bundle_path, result.quantization)` stores the ranges.
    `bits` (default: the bundle's own quantization bits, or 4 for raw floats) is what the stored
    least-error ranges are searched for.
    """
    bundle = load_bundle(bundle_path)
    quantization = bundle.manifest.quantization
    if bits is None:
        bits = quantization.bits if quantization.bits <= 8 else 4
    _check_options(count, bits, method, percentile, max_samples)
    source = open_source(images, seed=seed, topic=topic)
    try:
        head = HeadPipeline(bundle)
        tail = _Tail(bundle)
        features, jpeg = collect(head, tail, source, count, progress)
    finally:
        source.close()
    frames = len(next(iter(features.values())))
    compared = sorted(set(BITS) | {bits})
    rng = np.random.default_rng(seed)
    tensors = {
        name: calibrate_tensor(name, values, compared, percentile, max_samples, rng)
        for name, values in features.items()
    }
    clip = (float(quantization.clip_min), float(quantization.clip_max))
    reference = tail.top1(features)
    results = evaluate(features, tail, reference, encodings_for(tensors, compared, clip), progress)
    results.extend(jpeg.results(reference))
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
    )


def _check_options(count: int, bits: int, method: str, percentile: float, max_samples: int) -> None:
    if count < 1:
        raise CalibrationError(f"--count must be at least 1, got {count}")
    if not 1 <= bits <= 8:
        raise CalibrationError(f"--bits must be 1..8 (the quantized widths the head can send), got {bits}")
    if method not in RANGE_METHODS:
        raise CalibrationError(f"--method must be one of {', '.join(RANGE_METHODS)}, got {method!r}")
    if not 50.0 < percentile <= 100.0:
        raise CalibrationError(f"--percentile must be above 50 and at most 100, e.g. 99.99; got {percentile}")
    if max_samples < 1:
        raise CalibrationError(f"max_samples must be at least 1, got {max_samples}")


def format_table(calibration: Calibration) -> str:
    """The comparison as text: split computing per method and bits (agreement, bytes per codec), then JPEG."""
    by_key: dict[tuple[str, int | None], dict[str, Result]] = {}
    for r in calibration.results:
        if r.codec is not None:
            by_key.setdefault((r.method, r.bits), {})[r.codec] = r
    low, high = calibration.clip
    header = ["method", "bits", "agreement", *(f"{c} B/frame" for c in CODEC_NAMES)]
    rows = [
        [
            f"clip {low:g}..{high:g}" if method == "clip" else method,
            str(bits),
            _percent(next(iter(codecs.values())).agreement),
            *(f"{codecs[c].bytes_per_frame:,.0f}" for c in CODEC_NAMES),
        ]
        for (method, bits), codecs in by_key.items()
    ]
    jpeg_rows = [
        [
            "jpeg at model input size" if r.method == "jpeg" else "jpeg of the full frame",
            str(r.quality),
            _percent(r.agreement),
            f"{r.bytes_per_frame:,.0f}",
        ]
        for r in calibration.results
        if r.codec is None
    ]
    title = (
        f"{calibration.bundle}: {calibration.frames} frames from {calibration.images}; agreement = top-1 equal to "
        f"the unsplit model; ranges for the manifest: {calibration.method} at {calibration.bits} bits"
    )
    return "\n".join(
        [
            title,
            "",
            _columns(header, rows),
            "",
            _columns(["what a robot would send instead", "quality", "agreement", "B/frame"], jpeg_rows),
        ]
    )


def _percent(fraction: float) -> str:
    return f"{100.0 * fraction:.1f} %"


def _columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)


def write_plot(calibration: Calibration, out: str | os.PathLike, codec: str = "zstd") -> None:
    """PNG of bytes per frame (log scale, split methods with `codec`) against agreement, one series per method."""
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.add_subplot()
    series: dict[str, list[Result]] = {}
    for r in calibration.results:
        if r.codec in (codec, None):
            series.setdefault(r.method, []).append(r)
    for method, points in series.items():
        points.sort(key=_plot_order)
        label = _plot_label(calibration, method, codec)
        ax.plot([p.bytes_per_frame for p in points], [100.0 * p.agreement for p in points], "o-", label=label)
        for p in points:
            note = f"q{p.quality}" if p.quality is not None else f"{p.bits}b"
            ax.annotate(
                note, (p.bytes_per_frame, 100.0 * p.agreement), textcoords="offset points", xytext=(3, 3), fontsize=7
            )
    ax.set_xscale("log")
    ax.set_xlabel("bytes per frame")
    ax.set_ylabel("top-1 agreement with the unsplit model (%)")
    ax.set_title(f"{calibration.bundle.name}: {calibration.frames} frames from {calibration.images}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def _plot_order(r: Result) -> int:
    """A point's place along its series: its bits, or for JPEG its quality."""
    order = r.bits if r.bits is not None else r.quality
    assert order is not None  # every Result has bits or a quality
    return order


def _plot_label(calibration: Calibration, method: str, codec: str) -> str:
    if method == "clip":
        low, high = calibration.clip
        return f"clip {low:g}..{high:g} ({codec})"
    if method == "raw":
        return f"raw float ({codec})"
    if method == "jpeg":
        return "JPEG at model input size"
    if method == "jpeg_full":
        return "JPEG of the full frame"
    return f"{method.replace('_', ' ')} ({codec})"


def write_json(calibration: Calibration, out: str | os.PathLike, written: bool) -> None:
    text = json.dumps(calibration.to_json(written), indent=2) + "\n"
    atomic_write_text(out, text)


def _check_output(path: str | None, option: str) -> None:
    """Refuse an output path before the long run rather than after it."""
    if path is None:
        return
    out = Path(path)
    if out.is_dir():
        raise CalibrationError(f"{option} {path}: is a directory; give a file name")
    if not out.parent.is_dir():
        raise CalibrationError(f"{option} {path}: directory {out.parent} does not exist")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calibrate",
        description="Measure a bundle's cut tensors on real frames, store clip ranges (per tensor and per channel) "
        "in its manifest, and print a table of bits x range method x codec against top-1 agreement with the "
        "unsplit model and bytes per frame, next to sending the frame as JPEG.",
    )
    parser.add_argument("bundle", help="bundle directory written by split")
    parser.add_argument(
        "--images",
        required=True,
        metavar="PATH",
        help="'generator' (synthetic camera frames), a folder of images, a video file, or a rosbag2 folder "
        "(with --topic)",
    )
    parser.add_argument("--topic", default="", help="image topic of a rosbag2 (sensor_msgs/Image or CompressedImage)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"frames to use (default {DEFAULT_COUNT})")
    parser.add_argument(
        "--bits",
        type=int,
        default=None,
        help="bit width the stored ranges are searched for (default: the bundle's quantization.bits, 4 for raw floats)",
    )
    parser.add_argument(
        "--method",
        choices=RANGE_METHODS,
        default="mse",
        help="ranges to store: mse = least quantization error at --bits (default), percentile = --percentile clip",
    )
    parser.add_argument(
        "--percentile",
        type=float,
        default=DEFAULT_PERCENTILE,
        help=f"percentile clip, also where the mse search starts (default {DEFAULT_PERCENTILE})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator and of the value sampling")
    parser.add_argument("--json", metavar="FILE", help="write the results and the stored ranges as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write a PNG of bytes per frame against agreement")
    parser.add_argument("--dry-run", action="store_true", help="measure and report, but leave the manifest as it is")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    _check_output(args.json, "--json")
    _check_output(args.plot, "--plot")
    progress = not args.quiet and sys.stderr.isatty()
    calibration = calibrate(
        args.bundle,
        args.images,
        args.count,
        args.topic,
        args.bits,
        args.method,
        args.percentile,
        args.seed,
        progress=progress,
    )
    if not args.dry_run:
        update_quantization(calibration.bundle, calibration.quantization)
    if args.json:
        write_json(calibration, args.json, written=not args.dry_run)
    if args.plot:
        write_plot(calibration, args.plot)
    print(format_table(calibration))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools calibrate`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
