"""The bundle format's names and limits, and the JSON schema of each manifest format_version, defined once.

format_version 1 is a single-cut bundle (manifest.json + head.onnx + tail.onnx [+ labels.json]), as `split`
writes it; format_version 2 is a multi-cut bundle (a manifest listing cuts/<cut_id>/, each a format 1
bundle), as `plan --out` writes it. The schemas are plain data built from the codec's and postprocessing's
own name tables, so a new codec or output kind is accepted here without a second list to keep in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from splitcomp_core.codec import CODE_BITS, HEAD_CODECS, RAW_BITS
from splitcomp_core.postprocess import KINDS

FORMAT_VERSION = 1  # a single-cut bundle, as `split` writes it
MULTI_CUT_FORMAT_VERSION = 2  # several cuts of one model, as `plan --out` writes it
NEWEST_FORMAT_VERSION = MULTI_CUT_FORMAT_VERSION
MANIFEST_FILE = "manifest.json"
# Largest model input side (height, width, resize_size): a frame is resized to it on the robot for
# every frame, so a manifest cannot ask for more (split --crop 100000 would mean a 40 GB frame).
MAX_IMAGE_SIDE = 8192
HEAD_FILE = "head.onnx"
TAIL_FILE = "tail.onnx"
LABELS_FILE = "labels.json"
CUTS_DIR = "cuts"  # a multi-cut bundle keeps each cut in cuts/<cut_id>/
CUT_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # also a directory name: no separators, no "..", no hidden files
TASKS = ("classification", "detection")  # what the tail answers; a manifest without `task` is a classification
MAX_DETECTIONS = 10000  # detection.max_detections at most: the tail's answer per frame is bounded by the bundle
MODES = ("clip", "calibrated", "per_channel")  # quantization.mode: where the head's ranges come from
DYNAMIC = -1  # a dimension whose size is only known at run time (e.g. a symbolic batch size)

_DRAFT_7 = "http://json-schema.org/draft-07/schema#"
_MODEL_ID = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}
_DIM = {"type": "integer", "minimum": DYNAMIC}
_SHAPE = {"type": "array", "items": _DIM, "minItems": 1}
_NAME = {"type": "string", "minLength": 1}
_RGB_TRIPLE = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
_FLOATS = {"type": "array", "items": {"type": "number"}, "minItems": 1}
_SIDE = {"type": "integer", "minimum": 1, "maximum": MAX_IMAGE_SIDE}
_MBPS = {"type": "number", "minimum": 0}


def _closed(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema with exactly these properties, the `required` ones mandatory."""
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


_CUT_TENSOR = _closed(
    ["name", "shape", "dtype"], {"name": _NAME, "shape": _SHAPE, "dtype": {"enum": ["float32", "float16"]}}
)

_INPUT = _closed(
    ["name", "shape", "height", "width", "color_order", "mean", "std", "resize", "resize_size"],
    {
        "name": _NAME,
        "shape": {**_SHAPE, "minItems": 4, "maxItems": 4},
        "height": _SIDE,
        "width": _SIDE,
        "color_order": {"enum": ["RGB", "BGR"]},
        "mean": _RGB_TRIPLE,
        "std": {**_RGB_TRIPLE, "items": {"type": "number", "exclusiveMinimum": 0}},
        "resize": {"enum": ["stretch", "center_crop"]},
        "resize_size": {**_SIDE, "type": ["integer", "null"]},
    },
)

_OUTPUT = _closed(["name", "shape", "kind"], {"name": _NAME, "shape": _SHAPE, "kind": {"enum": list(KINDS)}})

_DETECTION = _closed(  # the tail's post-processing for task detection (splitcomp_core.detection)
    ["decoder", "outputs", "threshold", "stride", "nms_iou", "max_detections"],
    {
        "decoder": _NAME,
        "outputs": {"type": "object", "additionalProperties": _NAME, "minProperties": 1},
        "threshold": {"type": "number", "minimum": 0, "maximum": 1},
        "stride": {"type": "integer", "minimum": 1, "maximum": 256},
        "nms_iou": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "max_detections": {"type": "integer", "minimum": 1, "maximum": MAX_DETECTIONS},
    },
)

