"""The head's encoder parameters (bits, quantization, clip_min, clip_max, codec) <-> EncoderConfig fields, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rclpy.node import Node

from splitcomp_core.bundle import MODES, QuantizationSpec
from splitcomp_core.codec import CODEC_NAMES
from splitcomp_core.quantization import EncoderConfig
from splitcomp_ros.node_support import declare

# parameter name -> EncoderConfig field
FIELD_OF_PARAM = {
    "bits": "bits",
    "quantization": "mode",
    "clip_min": "clip_min",
    "clip_max": "clip_max",
    "codec": "codec",
}
ENCODER_PARAMS = tuple(FIELD_OF_PARAM)


def declare_encoder(node: Node, defaults: QuantizationSpec) -> dict[str, Any]:
    """Declare the encoder parameters; unset ones take the bundle's defaults (calibrate records what it measured).

    Returns the EncoderConfig fields the user set to something else (see `encoder_changes`).
    """
    declare(node, "bits", defaults.bits, "Bits per code: 1..8 quantize, 16/32 send raw floats.")
    declare(node, "quantization", defaults.mode, "Ranges for quantization.", choices=MODES)
    declare(node, "clip_min", float(defaults.clip_min), "Lower end of the fixed clip range (quantization=clip).")
    declare(node, "clip_max", float(defaults.clip_max), "Upper end of the fixed clip range (quantization=clip).")
    declare(node, "codec", defaults.codec, "Entropy coder after bit packing.", choices=CODEC_NAMES)
    return encoder_changes({name: node.get_parameter(name).value for name in ENCODER_PARAMS}, defaults)


def encoder_changes(values: Mapping[str, Any], defaults: QuantizationSpec | None = None) -> dict[str, Any]:
    """EncoderConfig fields from encoder parameter values; with `defaults`, only those that differ from them.

    A multi-cut bundle gives every cut its own defaults: only what the user set applies to all of them.
    """
    base = EncoderConfig.from_manifest(defaults) if defaults is not None else None
    changes = {FIELD_OF_PARAM[name]: value for name, value in values.items() if name in FIELD_OF_PARAM}
    return {k: v for k, v in changes.items() if base is None or getattr(base, k) != v}
