"""Which quantization parameters the head uses for each cut tensor.

The head node's parameters (bits, mode, clip range, codec) plus the bundle's calibrated ranges
resolve here to one QuantParams per tensor, once per configuration change, not per frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from splitcomp_core.bundle import MODES, QuantizationSpec
from splitcomp_core.codec import (
    CODE_BITS,
    CODEC_BY_NAME,
    CODEC_ENTROPY,
    HEAD_CODECS,
    RAW_BITS,
    QuantParams,
    clip_params,
    range_params,
)
from splitcomp_core.errors import CodecError


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """How the head encodes: bits 1..8 quantize, 16/32 send raw floats; mode picks the ranges."""

    bits: int = 4
    mode: str = "clip"
    clip_min: float = 0.0
    clip_max: float = 32.0
    codec: str = "none"

    def validated(self) -> EncoderConfig:
        if self.bits not in CODE_BITS and self.bits not in RAW_BITS:
            raise CodecError(f"bits must be 1..8, 16 or 32, got {self.bits}")
        if self.mode not in MODES:
            raise CodecError(f"quantization must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not (np.isfinite(self.clip_min) and np.isfinite(self.clip_max) and self.clip_min < self.clip_max):
            raise CodecError(f"clip_min must be below clip_max, got {self.clip_min} and {self.clip_max}")
        if self.codec not in HEAD_CODECS:
            raise CodecError(f"codec must be one of {', '.join(HEAD_CODECS)}, got {self.codec!r}")
        if self.codec == "entropy" and self.bits in RAW_BITS:
            raise CodecError(f"codec entropy codes quantized codes: set bits 1..8, not {self.bits}")
        return self

    @property
    def codec_id(self) -> int:
        return CODEC_BY_NAME.get(self.codec, CODEC_ENTROPY)

    @classmethod
    def from_manifest(cls, spec: QuantizationSpec) -> EncoderConfig:
        """The bundle's own defaults (calibrate sets them to the ranges it measured)."""
        return cls(spec.bits, spec.mode, spec.clip_min, spec.clip_max, spec.codec)


def resolve_params(
    config: EncoderConfig, tensor_name: str, calibrated: Mapping[str, Mapping]
) -> tuple[QuantParams | None, str | None]:
    """QuantParams for one tensor (None = raw floats) and a warning when calibration is missing."""
    if config.bits in RAW_BITS:
        return None, None
    if config.mode == "clip":
        return clip_params(config.bits, config.clip_min, config.clip_max), None
    ranges = calibrated.get(tensor_name, {}).get("per_tensor" if config.mode == "calibrated" else "per_channel")
    if not ranges:
        warning = (
            f"the bundle has no {config.mode} calibration for '{tensor_name}'; using the clip range "
            f"{config.clip_min}..{config.clip_max} (run `splitcomp_tools calibrate` on the bundle)"
        )
        return clip_params(config.bits, config.clip_min, config.clip_max), warning
    lo, hi = (np.asarray(ranges[k], dtype=np.float64) for k in ("min", "max"))
    return range_params(config.bits, lo, hi), None
