"""Clip ranges of cut tensors, found on real values: a high percentile, and the range with the least
quantization error at a bit width, per tensor and per channel.

The head spreads a few bits of code over a clip range; that range decides whether the tail still
gives the unsplit model's answer. `calibrate` measures the values; this finds the ranges and turns
them into the manifest's `quantization.calibrated` records. Pure numpy, through the codec's own
quantize and dequantize, so a range's error is the one the tail will see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from splitcomp_core.codec import dequantize, quantize, range_params

GRANULARITIES = ("per_tensor", "per_channel")
RANGE_METHODS = ("mse", "percentile")
DEFAULT_PERCENTILE = 99.99
DEFAULT_MAX_SAMPLES = 1 << 18  # values per tensor that the range searches look at
SEARCH_STEPS = 48
SEARCH_ROUNDS = 2
_CANDIDATE_ELEMENTS = 1 << 22  # floats quantized at once while scoring candidate ranges


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
