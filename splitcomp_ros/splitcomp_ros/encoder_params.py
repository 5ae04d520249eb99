"""The head's encoder parameters (bits, quantization, clip_min, clip_max, codec) <-> EncoderConfig, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rclpy.node import Node

from splitcomp_core.bundle import MODES, QuantizationSpec
from splitcomp_core.codec import CODEC_NAMES
from splitcomp_core.quantization import EncoderConfig
from splitcomp_ros.node_support import declare

ENCODER_PARAMS = ("bits", "quantization", "clip_min", "clip_max", "codec")


def declare_encoder(node: Node, defaults: QuantizationSpec) -> EncoderConfig:
    """Declare the encoder parameters; unset ones take the bundle's defaults (calibrate records what it measured)."""
    declare(node, "bits", defaults.bits, "Bits per code: 1..8 quantize, 16/32 send raw floats.")
    declare(node, "quantization", defaults.mode, "Ranges for quantization.", choices=MODES)
    declare(node, "clip_min", float(defaults.clip_min), "Lower end of the fixed clip range (quantization=clip).")
    declare(node, "clip_max", float(defaults.clip_max), "Upper end of the fixed clip range (quantization=clip).")
    declare(node, "codec", defaults.codec, "Entropy coder after bit packing.", choices=CODEC_NAMES)
    return encoder_config({name: node.get_parameter(name).value for name in ENCODER_PARAMS})


def encoder_config(values: Mapping[str, Any]) -> EncoderConfig:
    """The EncoderConfig that parameter values by name describe (not yet validated)."""
    return EncoderConfig(
        values["bits"], values["quantization"], values["clip_min"], values["clip_max"], values["codec"]
    )
