"""What a request may say, checked and bounded before a route acts on it: JSON bodies, form fields, their docs.

The JSON bodies are pydantic models (FastAPI checks them); a multipart form's fields are read by
hand (`form_int`), and `multipart_doc` describes such a form in /openapi.json. Every refusal is one
line: `validation_message` turns pydantic's errors into it.
"""

from __future__ import annotations

import argparse
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationError, field_validator

from splitcomp_tools.cli_options import video_codecs
from splitcomp_tools.model.video import CODECS
from splitcomp_tools.studio import adapter
from splitcomp_tools.studio.config import MAX_CALIBRATION_FRAMES, MAX_INPUT_SIDE, MAX_JSON_BYTES
from splitcomp_tools.studio.errors import Refused
from splitcomp_tools.studio.uploads import Form

Name = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class PreprocessingBody(BaseModel):
    """How camera frames become model input (split's options); a missing size means the model's declared one."""

    height: int | None = Field(None, ge=1, le=MAX_INPUT_SIDE)
    width: int | None = Field(None, ge=1, le=MAX_INPUT_SIDE)
    resize: Literal["stretch", "center_crop"] = "stretch"
    crop_size: int | None = Field(None, ge=0, le=2 * MAX_INPUT_SIDE, description="0 or none: size / 0.875")
    mean: list[float] = Field(default_factory=lambda: list(adapter.IMAGENET_MEAN), min_length=3, max_length=3)
    std: list[float] = Field(default_factory=lambda: list(adapter.IMAGENET_STD), min_length=3, max_length=3)
    color_order: Literal["RGB", "BGR"] = "RGB"


class LabelsFile(BaseModel):
    file: str = Field(max_length=MAX_JSON_BYTES, description="a labels file's text: a JSON list or class_index.json")


class SplitBody(BaseModel):
    at: list[Name] = Field(min_length=1, max_length=adapter.MAX_CUT_TENSORS, description="the cut's tensor names")
    preprocessing: PreprocessingBody | None = Field(None, description="default: the model's own defaults")
    labels: Literal["model", "none"] | LabelsFile = "model"
    output_kind: Literal["auto", "logits", "probabilities"] = "auto"
    dynamic_batch: bool = Field(False, description="head and tail take any batch (split --dynamic-batch)")


class CalibrateBody(BaseModel):
    source: str = Field("generator", max_length=64, description="generator, photos, or upload (multipart files)")
    count: int = Field(200, ge=1, le=MAX_CALIBRATION_FRAMES)
    bits: int | None = Field(None, ge=1, le=8, description="default: the bundle's bits (4 for raw floats)")
    method: Literal["mse", "percentile"] = "mse"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    eval_source: str = Field(
        "",
        max_length=256,
        description="judge the table on these frames instead, e.g. photos:test,video:bikes,video:carphone (other "
        "scenes than the ranges'); default: the calibration frames",
    )
    eval_count: int | None = Field(None, ge=1, le=MAX_CALIBRATION_FRAMES, description="default: count")
    confidence: float = Field(0.5, ge=0.0, le=1.0, description="a frame is confident at this unsplit top-1 probability")
    video_codecs: str = Field(
        ",".join(CODECS),
        max_length=64,
        description="live video codecs measured beside JPEG-95, as calibrate's --video-codecs: a comma list or none",
    )

    @field_validator("video_codecs")
    @classmethod
    def _known_codecs(cls, text: str) -> str:
        try:
            video_codecs(text)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(str(exc)) from None
        return text


def calibrate_body(data: Any) -> CalibrateBody:
    """The calibrate request's fields (from JSON or a form), checked as FastAPI checks a JSON body."""
    if not isinstance(data, dict):
        raise Refused(400, "the calibrate request must be a JSON object, or a multipart form")
    try:
        return CalibrateBody.model_validate(data)
    except ValidationError as exc:
        raise Refused(422, validation_message(exc.errors())) from None


def validation_message(errors: Any) -> str:
    """Pydantic's errors as one line: "preprocessing.mean: List should have at least 3 items; ..."."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def form_int(form: Form, name: str, default: int, low: int, high: int) -> int:
    """A form field as an integer in low..high (`default` when it is missing or empty)."""
    text = form.text(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise Refused(400, f"{name} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise Refused(400, f"{name} must be {low}..{high}, got {value}")
    return value


def multipart_doc(fields: dict[str, Any], files: str) -> dict[str, Any]:
    """The /openapi.json request body of a multipart form: its text `fields` and the file field `files`."""
    properties = {**fields, files: {"type": "array", "items": {"type": "string", "format": "binary"}}}
    return {
        "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": properties}}}}
    }