_CALIBRATED_RANGES = {  # calibrated[<cut tensor>]: what `calibrate` measured for one tensor
    "type": "object",
    "required": ["per_tensor", "method"],
    "properties": {
        "per_tensor": _closed(["min", "max"], {"min": {"type": "number"}, "max": {"type": "number"}}),
        "per_channel": _closed(["min", "max"], {"min": _FLOATS, "max": _FLOATS}),
        "method": {"type": "string"},
        "bits": {"type": "integer", "minimum": 1, "maximum": 8},
    },
}

_QUANTIZATION = _closed(
    ["bits", "mode", "clip_min", "clip_max", "codec", "calibrated"],
    {
        "bits": {"enum": [*CODE_BITS, *RAW_BITS]},
        "mode": {"enum": list(MODES)},
        "clip_min": {"type": "number"},
        "clip_max": {"type": "number"},
        "codec": {"enum": list(HEAD_CODECS)},  # entropy: with the tables of entropy.json (read.py)
        "calibrated": {"type": "object", "additionalProperties": _CALIBRATED_RANGES},
    },
)

MANIFEST_SCHEMA: Mapping[str, Any] = {
    "$schema": _DRAFT_7,
    "title": "splitcomp bundle manifest, format_version 1",
    **_closed(
        [
            "format_version",
            "model_id",
            "source",
            "cut",
            "input",
            "output",
            "labels_file",
            "quantization",
            "verification",
            "created_by",
        ],
        {
            "format_version": {"const": FORMAT_VERSION},
            "model_id": _MODEL_ID,
            "source": {"type": "string"},
            "cut": {"type": "array", "minItems": 1, "items": _CUT_TENSOR},
            "input": _INPUT,
            "output": _OUTPUT,
            "labels_file": {"type": ["string", "null"], "minLength": 1},
            "quantization": _QUANTIZATION,
            "verification": {
                "type": "object",
                "properties": {
                    "max_abs_diff": {"type": "number", "minimum": 0},
                    "relative_diff": {"type": "number", "minimum": 0},
                    "samples": {"type": "integer", "minimum": 0},
                },
            },
            "created_by": {"type": "string"},
            "task": {"enum": list(TASKS)},
            "detection": _DETECTION,
        },
    ),
}

_CUT_ENTRY = {  # one entry of a multi-cut manifest's `cuts`; extra keys are what `plan` recorded
    "type": "object",
    "required": ["cut_id", "model_id", "bandwidth_mbps"],
    "properties": {
        "cut_id": {"type": "string", "pattern": CUT_ID_PATTERN},
        "model_id": _MODEL_ID,
        "bandwidth_mbps": _closed(["min", "max"], {"min": _MBPS, "max": {"anyOf": [_MBPS, {"type": "null"}]}}),
    },
}

MULTI_CUT_SCHEMA: Mapping[str, Any] = {
    "$schema": _DRAFT_7,
    "title": "splitcomp multi-cut bundle manifest, format_version 2",
    **_closed(
        ["format_version", "model_id", "source", "default_cut", "cuts", "link", "created_by"],
        {
            "format_version": {"const": MULTI_CUT_FORMAT_VERSION},
            "model_id": _MODEL_ID,
            "source": {"type": "string"},
            "default_cut": {"type": "string", "pattern": CUT_ID_PATTERN},
            "cuts": {"type": "array", "minItems": 1, "items": _CUT_ENTRY},
            "link": {
                "type": "object",
                "properties": {
                    "transport_overhead_ms": {"type": "number"},
                    "transport_overhead_per_kb_ms": {"type": "number", "minimum": 0},
                    "transport_overhead_fit": _closed(
                        ["samples", "rms_ms", "max_residual_ms"],
                        {
                            "samples": {"type": "number", "minimum": 0},
                            "rms_ms": {"type": "number", "minimum": 0},
                            "max_residual_ms": {"type": "number", "minimum": 0},
                        },
                    ),
                    "feedback_overhead_ms": {"type": "number", "minimum": 0},
                    "burst_bytes": {"type": "number", "minimum": 0},
                    "framing_bytes": {"type": "number", "minimum": 0},
                },
            },
            "plan": {"type": "object"},
            "created_by": {"type": "string"},
        },
    ),
}

# format_version -> the schema its manifest must follow
SCHEMAS: Mapping[int, Mapping[str, Any]] = MappingProxyType(
    {FORMAT_VERSION: MANIFEST_SCHEMA, MULTI_CUT_FORMAT_VERSION: MULTI_CUT_SCHEMA}
)
