"""calibrate: clip ranges for a bundle's cut tensors from real frames, and what each choice costs.

The head spreads a few bits of code over a clip range; that range decides whether the tail still
gives the unsplit model's answer. The seed's fixed 0..32 clip is a guess. This tool measures the cut
tensors on frames like the robot's camera sends, finds ranges per tensor and per channel (a high
percentile, and the range with the least quantization error at the target bits), stores them in the
bundle's manifest, and reports what every bit width, range method and codec costs in bytes per frame
and in top-1 agreement with the unsplit model, next to JPEG, which a robot would send otherwise.

The head runs once per frame and its float outputs are kept; every (bits, method) is a re-encoding
of those, and the tail runs once per (bits, method): codecs are lossless, they only change bytes.
With --eval-images the ranges come from one set of frames and the table from another (photos:train
and photos:test share no photo), so the agreement is measured on frames the ranges never saw.
Everything runs through HeadPipeline and TailPipeline, as the nodes do.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from splitcomp_core.bundle import QuantizationSpec, load_bundle, update_quantization
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
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.cli import run_cli
from splitcomp_tools.frames import FrameSource, open_source
from splitcomp_tools.model.baseline import FULL_FRAME, MODEL_SIZE, JpegBaseline

BITS = (2, 3, 4, 6, 8)
RAW_FLOAT_BITS = (16, 32)
GRANULARITIES = ("per_tensor", "per_channel")
RANGE_METHODS = ("mse", "percentile")
QUANTIZED_METHODS = ("clip", *tuple(f"{g}_{m}" for g in GRANULARITIES for m in ("percentile", "mse")))
DEFAULT_COUNT = 200
DEFAULT_PERCENTILE = 99.99
DEFAULT_MAX_SAMPLES = 1 << 18  # values per tensor that the range searches look at
SEARCH_STEPS = 48
SEARCH_ROUNDS = 2
_CANDIDATE_ELEMENTS = 1 << 22  # floats quantized at once while scoring candidate ranges


# The head node's `quantization` mode that sends each table method's ranges.
HEAD_MODES = {"clip": "clip", "per_tensor": "calibrated", "per_channel": "per_channel"}


Progress = Callable[[str, int, int], None]  # (phase, done, total)


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

    def setting(self) -> str:
        """How the head node is told to send this way, e.g. "bits 6, quantization per_channel, codec zstd"."""
        if self.bits is None or self.codec is None:
            return f"JPEG q{self.quality}"
        if self.method == "raw":
            return f"bits {self.bits}, codec {self.codec}"
        return f"bits {self.bits}, quantization {head_mode(self.method)}, codec {self.codec}"


def head_mode(method: str) -> str:
    """The head's `quantization` parameter for a QUANTIZED_METHODS name ("per_channel_mse" -> "per_channel")."""
    return HEAD_MODES[method.rsplit("_", 1)[0] if method != "clip" else "clip"]


@dataclass
class Calibration:
    """Everything one run found; `quantization` is the manifest section `calibrate` writes.

    `frames` were measured for the ranges; the table's agreement and bytes come from `eval_frames` frames
    of `eval_images` (the same frames when no separate evaluation source was given).
    """

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
    eval_images: str | None = None
    eval_frames: int = 0
    default: Result | None = None  # the table row made the head's default by with_default()

    def to_json(self, written: bool) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "images": self.images,
            "frames": self.frames,
            "eval_images": self.eval_images,
            "eval_frames": self.eval_frames,
            "bits": self.bits,
            "method": self.method,
            "percentile": self.percentile,
            "clip": list(self.clip),
            "written": written,
            "calibrated": self.quantization.calibrated,
            "mode": self.quantization.mode,
            "codec": self.quantization.codec,
            "default": None if self.default is None else dataclasses.asdict(self.default),
            "results": [dataclasses.asdict(r) for r in self.results],
        }

    def cheapest(self, target: float) -> Result | None:
        """The way to send features with the fewest bytes whose agreement reaches `target`, or None.

        Among equal bytes the higher agreement wins, then fewer bits; JPEG rows are not candidates.
        """
        fitting = [r for r in self.results if r.codec is not None and r.agreement >= target]
        if not fitting:
            return None
        return min(fitting, key=lambda r: (r.bytes_per_frame, -r.agreement, r.bits or 0))

    def best(self) -> Result:
        """The feature encoding that agrees most often (fewest bytes among those): what to use if none reaches a target."""
        return min((r for r in self.results if r.codec is not None), key=lambda r: (-r.agreement, r.bytes_per_frame))

    def with_default(self, choice: Result) -> Calibration:
        """This calibration with `choice` (one of `results`) as the head's default encoding in `quantization`.

        The stored ranges become `choice`'s range method at `choice`'s bits; a clip or raw choice keeps
        this run's stored ranges and sets only the head's mode, bits and codec.
        """
        if choice.codec is None or choice.bits is None:
            raise CalibrationError("a JPEG row is not a feature encoding the head can send")
        method, bits, calibrated = self.method, self.bits, self.quantization.calibrated
        mode = head_mode(choice.method) if choice.method in QUANTIZED_METHODS else self.quantization.mode
        if choice.method in QUANTIZED_METHODS[1:]:
            method, bits = choice.method.rsplit("_", 1)[1], choice.bits
            calibrated = {
                name: manifest_entry(t, method, bits, self.percentile, self.frames) for name, t in self.tensors.items()
            }
        quantization = dataclasses.replace(
            self.quantization, calibrated=calibrated, mode=mode, bits=choice.bits, codec=choice.codec
        )
        return dataclasses.replace(self, method=method, bits=bits, quantization=quantization, default=choice)


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


