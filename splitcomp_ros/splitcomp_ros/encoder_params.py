"""The head's encoder parameters (bits, quantization, clip_min, clip_max, codec) <-> EncoderConfig fields, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rclpy.node import Node

from splitcomp_core.bundle import MODES, QuantizationSpec
from splitcomp_core.codec import HEAD_CODECS
from splitcomp_core.quantization import EncoderConfig
from splitcomp_ros.node_support import Param, declare_params

_BUNDLE = "the bundle's (quantization in manifest.json; per cut in a multi-cut bundle)"
ENCODER_PARAM_SPECS = (
    Param("bits", 4, "Bits per code: 1..8 quantize, 16/32 send raw floats.", default_text=_BUNDLE),
    Param("quantization", "calibrated", "Ranges for quantization.", choices=MODES, default_text=_BUNDLE),
    Param("clip_min", 0.0, "Lower end of the fixed clip range (quantization=clip).", default_text=_BUNDLE),
    Param("clip_max", 32.0, "Upper end of the fixed clip range (quantization=clip).", default_text=_BUNDLE),
    Param(
        "codec",
        "none",
        "How the codes are compressed: none, zstd or lz4 after bit packing, or entropy (rANS under the bundle's "
        "entropy.json model).",
        choices=HEAD_CODECS,
        default_text=_BUNDLE,
    ),
)
# parameter name -> EncoderConfig field
FIELD_OF_PARAM = {
    "bits": "bits",
    "quantization": "mode",
    "clip_min": "clip_min",
    "clip_max": "clip_max",
    "codec": "codec",
}
ENCODER_PARAMS = tuple(p.name for p in ENCODER_PARAM_SPECS)


def declare_encoder(node: Node, defaults: QuantizationSpec) -> dict[str, Any]:
    """Declare the encoder parameters; unset ones take the bundle's defaults (calibrate records what it measured).

    Returns the EncoderConfig fields the user set to something else (see `encoder_changes`).
    """
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
    return encoder_changes(values, defaults)


def encoder_changes(values: Mapping[str, Any], defaults: QuantizationSpec | None = None) -> dict[str, Any]:
    """EncoderConfig fields from encoder parameter values; with `defaults`, only those that differ from them.

    A multi-cut bundle gives every cut its own defaults: only what the user set applies to all of them.
    """
    base = EncoderConfig.from_manifest(defaults) if defaults is not None else None
    changes = {FIELD_OF_PARAM[name]: value for name, value in values.items() if name in FIELD_OF_PARAM}
    return {k: v for k, v in changes.items() if base is None or getattr(base, k) != v}
