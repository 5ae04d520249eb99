"""The manifest as dataclasses, the rules between its fields, and the loaded Bundle and CutChoice.

`Manifest.from_dict` is the one way in from JSON: schema and finiteness first (validate.py), then the
cross-field rules a schema cannot say clearly (unique cut names, an input shape that matches height and
width, ranges that exist for the quantization mode), so a Manifest object is always a valid one.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from splitcomp_core.bundle.schema import DYNAMIC, FORMAT_VERSION, MANIFEST_FILE
from splitcomp_core.bundle.validate import check_finite, check_schema
from splitcomp_core.detection import DecoderSettings
from splitcomp_core.errors import BundleError


@dataclass
class TensorSpec:
    """A tensor at the cut; `shape` uses DYNAMIC (-1) for sizes fixed only at run time."""

    name: str
    shape: list[int]
    dtype: str = "float32"


@dataclass
class InputSpec:
    """How a camera frame becomes the model input.

    `mean` and `std` are in 0..1 units and listed in the model's channel order (`color_order`).
    `center_crop` resizes the shorter side to `resize_size`, then crops height x width from the centre.
    """

    name: str
    shape: list[int]
    height: int
    width: int
    color_order: str
    mean: list[float]
    std: list[float]
    resize: str = "stretch"
    resize_size: int | None = None


@dataclass
class OutputSpec:
    """The tail's class-score output; `kind` says whether it still needs a softmax."""

    name: str
    shape: list[int]
    kind: str = "logits"


