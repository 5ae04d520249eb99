"""Clip-range search of `calibrate`: sane percentile ranges, and least-error ranges that really have less error.

Errors are measured independently of the search, by encoding and decoding with the wire codec.
"""

import numpy as np
import pytest

from splitcomp_core.codec import CODEC_NONE, decode, encode, range_params
from splitcomp_tools.model.ranges import (
    calibrate_tensor,
    channel_rows,
    mse_ranges,
    percentile_ranges,
    quantization_mse,
)

CHANNELS = 6


def _features(seed: int = 0, frames: int = 12) -> np.ndarray:
    """(frames, 1, C, 8, 8) cut tensors: post-ReLU channels of different scales with rare outliers, one dead
    channel (all zero) and one signed channel, as a real cut tensor has."""
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.normal(0.0, 1.0, (frames, 1, CHANNELS, 8, 8)), 0.0)
    x *= np.array([0.5, 1.0, 2.0, 4.0, 1.0, 1.0]).reshape(1, 1, CHANNELS, 1, 1)
    x[:, :, 1] += (rng.random((frames, 1, 8, 8)) < 0.003) * 25.0  # outliers in channel 1
    x[:, :, 4] = 0.0  # a dead channel
    x[:, :, 5] = rng.normal(0.0, 1.5, (frames, 1, 8, 8))  # signed: a cut before the activation
    return x.astype(np.float32)


def _codec_mse(frames: np.ndarray, lo, hi, bits: int) -> float:
    """Mean squared error of sending every frame through encode -> decode with the range lo..hi."""
    params = range_params(bits, lo, hi)
    errors = [np.mean((decode(encode("t", x, params, CODEC_NONE)) - x) ** 2, dtype=np.float64) for x in frames]
    return float(np.mean(errors))


def test_channel_rows_groups_values_by_channel():
    frames = _features()
    rows = channel_rows(frames)
    assert rows.shape == (CHANNELS, 12 * 8 * 8)
    for c in range(CHANNELS):
        np.testing.assert_array_equal(np.sort(rows[c]), np.sort(frames[:, :, c].ravel()))
    assert channel_rows(np.arange(10, dtype=np.float32).reshape(5, 2)).shape == (1, 10)


def test_percentile_range_starts_at_zero_after_relu_and_mirrors_for_signed_values():
    rng = np.random.default_rng(1)
    relu = np.maximum(rng.normal(size=(1, 20000)), 0).astype(np.float32)
    signed = rng.normal(size=(1, 20000)).astype(np.float32)
    r = percentile_ranges(np.vstack([relu, signed]), 99.0)
    assert r.lo[0] == 0.0
    assert r.hi[0] == pytest.approx(np.percentile(relu, 99.0))
    assert r.lo[1] == pytest.approx(np.percentile(signed, 1.0))
    assert r.hi[1] == pytest.approx(np.percentile(signed, 99.0))
    assert r.lo[1] < -2.0 and r.hi[1] > 2.0


def test_ranges_are_sane_per_tensor_and_per_channel():
    frames = _features()
    tensor = calibrate_tensor("t", frames, bits=[2, 4, 8], percentile=99.9, max_samples=1 << 20)
    observed_lo, observed_hi = float(frames.min()), float(frames.max())
    per_channel_lo = frames.min(axis=(0, 1, 3, 4))
    per_channel_hi = frames.max(axis=(0, 1, 3, 4))
    for method, bits in (("percentile", 4), ("mse", 2), ("mse", 4), ("mse", 8)):
        whole = tensor.ranges("per_tensor", method, bits)
        assert whole.lo.shape == whole.hi.shape == (1,)
        assert observed_lo <= whole.lo[0] < whole.hi[0] <= observed_hi
        channels = tensor.ranges("per_channel", method, bits)
        assert channels.lo.shape == channels.hi.shape == (CHANNELS,)
        assert np.all(channels.lo <= channels.hi)
        assert np.all(channels.lo >= per_channel_lo) and np.all(channels.hi <= per_channel_hi)
        assert np.all(channels.lo >= observed_lo) and np.all(channels.hi <= observed_hi)
        assert channels.lo[4] == channels.hi[4] == 0.0  # the dead channel decodes to exactly what it was
        assert channels.lo[5] < 0 < channels.hi[5]
        assert np.all(channels.lo[:5] == 0.0)  # post-ReLU channels start at their minimum, 0
    # the outliers stretch the percentile range of channel 1 far beyond the others'
    assert tensor.ranges("per_channel", "percentile", 4).hi[1] > 10.0


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_least_error_ranges_beat_the_percentile_ranges(bits):
    frames = _features(seed=bits)
    tensor = calibrate_tensor("t", frames, bits=[bits], percentile=99.99, max_samples=1 << 20)
    for granularity in ("per_tensor", "per_channel"):
        start = tensor.ranges(granularity, "percentile", bits)
        best = tensor.ranges(granularity, "mse", bits)
        lo_start, hi_start = (start.lo[0], start.hi[0]) if granularity == "per_tensor" else (start.lo, start.hi)
        lo_best, hi_best = (best.lo[0], best.hi[0]) if granularity == "per_tensor" else (best.lo, best.hi)
        percentile_error = _codec_mse(frames, lo_start, hi_start, bits)
        searched_error = _codec_mse(frames, lo_best, hi_best, bits)
        assert searched_error <= percentile_error
        if bits <= 4:  # at few bits, the 99.99th percentile (here: the outliers) is a poor clip
            assert searched_error < percentile_error * (0.5 if granularity == "per_tensor" else 0.95)


def test_search_moves_the_bottom_only_for_signed_values():
    rng = np.random.default_rng(2)
    signed = rng.normal(0.0, 1.0, (1, 50000)).astype(np.float32)
    result = mse_ranges(signed, percentile_ranges(signed, 99.99), bits=3)
    assert -3.0 < result.lo[0] < -0.5 and 0.5 < result.hi[0] < 3.0
    assert abs(result.lo[0] + result.hi[0]) < 0.5  # a symmetric distribution gets a nearly symmetric range
    relu = np.maximum(signed, 0.0)
    assert mse_ranges(relu, percentile_ranges(relu, 99.99), bits=3).lo[0] == 0.0


def test_quantization_mse_is_the_codec_error():
    frames = _features(seed=5)
    rows = channel_rows(frames)
    lo = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.5, 0.0], [0.0, 0.0], [-2.0, -1.0]])
    hi = np.array([[1.0, 3.0], [8.0, 30.0], [2.0, 5.0], [6.0, 9.0], [0.0, 1.0], [2.0, 4.0]])
    errors = quantization_mse(rows, lo, hi, bits=4)
    assert errors.shape == (CHANNELS, 2)
    for k in range(2):
        for c in range(CHANNELS):
            x = frames[:, :, c]
            params = range_params(4, lo[c, k], hi[c, k])
            expected = np.mean((decode(encode("t", x, params, CODEC_NONE)) - x) ** 2, dtype=np.float64)
            assert errors[c, k] == pytest.approx(expected, rel=1e-5, abs=1e-12)


def test_sampling_keeps_ranges_close_to_the_full_data():
    frames = _features(seed=7, frames=64)
    full = calibrate_tensor("t", frames, bits=[4], max_samples=1 << 22)
    sampled = calibrate_tensor("t", frames, bits=[4], max_samples=4096, rng=np.random.default_rng(3))
    a, b = full.ranges("per_tensor", "mse", 4), sampled.ranges("per_tensor", "mse", 4)
    assert b.lo[0] == pytest.approx(a.lo[0], rel=0.35)
    assert b.hi[0] == pytest.approx(a.hi[0], rel=0.35)
