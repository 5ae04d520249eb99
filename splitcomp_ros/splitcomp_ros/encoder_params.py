"""The head's encoder parameters (bits, quantization, clip_min, clip_max, codec) <-> EncoderConfig, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rclpy.node import Node

from splitcomp_core.bundle import MODES, QuantizationSpec
from splitcomp_core.codec import CODEC_NAMES
from splitcomp_core.quantization import EncoderConfig
from splitcomp_ros.node_support import Param, declare_params

_BUNDLE = "the bundle's (quantization in manifest.json)"
ENCODER_PARAM_SPECS = (
    Param("bits", 4, "Bits per code: 1..8 quantize, 16/32 send raw floats.", default_text=_BUNDLE),
    Param("quantization", "calibrated", "Ranges for quantization.", choices=MODES, default_text=_BUNDLE),
    Param("clip_min", 0.0, "Lower end of the fixed clip range (quantization=clip).", default_text=_BUNDLE),
    Param("clip_max", 32.0, "Upper end of the fixed clip range (quantization=clip).", default_text=_BUNDLE),
    Param("codec", "none", "Entropy coder after bit packing.", choices=CODEC_NAMES, default_text=_BUNDLE),
)
ENCODER_PARAMS = tuple(p.name for p in ENCODER_PARAM_SPECS)


def declare_encoder(node: Node, defaults: QuantizationSpec) -> EncoderConfig:
    """Declare the encoder parameters; unset ones take the bundle's defaults (calibrate records what it measured)."""
    values = declare_params(
        node,
        ENCODER_PARAM_SPECS,
        {
            "bits": defaults.bits,
            "quantization": defaults.mode,
            "clip_min": float(defaults.clip_min),
            "clip_max": float(defaults.clip_max),
            "codec": defaults.codec,
        },
    )
    return encoder_config(values)


def encoder_config(values: Mapping[str, Any]) -> EncoderConfig:
    """The EncoderConfig that parameter values by name describe (not yet validated)."""
    return EncoderConfig(
        values["bits"], values["quantization"], values["clip_min"], values["clip_max"], values["codec"]
    )