@dataclass
class QuantizationSpec:
    """Defaults the head uses to quantize the cut, plus ranges measured by `calibrate`.

    `mode` picks the ranges (the same names as the head's EncoderConfig): "clip" uses clip_min/clip_max;
    "calibrated" uses `calibrated[name]["per_tensor"]` and "per_channel" `calibrated[name]["per_channel"]`
    for every cut tensor. Bits 16 and 32 send raw floats and ignore the ranges.
    """

    bits: int = 4
    mode: str = "clip"
    clip_min: float = 0.0
    clip_max: float = 32.0
    codec: str = "none"
    calibrated: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Manifest:
    """Everything a node needs to know about a bundle besides the model files themselves."""

    format_version: int
    model_id: str
    source: str
    cut: list[TensorSpec]
    input: InputSpec
    output: OutputSpec
    labels_file: str | None = None
    quantization: QuantizationSpec = field(default_factory=QuantizationSpec)
    verification: dict[str, Any] = field(default_factory=dict)
    created_by: str = "splitcomp"
    task: str = "classification"  # or "detection", with `detection` saying how the tail decodes its outputs
    detection: DecoderSettings | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the manifest.json layout); a classification manifest stays as it always was."""
        data = dataclasses.asdict(self)
        if self.task == "classification":
            del data["task"]
        if self.detection is None:
            del data["detection"]
        else:
            data["detection"]["outputs"] = dict(self.detection.outputs)
        return data

    @classmethod
    def from_dict(cls, data: Any, origin: str = MANIFEST_FILE) -> Manifest:
        """Validate `data` (schema + cross-field rules) and build a Manifest; BundleError names `origin`."""
        check_schema(data, origin)
        if data["format_version"] != FORMAT_VERSION:
            raise BundleError(
                f"{origin}: a multi-cut bundle's manifest (format_version {data['format_version']}); load the bundle "
                f"directory with load_bundle, which reads each cut's own manifest"
            )
        check_finite(data, origin)
        d = copy.deepcopy(data)
        manifest = cls(
            format_version=d["format_version"],
            model_id=d["model_id"],
            source=d["source"],
            cut=[TensorSpec(**c) for c in d["cut"]],
            input=InputSpec(**d["input"]),
            output=OutputSpec(**d["output"]),
            labels_file=d["labels_file"],
            quantization=QuantizationSpec(**d["quantization"]),
            verification=d["verification"],
            created_by=d["created_by"],
            task=d.get("task", "classification"),
            detection=DecoderSettings(**d["detection"]) if "detection" in d else None,
        )
        _check_rules(manifest, origin)
        return manifest


@dataclass
class Bundle:
    """A loaded, validated bundle directory."""

    path: Path
    manifest: Manifest
    head_path: Path
    tail_path: Path
    labels: list[str] | None
    cut_id: str = ""  # "" for a single-cut bundle; in a multi-cut bundle, the cut this manifest and these files are
    cuts: list[CutChoice] = field(default_factory=list)  # a multi-cut bundle's cuts (the fields above: its default)
    link: dict[str, Any] = field(default_factory=dict)  # a multi-cut bundle's link model, as `plan` measured it

    def all_cuts(self) -> list[Bundle]:
        """Every cut as a single-cut Bundle carrying its cut_id: the cuts of a multi-cut bundle, else just this one."""
        return [c.bundle for c in self.cuts] or [self]


@dataclass(frozen=True)
class CutChoice:
    """One cut of a multi-cut bundle: its single-cut bundle (in cuts/<cut_id>/) and the link rates where it wins.

    `min_mbps <= rate < max_mbps` (None: no upper end); `info` is what `plan` recorded (bytes, predictions).
    """

    cut_id: str
    bundle: Bundle
    min_mbps: float
    max_mbps: float | None
    info: dict[str, Any] = field(default_factory=dict)

    def covers(self, mbps: float) -> bool:
        return self.min_mbps <= mbps and (self.max_mbps is None or mbps < self.max_mbps)


def _check_rules(m: Manifest, origin: str) -> None:
    """Cross-field rules a JSON schema cannot say clearly."""
    names = [c.name for c in m.cut]
    if len(set(names)) != len(names):
        raise BundleError(f"{origin}: cut: tensor names must be unique, got {names}")
    labels_file = m.labels_file
    if labels_file is not None and (labels_file in (".", "..") or "/" in labels_file or "\\" in labels_file):
        raise BundleError(f"{origin}: labels_file must be a plain file name inside the bundle, got {labels_file!r}")
    if (m.task == "detection") != (m.detection is not None):
        raise BundleError(f"{origin}: task detection needs a detection section, and only it may have one")
    if m.task == "detection" and m.input.resize != "stretch":
        raise BundleError(
            f"{origin}: a detection bundle needs input.resize stretch (boxes map back to the whole camera frame); "
            f"re-run split without --crop"
        )
    spec = m.input
    if spec.shape[1] != 3:
        raise BundleError(f"{origin}: input.shape: expected 3 channels (NCHW), got {spec.shape}")
    if spec.shape[2] not in (spec.height, DYNAMIC) or spec.shape[3] not in (spec.width, DYNAMIC):
        raise BundleError(
            f"{origin}: input.shape {spec.shape} disagrees with height {spec.height} x width {spec.width}"
        )
    if spec.resize == "center_crop":
        if spec.resize_size is None or spec.resize_size < max(spec.height, spec.width):
            raise BundleError(
                f"{origin}: input.resize_size must be >= max(height, width) = {max(spec.height, spec.width)} "
                f"for center_crop, got {spec.resize_size}"
            )
    elif spec.resize_size is not None:
        raise BundleError(f"{origin}: input.resize_size is only used with center_crop; set it to null for stretch")
    _check_quantization(m, origin)


def _check_quantization(m: Manifest, origin: str) -> None:
    """Ranges that name cut tensors, min <= max, one value per channel, and present for the chosen mode."""
    q = m.quantization
    if q.clip_max <= q.clip_min:
        raise BundleError(f"{origin}: quantization: clip_max ({q.clip_max}) must be > clip_min ({q.clip_min})")
    cuts = {c.name: c for c in m.cut}
    for name, ranges in q.calibrated.items():
        if name not in cuts:
            raise BundleError(f"{origin}: quantization.calibrated: '{name}' is not a cut tensor {list(cuts)}")
        tensor = ranges["per_tensor"]
        if tensor["min"] > tensor["max"]:
            raise BundleError(f"{origin}: quantization.calibrated.{name}.per_tensor: min > max")
        channel = ranges.get("per_channel")
        if channel is None:
            continue
        lo, hi = np.asarray(channel["min"]), np.asarray(channel["max"])
        channels = cuts[name].shape[1] if len(cuts[name].shape) > 1 else DYNAMIC
        if lo.shape != hi.shape or channels not in (DYNAMIC, lo.size):
            raise BundleError(
                f"{origin}: quantization.calibrated.{name}.per_channel: min and max need one value per channel "
                f"({channels}), got {lo.size} and {hi.size}"
            )
        if np.any(lo > hi):
            raise BundleError(f"{origin}: quantization.calibrated.{name}.per_channel: min > max for some channel")
    if q.mode != "clip" and q.bits <= 8:
        key = "per_tensor" if q.mode == "calibrated" else "per_channel"
        missing = [n for n in cuts if key not in q.calibrated.get(n, {})]
        if missing:
            raise BundleError(
                f"{origin}: quantization.mode is {q.mode} but {key} ranges are missing for {missing}; "
                f"run calibrate, or set mode to clip"
            )
