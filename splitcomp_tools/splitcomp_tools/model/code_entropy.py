"""How few bytes a lossless coder could send a clip's codes in: their empirical entropies, per channel.

`bench video` prints these beside the codecs' bytes, so that a byte goal a codec misses can be told apart
from one no lossless coder of that kind reaches. Each is measured on the very frames it describes (its
tables fitted in-sample), so it is an optimistic bound for coders of its form, over every frame after the
first of a clip (each coded against the frame before it):

- `intra`: the order-0 entropy of each channel's codes: a per-channel table on key frames;
- `delta`: the order-0 entropy of each channel's (code - previous code) mod 2**bits: the entropy codec's
  P-frames;
- `given_reference`: the entropy of each code given the previous frame's code at the same place, per
  channel: any coder that conditions a code on its reference code. It is never above the other two.

Channels are counted as splitcomp_core.entropy counts them for its tables (`channel_counts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from splitcomp_core.entropy import channel_counts

BOUNDS = ("intra", "delta", "given_reference")


def code_entropy_bytes(frames: Sequence[Mapping[str, np.ndarray]], bits: int) -> dict[str, float]:
    """Bytes per frame under each bound (BOUNDS), over frames 2..n of `frames`: one clip's codes, in order."""
    if len(frames) < 2:
        raise ValueError(f"the bounds need at least 2 frames in order, got {len(frames)}")
    symbols = 1 << bits
    total = dict.fromkeys(BOUNDS, 0.0)
    for name in frames[0]:
        codes = np.stack([frame[name] for frame in frames]).astype(np.int64)
        current, previous = codes[1:], codes[:-1]
        total["intra"] += _entropy_bits(channel_counts(current, bits))
        total["delta"] += _entropy_bits(channel_counts((current - previous) % symbols, bits))
        pairs = channel_counts(previous * symbols + current, 2 * bits)  # per channel: (previous, current) pairs
        total["given_reference"] += _entropy_bits(pairs.reshape(-1, symbols))  # a row per channel and previous code
    return {bound: bits_sum / 8.0 / (len(frames) - 1) for bound, bits_sum in total.items()}


def _entropy_bits(counts: np.ndarray) -> float:
    """Total bits of the counted symbols, each row (context) coded with its own in-sample frequencies."""
    counts = counts.astype(np.float64)
    per_context = counts.sum(axis=1, keepdims=True)
    seen = counts > 0
    return float(-(counts[seen] * np.log2((counts / np.maximum(per_context, 1.0))[seen])).sum())
