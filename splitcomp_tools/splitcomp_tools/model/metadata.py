"""What `export` records in an ONNX file's metadata_props so that `split` needs no --labels or --mean.

A pretrained model comes with its class names and the preprocessing it was trained with; asking every
user to retype them (and get the colour order or the crop wrong) loses accuracy silently. `export`
stores them next to the graph, `split` takes them as its defaults, and explicit options still win.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import onnx

from splitcomp_core.errors import SplitcompError
from splitcomp_core.postprocess import parse_labels

SOURCE_KEY = "splitcomp.source"
LABELS_KEY = "splitcomp.labels"
PREPROCESSING_KEY = "splitcomp.preprocessing"
TASK_KEY = "splitcomp.task"  # {"task": "detection", "detection": {...}}: the manifest's task and post-processing
# The fields of split.Preprocessing a model records (its input size is in the graph itself).
PREPROCESSING_FIELDS = ("mean", "std", "bgr", "crop_resize")


class MetadataError(SplitcompError):
    """A model's recorded labels or preprocessing cannot be used as they are."""


def metadata_props(
    source: str, labels: Sequence[str] | None, preprocessing: Mapping[str, Any] | None
) -> dict[str, str]:
    """The metadata_props entries for a model: where it came from, its class names and its preprocessing."""
    props = {SOURCE_KEY: source}
    if labels is not None:
        props[LABELS_KEY] = json.dumps(list(labels), ensure_ascii=False)
    if preprocessing is not None:
        props[PREPROCESSING_KEY] = json.dumps(_checked_preprocessing(preprocessing, "preprocessing"))
    return props


def set_metadata(model: onnx.ModelProto, props: Mapping[str, str]) -> None:
    """Add or replace `props` in the model's metadata_props, keeping entries under other keys."""
    onnx.helper.set_model_props(model, {**recorded(model), **props})


def recorded(model: onnx.ModelProto) -> dict[str, str]:
    """Every metadata_props entry of the model."""
    return {p.key: p.value for p in model.metadata_props}


def recorded_labels(model: onnx.ModelProto) -> list[str] | None:
    """The class names the model carries, or None when it has none."""
    text = recorded(model).get(LABELS_KEY)
    if text is None:
        return None
    return parse_labels(_json(text, LABELS_KEY), origin=f"the model's metadata {LABELS_KEY!r}")


def recorded_preprocessing(model: onnx.ModelProto) -> dict[str, Any]:
    """split.Preprocessing fields the model carries (any subset of PREPROCESSING_FIELDS); {} when none."""
    text = recorded(model).get(PREPROCESSING_KEY)
    if text is None:
        return {}
    data = _json(text, PREPROCESSING_KEY)
    if not isinstance(data, dict):
        raise MetadataError(f"the model's metadata {PREPROCESSING_KEY!r} is not a JSON object; re-export the model")
    return _checked_preprocessing(data, f"the model's metadata {PREPROCESSING_KEY!r}")


def _json(text: str, key: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetadataError(f"the model's metadata {key!r} is not valid JSON ({exc.msg}); re-export the model") from exc


def _checked_preprocessing(data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    unknown = sorted(set(data) - set(PREPROCESSING_FIELDS))
    if unknown:
        raise MetadataError(f"{origin}: unknown fields {unknown}; known: {', '.join(PREPROCESSING_FIELDS)}")
    fields: dict[str, Any] = {}
    for key in ("mean", "std"):
        if key in data:
            values = data[key]
            if not (
                isinstance(values, (list, tuple))
                and len(values) == 3
                and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
            ):
                raise MetadataError(f"{origin}: {key} must be 3 finite numbers, got {values!r}")
            fields[key] = tuple(float(v) for v in values)
    if "bgr" in data:
        if not isinstance(data["bgr"], bool):
            raise MetadataError(f"{origin}: bgr must be true or false, got {data['bgr']!r}")
        fields["bgr"] = data["bgr"]
    if "crop_resize" in data:
        crop = data["crop_resize"]
        if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 0):
            raise MetadataError(f"{origin}: crop_resize must be null or an integer >= 0, got {crop!r}")
        fields["crop_resize"] = crop
    return fields


def task_props(task: str, detection: Mapping[str, Any] | None) -> dict[str, str]:
    """The metadata_props entry for a model's task and (for detection) its manifest `detection` section."""
    return {TASK_KEY: json.dumps({"task": task, "detection": dict(detection) if detection is not None else None})}


def recorded_task(model: onnx.ModelProto) -> tuple[str, dict[str, Any] | None]:
    """The task the model carries and its detection section; ("classification", None) when it records none."""
    text = recorded(model).get(TASK_KEY)
    if text is None:
        return "classification", None
    data = _json(text, TASK_KEY)
    if not isinstance(data, dict) or data.get("task") not in ("classification", "detection"):
        raise MetadataError(f"the model's metadata {TASK_KEY!r} names no known task; re-export the model")
    detection = data.get("detection")
    if (data["task"] == "detection") != isinstance(detection, dict):
        raise MetadataError(f"the model's metadata {TASK_KEY!r}: a detection task needs its detection section")
    return data["task"], detection