def collect(
    head: HeadPipeline,
    source: FrameSource,
    count: int,
    jpeg: JpegBaseline | None = None,
    progress: bool = False,
    what: str = "frames",
    on_progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """One pass over the frames: each frame's float cut tensors, stacked per tensor (and its JPEG baselines)."""
    kept: dict[str, list[np.ndarray]] = {name: [] for name in head.cut_names}
    with tqdm(total=count, desc=what, unit="frame", disable=not progress, file=sys.stderr) as bar:
        for done, frame in enumerate(source.frames(count), 1):
            features = head.features(frame, "rgb8")[0]
            for name in head.cut_names:
                kept[name].append(features[name])
            if jpeg is not None:
                jpeg.add(frame)
            bar.update()
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
    reference: np.ndarray,
    encodings: Mapping[tuple[str, int], Mapping[str, QuantParams | None]],
    progress: bool = False,
    on_progress: Progress | None = None,
) -> list[Result]:
    """Encode every frame's tensors each way (params None = raw floats of that many bits), decode them as the
    tail would, and run the tail once per way; every codec's bytes come from the same packed payload."""
    results: list[Result] = []
    ways = tqdm(encodings.items(), desc="encodings", disable=not progress, file=sys.stderr)
    for done, ((method, bits), params) in enumerate(ways, 1):
        if on_progress is not None:
            on_progress("encodings", done - 1, len(encodings))
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
    eval_images: str | None = None,
    eval_count: int | None = None,
    on_progress: Progress | None = None,
) -> Calibration:
    """Measure a bundle's cut tensors on `count` frames from `images` and compare all ways to send them.

    Nothing is written: `update_quantization(bundle_path, result.quantization)` stores the ranges.
    `bits` (default: the bundle's own quantization bits, or 4 for raw floats) is what the stored
    least-error ranges are searched for. With `eval_images`, the comparison runs on `eval_count`
    (default `count`) frames from there, a source opened with seed + 1 so that even the same source
    gives other frames; without it, on the calibration frames themselves. `progress` draws bars on
    stderr; `on_progress(phase, done, total)` reports the phases "frames" and "encodings" to a caller.
    """
    bundle = load_bundle(bundle_path)
    quantization = bundle.manifest.quantization
    if bits is None:
        bits = quantization.bits if quantization.bits <= 8 else 4
    eval_count = count if eval_count is None else eval_count
    _check_options(count, bits, method, percentile, max_samples, eval_count)
    sources = [open_source(images, seed=seed, topic=topic)]
    try:
        if eval_images:  # opened before the long first pass, so a wrong name fails at once
            sources.append(open_source(eval_images, seed=seed + 1, topic=topic))
        head = HeadPipeline(bundle)
        tail = TailPipeline(bundle)
        jpeg = JpegBaseline(head, tail)
        features = collect(head, sources[0], count, None if eval_images else jpeg, progress, images, on_progress)
        judged = (
            collect(head, sources[1], eval_count, jpeg, progress, eval_images, on_progress) if eval_images else features
        )
    finally:
        for source in sources:
            source.close()
    frames = len(next(iter(features.values())))
    compared = sorted(set(BITS) | {bits})
    rng = np.random.default_rng(seed)
    tensors = {
        name: calibrate_tensor(name, values, compared, percentile, max_samples, rng)
        for name, values in features.items()
    }
    clip = (float(quantization.clip_min), float(quantization.clip_max))
    reference = tail.top1(judged)
    results = evaluate(judged, tail, reference, encodings_for(tensors, compared, clip), progress, on_progress)
    results.extend(
        Result(r.method, None, None, r.quality, r.bytes_per_frame, r.agreement) for r in jpeg.results(reference)
    )
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
    )


