"""Entropy tables for a head's cut tensors, fitted on the codes its own encoder makes of calibration frames.

What `calibrate` (or a benchmark) calls: the head quantizes each frame's features exactly as it will in
service, under each requested encoding, and splitcomp_core.entropy counts the codes. Frames are taken
in the order given, so consecutive frames of a video also give the P-frames' delta tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from splitcomp_core.codec import CODE_BITS
from splitcomp_core.entropy import EntropyTable, fit_table
from splitcomp_core.errors import CodecError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.quantization import EncoderConfig


def fit_head_tables(
    head: HeadPipeline, features: Sequence[Mapping[str, np.ndarray]], configs: Iterable[EncoderConfig]
) -> list[EntropyTable]:
    """One table per cut tensor and encoding (bits 1..8 and range mode of each config); the head's settings are
    restored afterwards."""
    before = head.config
    tables: dict[tuple[str, int, str], EntropyTable] = {}
    try:
        for config in configs:
            if config.bits not in CODE_BITS:
                raise CodecError(f"entropy tables are for codes of 1..8 bits, not {config.bits}")
            head.configure(EncoderConfig(config.bits, config.mode, config.clip_min, config.clip_max, "none"))
            frames = [head.encode_codes(f)[1] or {} for f in features]
            for name in head.cut_names:
                tables[(name, config.bits, config.mode)] = fit_table(
                    name, config.bits, config.mode, [codes[name] for codes in frames]
                )
    finally:
        head.configure(before)
    return list(tables.values())