def _check_options(
    count: int, bits: int, method: str, percentile: float, max_samples: int, eval_count: int | None = None
) -> None:
    if count < 1:
        raise CalibrationError(f"--count must be at least 1, got {count}")
    if eval_count is not None and eval_count < 1:
        raise CalibrationError(f"--eval-count must be at least 1, got {eval_count}")
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
            "jpeg at model input size" if r.method == MODEL_SIZE else "jpeg of the full frame",
            str(r.quality),
            _percent(r.agreement),
            f"{r.bytes_per_frame:,.0f}",
        ]
        for r in calibration.results
        if r.codec is None
    ]
    judged = (
        f"; agreement on {calibration.eval_frames} other frames from {calibration.eval_images}"
        if calibration.eval_images
        else ""
    )
    q = calibration.quantization
    title = (
        f"{calibration.bundle}: ranges from {calibration.frames} frames from {calibration.images}{judged}; "
        f"agreement = top-1 equal to the unsplit model\nstored: {calibration.method} ranges at {calibration.bits} "
        f"bits; the head's default: bits {q.bits}, quantization {q.mode}, codec {q.codec}"
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


def describe_choice(calibration: Calibration, target: float) -> str:
    """One line: which encoding is the head's default now, and whether it reaches `target`."""
    chosen = calibration.default
    if chosen is None:
        return "head default: as stored (no encoding was chosen from the table)"
    reached = "reaches" if chosen.agreement >= target else "is the best; none reaches"
    return (
        f"head default: {chosen.method} at {chosen.bits} bits with codec {chosen.codec}: {_percent(chosen.agreement)} "
        f"agreement in {chosen.bytes_per_frame:,.0f} B/frame ({reached} {_percent(target)})"
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
    judged = (
        f"; measured on {calibration.eval_frames} from {calibration.eval_images}" if calibration.eval_images else ""
    )
    ax.set_title(f"{calibration.bundle.name}: ranges from {calibration.frames} frames of {calibration.images}{judged}")
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
    if method == MODEL_SIZE:
        return "JPEG at model input size"
    if method == FULL_FRAME:
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
        help="frames to find the ranges on: 'photos:train' (real photos from the installed wheels), 'generator' "
        "(synthetic frames of the demo's shapes), a folder of images, a video file, or a rosbag2 folder (with --topic)",
    )
    parser.add_argument(
        "--eval-images",
        metavar="PATH",
        help="measure the table on these frames instead (e.g. photos:test, which shares no photo with photos:train); "
        "default: the calibration frames themselves",
    )
    parser.add_argument("--topic", default="", help="image topic of a rosbag2 (sensor_msgs/Image or CompressedImage)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"frames to use (default {DEFAULT_COUNT})")
    parser.add_argument("--eval-count", type=int, help="frames of --eval-images to use (default: --count)")
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
    parser.add_argument(
        "--target-agreement",
        type=float,
        metavar="FRACTION",
        help="store as the head's default the encoding (bits, range method, codec) with the fewest bytes whose "
        "agreement reaches FRACTION, e.g. 0.99 (else the best one), instead of --bits with --method per tensor",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the frame source and of the value sampling (evaluation: seed + 1)"
    )
    parser.add_argument("--json", metavar="FILE", help="write the results and the stored ranges as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write a PNG of bytes per frame against agreement")
    parser.add_argument("--dry-run", action="store_true", help="measure and report, but leave the manifest as it is")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    _check_output(args.json, "--json")
    _check_output(args.plot, "--plot")
    if args.target_agreement is not None and not 0.0 < args.target_agreement <= 1.0:
        raise CalibrationError(
            f"--target-agreement must be above 0 and at most 1, e.g. 0.99; got {args.target_agreement}"
        )
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
        eval_images=args.eval_images,
        eval_count=args.eval_count,
    )
    if args.target_agreement is not None:
        choice = calibration.cheapest(args.target_agreement)
        calibration = calibration.with_default(choice or calibration.best())
    if not args.dry_run:
        update_quantization(calibration.bundle, calibration.quantization)
    if args.json:
        write_json(calibration, args.json, written=not args.dry_run)
    if args.plot:
        write_plot(calibration, args.plot)
    print(format_table(calibration))
    if args.target_agreement is not None:
        print(describe_choice(calibration, args.target_agreement))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools calibrate`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
