"""Split bundles: the one directory both nodes load (manifest.json + head.onnx + tail.onnx [+ labels.json]).

A bundle is refused at start-up, with one message naming the problem and the file, rather than
failing later on the robot or the edge server. The manifest is checked against a JSON schema chosen
by its `format_version`; the model files are tied to the manifest by `model_id`, a digest of head
and tail, so the two machines can prove they run halves of the same split. Writes are atomic: a
bundle directory is either complete and verified, or absent.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import onnx
from google.protobuf.message import DecodeError
from jsonschema.exceptions import best_match
from onnx.external_data_helper import uses_external_data

from splitcomp_core.codec import CODE_BITS, CODEC_NAMES, RAW_BITS
from splitcomp_core.errors import BundleError
from splitcomp_core.files import atomic_write_text, fsync_dir, replace_dir, write_durably
from splitcomp_core.postprocess import KINDS, load_labels

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
MODES = ("clip", "calibrated", "per_channel")  # quantization.mode: where the head's ranges come from
DYNAMIC = -1  # a dimension whose size is only known at run time (e.g. a symbolic batch size)

_HASH_CHUNK = 1 << 20

_DIM = {"type": "integer", "minimum": DYNAMIC}
_SHAPE = {"type": "array", "items": _DIM, "minItems": 1}
_NAME = {"type": "string", "minLength": 1}
_RGB_TRIPLE = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
_FLOATS = {"type": "array", "items": {"type": "number"}, "minItems": 1}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "splitcomp bundle manifest, format_version 1",
    "type": "object",
    "additionalProperties": False,
    "required": [
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
    "properties": {
        "format_version": {"const": 1},
        "model_id": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        "source": {"type": "string"},
        "cut": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "shape", "dtype"],
                "properties": {
                    "name": _NAME,
                    "shape": _SHAPE,
                    "dtype": {"enum": ["float32", "float16"]},
                },
            },
        },
        "input": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "name",
                "shape",
                "height",
                "width",
                "color_order",
                "mean",
                "std",
                "resize",
                "resize_size",
            ],
            "properties": {
                "name": _NAME,
                "shape": {**_SHAPE, "minItems": 4, "maxItems": 4},
                "height": {"type": "integer", "minimum": 1, "maximum": MAX_IMAGE_SIDE},
                "width": {"type": "integer", "minimum": 1, "maximum": MAX_IMAGE_SIDE},
                "color_order": {"enum": ["RGB", "BGR"]},
                "mean": _RGB_TRIPLE,
                "std": {**_RGB_TRIPLE, "items": {"type": "number", "exclusiveMinimum": 0}},
                "resize": {"enum": ["stretch", "center_crop"]},
                "resize_size": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_IMAGE_SIDE},
            },
        },
        "output": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "shape", "kind"],
            "properties": {
                "name": _NAME,
                "shape": _SHAPE,
                "kind": {"enum": list(KINDS)},
            },
        },
        "labels_file": {"type": ["string", "null"], "minLength": 1},
        "quantization": {
            "type": "object",
            "additionalProperties": False,
            "required": ["bits", "mode", "clip_min", "clip_max", "codec", "calibrated"],
            "properties": {
                "bits": {"enum": [*CODE_BITS, *RAW_BITS]},
                "mode": {"enum": list(MODES)},
                "clip_min": {"type": "number"},
                "clip_max": {"type": "number"},
                "codec": {"enum": list(CODEC_NAMES)},
                "calibrated": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["per_tensor", "method"],
                        "properties": {
                            "per_tensor": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["min", "max"],
                                "properties": {"min": {"type": "number"}, "max": {"type": "number"}},
                            },
                            "per_channel": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["min", "max"],
                                "properties": {"min": _FLOATS, "max": _FLOATS},
                            },
                            "method": {"type": "string"},
                            "bits": {"type": "integer", "minimum": 1, "maximum": 8},
                        },
                    },
                },
            },
        },
        "verification": {
            "type": "object",
            "properties": {
                "max_abs_diff": {"type": "number", "minimum": 0},
                "relative_diff": {"type": "number", "minimum": 0},
                "samples": {"type": "integer", "minimum": 0},
            },
        },
        "created_by": {"type": "string"},
    },
}

SCHEMAS: dict[int, dict[str, Any]] = {1: MANIFEST_SCHEMA}  # format_version 2 is added with the multi-cut section


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the manifest.json layout)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, origin: str = MANIFEST_FILE) -> Manifest:
        """Validate `data` (schema + cross-field rules) and build a Manifest; BundleError names `origin`."""
        _check_schema(data, origin)
        if data["format_version"] != FORMAT_VERSION:
            raise BundleError(
                f"{origin}: a multi-cut bundle's manifest (format_version {data['format_version']}); load the bundle "
                f"directory with load_bundle, which reads each cut's own manifest"
            )
        _check_finite(data, origin)
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


def compute_model_id(head_bytes: bytes, tail_bytes: bytes) -> str:
    """Digest of head then tail, each length-prefixed so moving the split point changes the id."""
    digest = hashlib.sha256()
    for part in (head_bytes, tail_bytes):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return "sha256:" + digest.hexdigest()


def model_id_of_files(head_path: str | os.PathLike, tail_path: str | os.PathLike) -> str:
    """`compute_model_id` of two files, streamed so large models are never held in memory twice."""
    digest = hashlib.sha256()
    for path in (Path(head_path), Path(tail_path)):
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Load and validate one single-cut manifest.json file."""
    return Manifest.from_dict(_read_manifest_json(Path(path)), origin=str(path))


def _read_manifest_json(path: Path) -> Any:
    """The parsed JSON of a manifest file, refusing what is missing, unreadable, invalid or not finite."""
    if not path.is_file():
        raise BundleError(f"{path}: missing manifest; a bundle directory must hold {MANIFEST_FILE} (re-run split)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: cannot read the manifest ({exc})") from exc
    try:
        data = json.loads(text, parse_constant=_reject_non_finite)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except ValueError as exc:
        raise BundleError(f"{path}: {exc}") from exc
    return data


def _reject_non_finite(name: str) -> None:
    """Python's json reads NaN and Infinity, which no other JSON reader accepts and no range may be."""
    raise ValueError(f"{name} is not valid JSON; ranges and statistics must be finite numbers")


def _check_finite(data: Any, origin: str) -> None:
    """Refuse infinite numbers, which Python's json gives for literals beyond the float range such as 1e400."""
    try:
        json.dumps(data, allow_nan=False, default=_json_default)  # finds one fast; the walk below only names it
    except ValueError:
        where = _where(_non_finite_path(data) or [])
        raise BundleError(
            f"{origin}: {where}: must be a finite number (a literal beyond the float range, like 1e400, reads as "
            f"infinity)"
        ) from None


def _non_finite_path(value: Any) -> list[str | int] | None:
    """Keys leading to the first non-finite number in a JSON-like value, or None if it has none."""
    if isinstance(value, (float, np.floating)):
        return None if math.isfinite(value) else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        path = _non_finite_path(item)
        if path is not None:
            return [key, *path]
    return None


def _where(path: Sequence[str | int]) -> str:
    """A JSON path as the messages write it: input.std[1]; "manifest" for the whole document."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "manifest"


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Load a bundle directory, refusing it with one BundleError (naming the file) if anything is off."""
    root = Path(path)
    if not root.exists():
        raise BundleError(f"{root}: bundle directory not found; pass the directory written by `split --out`")
    if not root.is_dir():
        raise BundleError(
            f"{root}: not a directory; a bundle is a directory holding {MANIFEST_FILE}, {HEAD_FILE} and {TAIL_FILE}"
        )
    manifest_path = root / MANIFEST_FILE
    data = _read_manifest_json(manifest_path)
    if isinstance(data, dict) and data.get("format_version") == MULTI_CUT_FORMAT_VERSION:
        return _load_multi_cut(root, data)
    manifest = Manifest.from_dict(data, origin=str(manifest_path))
    head_path, tail_path = root / HEAD_FILE, root / TAIL_FILE
    for model_path, part in ((head_path, "head"), (tail_path, "tail")):
        if not model_path.is_file():
            raise BundleError(f"{model_path}: missing {part} model; the bundle is incomplete (re-run split)")
    actual_id = model_id_of_files(head_path, tail_path)
    if actual_id != manifest.model_id:
        raise BundleError(
            f"{manifest_path}: model_id {manifest.model_id} does not match {HEAD_FILE} + {TAIL_FILE} "
            f"({actual_id}); the model files changed after split (re-run split)"
        )
    head, tail = _GraphIO.read(head_path), _GraphIO.read(tail_path)
    _check_head(manifest, head, head_path)
    _check_tail(manifest, tail, tail_path)
    labels = _read_labels(root, manifest, tail)
    return Bundle(path=root, manifest=manifest, head_path=head_path, tail_path=tail_path, labels=labels)


def write_bundle(
    out_dir: str | os.PathLike,
    head_bytes: bytes,
    tail_bytes: bytes,
    manifest: Manifest,
    labels: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Bundle:
    """Write and verify a bundle in a temp dir beside `out_dir`, then rename it into place.

    `model_id`, `format_version` and `labels_file` are set here from what is actually written.
    """
    out = _output_dir(out_dir, overwrite)
    final = dataclasses.replace(
        manifest,
        format_version=FORMAT_VERSION,
        model_id=compute_model_id(head_bytes, tail_bytes),
        labels_file=LABELS_FILE if labels is not None else None,
    )
    tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()
    except OSError as exc:  # name what the user asked for, not the temp dir beside it
        raise OSError(exc.errno, exc.strerror, str(out)) from exc
    try:
        write_durably(tmp / HEAD_FILE, head_bytes)
        write_durably(tmp / TAIL_FILE, tail_bytes)
        if labels is not None:
            write_durably(tmp / LABELS_FILE, (json.dumps(list(labels), indent=1) + "\n").encode("utf-8"))
        write_durably(tmp / MANIFEST_FILE, _manifest_text(final, str(out / MANIFEST_FILE)).encode("utf-8"))
        fsync_dir(tmp)
        verified = load_bundle(tmp)
        replace_dir(tmp, out)
    except BundleError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BundleError(str(exc).replace(str(tmp), str(out))) from None  # name the files the user asked for
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dataclasses.replace(verified, path=out, head_path=out / HEAD_FILE, tail_path=out / TAIL_FILE)


def _output_dir(out_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Where a bundle may be written: refuse a file, an existing bundle (unless `overwrite`) or a foreign folder."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out}: exists and is not a directory; choose another output path")
    if out.exists() and not overwrite:
        raise BundleError(f"{out}: already exists; choose another output directory or pass overwrite=True")
    if out.exists() and not (out / MANIFEST_FILE).is_file() and any(out.iterdir()):
        raise BundleError(
            f"{out}: is a non-empty directory without {MANIFEST_FILE}; refusing to replace what is not a bundle"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def update_quantization(bundle_path: str | os.PathLike, quantization: QuantizationSpec) -> None:
    """Replace the manifest's quantization section (atomically); the models and model_id stay as they are."""
    atomic_write_text(*manifest_with_quantization(bundle_path, quantization))


def manifest_with_quantization(bundle_path: str | os.PathLike, quantization: QuantizationSpec) -> tuple[Path, str]:
    """The manifest's path and its validated text with `quantization` in it, for a caller that writes it
    together with other files (calibrate: its --json and --plot first, the manifest last)."""
    bundle = load_bundle(bundle_path)
    if bundle.cuts:
        raise BundleError(
            f"{bundle.path}: is a multi-cut bundle; calibrate one of its cuts instead: "
            + ", ".join(str(c.bundle.path) for c in bundle.cuts)
        )
    manifest_path = bundle.path / MANIFEST_FILE
    return manifest_path, _manifest_text(
        dataclasses.replace(bundle.manifest, quantization=quantization), str(manifest_path)
    )


def _json_default(value: Any) -> Any:
    """Let numpy scalars and arrays (as calibrate produces) serialise as plain JSON numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _manifest_text(manifest: Manifest, origin: str) -> str:
    """Serialise and re-validate, so no invalid manifest is ever written."""
    try:
        text = json.dumps(manifest.to_dict(), indent=2, default=_json_default, allow_nan=False) + "\n"
    except ValueError as exc:
        raise BundleError(f"{origin}: {exc}; ranges and statistics must be finite (no NaN or infinity)") from exc
    Manifest.from_dict(json.loads(text), origin=origin)
    return text


def _check_schema(data: Any, origin: str) -> None:
    """Pick the schema by format_version, so a newer bundle gets an 'upgrade' message, not a schema dump."""
    if not isinstance(data, dict):
        raise BundleError(f"{origin}: the manifest must be a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > NEWEST_FORMAT_VERSION:
        raise BundleError(
            f"{origin}: this bundle was written by a newer splitcomp (format_version {version}); this "
            f"splitcomp reads format_version {FORMAT_VERSION} to {NEWEST_FORMAT_VERSION}: upgrade splitcomp, or "
            f"re-run split with this version"
        )
    schema = SCHEMAS.get(version) if isinstance(version, int) and not isinstance(version, bool) else None
    if schema is None:
        raise BundleError(
            f"{origin}: format_version must be an integer from 1 to {NEWEST_FORMAT_VERSION}, got {version!r}"
        )
    error = best_match(jsonschema.Draft7Validator(schema).iter_errors(data))
    if error is not None:
        raise BundleError(f"{origin}: {_where(error.absolute_path)}: {error.message}")


def _check_rules(m: Manifest, origin: str) -> None:
    """Cross-field rules a JSON schema cannot say clearly."""
    names = [c.name for c in m.cut]
    if len(set(names)) != len(names):
        raise BundleError(f"{origin}: cut: tensor names must be unique, got {names}")
    labels_file = m.labels_file
    if labels_file is not None and (labels_file in (".", "..") or "/" in labels_file or "\\" in labels_file):
        raise BundleError(f"{origin}: labels_file must be a plain file name inside the bundle, got {labels_file!r}")
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


@dataclass
class _GraphIO:
    """Declared graph inputs and outputs of an ONNX file: name -> (numpy dtype name, dims with DYNAMIC)."""

    inputs: dict[str, tuple[str, list[int]]]
    outputs: dict[str, tuple[str, list[int]]]

    @classmethod
    def read(cls, path: Path) -> _GraphIO:
        """Read only what validation needs, refusing weights kept outside the file (model_id would not cover them)."""
        try:
            model = onnx.load(str(path), load_external_data=False)
        except (DecodeError, OSError, ValueError) as exc:
            raise BundleError(f"{path}: not a readable ONNX model ({exc}); re-run split") from exc
        external = next((t for t in _stored_tensors(model) if uses_external_data(t)), None)
        if external is not None:
            raise BundleError(
                f"{path}: tensor '{external.name}' keeps its data in an external file; a bundle must be "
                f"self-contained (model_id covers only {HEAD_FILE} and {TAIL_FILE}, and split writes every weight "
                f"into them): re-run split"
            )
        graph = model.graph
        initialised = {t.name for t in graph.initializer}
        inputs = {v.name: _value_info(v, path) for v in graph.input if v.name not in initialised}
        return cls(inputs=inputs, outputs={v.name: _value_info(v, path) for v in graph.output})


def _stored_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a model carries: initializers and node attributes, in subgraphs and functions too."""

    def in_graph(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
        yield from graph.initializer
        yield from (sparse.values for sparse in graph.sparse_initializer)
        yield from in_nodes(graph.node)

    def in_nodes(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
        for attribute in (a for node in nodes for a in node.attribute):
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            for graph in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                yield from in_graph(graph)

    yield from in_graph(model.graph)
    for function in model.functions:
        yield from in_nodes(function.node)


def _value_info(value: onnx.ValueInfoProto, path: Path) -> tuple[str, list[int]]:
    tensor = value.type.tensor_type
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name if tensor.elem_type else "?"
    except KeyError:
        raise BundleError(
            f"{path}: tensor '{value.name}' has unknown element type {tensor.elem_type}; re-run split"
        ) from None
    dims = [d.dim_value if d.HasField("dim_value") else DYNAMIC for d in tensor.shape.dim]
    return dtype, dims


def _shapes_agree(a: Sequence[int], b: Sequence[int]) -> bool:
    return len(a) == len(b) and all(x == y or DYNAMIC in (x, y) for x, y in zip(a, b))


def _check_head(m: Manifest, head: _GraphIO, path: Path) -> None:
    if list(head.inputs) != [m.input.name]:
        raise BundleError(
            f"{path}: inputs are {list(head.inputs)}; the head must take exactly the image input "
            f"'{m.input.name}' named in {MANIFEST_FILE} input.name"
        )
    dtype, dims = head.inputs[m.input.name]
    image = [m.input.shape[0], 3, m.input.height, m.input.width]  # what the preprocessor hands the head
    if dtype != "float32" or not _shapes_agree(dims, image):
        raise BundleError(
            f"{path}: image input '{m.input.name}' is {dtype} {dims} in {HEAD_FILE} but {MANIFEST_FILE} input "
            f"describes float32 {image} (shape [N, 3, height, width]); re-run split"
        )
    for cut in m.cut:
        if cut.name not in head.outputs:
            raise BundleError(
                f"{path}: cut tensor '{cut.name}' is not an output of {HEAD_FILE} (its outputs: {list(head.outputs)})"
            )
        dtype, dims = head.outputs[cut.name]
        if dtype != cut.dtype or not _shapes_agree(dims, cut.shape):
            raise BundleError(
                f"{path}: cut tensor '{cut.name}' is {dtype} {dims} in {HEAD_FILE} but {cut.dtype} {cut.shape} "
                f"in {MANIFEST_FILE}"
            )


def _check_tail(m: Manifest, tail: _GraphIO, path: Path) -> None:
    cut_names = [c.name for c in m.cut]
    for name in cut_names:
        if name not in tail.inputs:
            raise BundleError(
                f"{path}: cut tensor '{name}' is not an input of {TAIL_FILE} (its inputs: {list(tail.inputs)})"
            )
    extra = [name for name in tail.inputs if name not in cut_names]
    if extra:
        raise BundleError(
            f"{path}: inputs {extra} are not cut tensors; the tail may take only the cut tensors {cut_names} "
            f"(re-split so that everything else comes through the cut)"
        )
    for cut in m.cut:
        dtype, dims = tail.inputs[cut.name]
        if dtype != cut.dtype or not _shapes_agree(dims, cut.shape):
            raise BundleError(
                f"{path}: cut tensor '{cut.name}' is {dtype} {dims} in {TAIL_FILE} but {cut.dtype} {cut.shape} "
                f"in {MANIFEST_FILE}"
            )
    if m.output.name not in tail.outputs:
        raise BundleError(
            f"{path}: output '{m.output.name}' named in {MANIFEST_FILE} output.name is not an output of "
            f"{TAIL_FILE} (its outputs: {list(tail.outputs)})"
        )
    dims = tail.outputs[m.output.name][1]
    if dims and not _shapes_agree(dims, m.output.shape):
        raise BundleError(
            f"{path}: output '{m.output.name}' has shape {dims} in {TAIL_FILE} but {m.output.shape} in {MANIFEST_FILE}"
        )


def _read_labels(root: Path, m: Manifest, tail: _GraphIO) -> list[str] | None:
    if m.labels_file is None:
        return None
    path = root / m.labels_file
    if not path.is_file():
        raise BundleError(f"{path}: labels file named in {MANIFEST_FILE} labels_file is missing")
    labels = load_labels(path)
    dims = tail.outputs[m.output.name][1]
    classes = m.output.shape[-1] if m.output.shape[-1] != DYNAMIC or not dims else dims[-1]
    if classes != DYNAMIC and len(labels) != classes:
        raise BundleError(f"{path}: {len(labels)} labels, but the model outputs {classes} classes")
    return labels


# Multi-cut bundles (format_version 2) ------------------------------------------------------------------------

CUTS_DIR = "cuts"
CUT_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # also a directory name: no separators, no "..", no hidden files
_MBPS = {"type": "number", "minimum": 0}

MULTI_CUT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "splitcomp multi-cut bundle manifest, format_version 2",
    "type": "object",
    "additionalProperties": False,
    "required": ["format_version", "model_id", "source", "default_cut", "cuts", "link", "created_by"],
    "properties": {
        "format_version": {"const": MULTI_CUT_FORMAT_VERSION},
        "model_id": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        "source": {"type": "string"},
        "default_cut": {"type": "string", "pattern": CUT_ID_PATTERN},
        "cuts": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["cut_id", "model_id", "bandwidth_mbps"],
                "properties": {
                    "cut_id": {"type": "string", "pattern": CUT_ID_PATTERN},
                    "model_id": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                    "bandwidth_mbps": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["min", "max"],
                        "properties": {"min": _MBPS, "max": {"anyOf": [_MBPS, {"type": "null"}]}},
                    },
                },
            },
        },
        "link": {
            "type": "object",
            "properties": {
                "transport_overhead_ms": {"type": "number"},
                "feedback_overhead_ms": {"type": "number", "minimum": 0},
                "burst_bytes": {"type": "number", "minimum": 0},
            },
        },
        "plan": {"type": "object"},
        "created_by": {"type": "string"},
    },
}
SCHEMAS[MULTI_CUT_FORMAT_VERSION] = MULTI_CUT_SCHEMA


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


def multi_cut_model_id(model_ids: Sequence[str]) -> str:
    """The digest of a multi-cut bundle: its cuts' model_ids in order, so adding, removing or moving one changes it."""
    digest = hashlib.sha256()
    for model_id in model_ids:
        digest.update(model_id.encode("ascii") + b"\n")
    return "sha256:" + digest.hexdigest()


def _load_multi_cut(root: Path, data: dict[str, Any]) -> Bundle:
    """Validate the top-level manifest, load every cut as a single-cut bundle, and check they are one model's cuts."""
    origin = str(root / MANIFEST_FILE)
    _check_schema(data, origin)
    _check_finite(data, origin)
    entries = data["cuts"]
    ids = [e["cut_id"] for e in entries]
    if len(set(ids)) != len(ids):
        raise BundleError(f"{origin}: cuts: cut_id values must be unique, got {ids}")
    if data["default_cut"] not in ids:
        raise BundleError(f"{origin}: default_cut {data['default_cut']!r} is not one of the cuts {ids}")
    expected_id = multi_cut_model_id([e["model_id"] for e in entries])
    if data["model_id"] != expected_id:
        raise BundleError(
            f"{origin}: model_id {data['model_id']} is not the digest of the cuts' model_ids ({expected_id}); "
            f"the manifest was edited (re-run plan --out)"
        )
    _check_ranges(entries, origin)
    choices = []
    for entry in entries:
        cut_dir = root / CUTS_DIR / entry["cut_id"]
        sub_manifest = cut_dir / MANIFEST_FILE
        sub = load_bundle(cut_dir)
        if sub.cuts:
            raise BundleError(f"{sub_manifest}: a cut of a multi-cut bundle must be a single-cut bundle (format 1)")
        if sub.manifest.model_id != entry["model_id"]:
            raise BundleError(
                f"{sub_manifest}: model_id {sub.manifest.model_id} is not the {entry['model_id']} that {origin} "
                f"lists for cut {entry['cut_id']!r}; the cut was replaced after plan (re-run plan --out)"
            )
        info = {k: v for k, v in entry.items() if k not in ("cut_id", "model_id", "bandwidth_mbps")}
        band = entry["bandwidth_mbps"]
        choices.append(
            CutChoice(entry["cut_id"], dataclasses.replace(sub, cut_id=entry["cut_id"]), band["min"], band["max"], info)
        )
    _check_same_model(choices)
    default = next(c.bundle for c in choices if c.cut_id == data["default_cut"])
    return dataclasses.replace(default, path=root, cuts=choices, link=dict(data["link"]))


def _check_ranges(entries: Sequence[dict[str, Any]], origin: str) -> None:
    """The cuts' bandwidth ranges must tile [0, infinity) in order, so every rate has exactly one cut."""
    edge = 0.0
    for i, entry in enumerate(entries):
        low, high = entry["bandwidth_mbps"]["min"], entry["bandwidth_mbps"]["max"]
        last = i == len(entries) - 1
        if low != edge or (high is None) != last or (high is not None and high <= low):
            raise BundleError(
                f"{origin}: cuts[{i}].bandwidth_mbps: the ranges must follow each other from 0 with no gap, in "
                f"increasing order, the last one open (max null); got min {low}, max {high} after {edge}"
            )
        edge = high if high is not None else edge


def _check_same_model(choices: Sequence[CutChoice]) -> None:
    """Every cut must take the same images and give the same classes, or switching would change the answers."""
    first = choices[0].bundle
    for choice in choices[1:]:
        other = choice.bundle
        for what, a, b in (
            ("input", first.manifest.input, other.manifest.input),
            ("output", first.manifest.output.kind, other.manifest.output.kind),
            ("labels", first.labels, other.labels),
        ):
            if a != b:
                raise BundleError(
                    f"{other.path / MANIFEST_FILE}: its {what} differs from cut {choices[0].cut_id!r}'s; every cut "
                    f"of a multi-cut bundle must be a split of the same model"
                )


def write_multi_cut_bundle(
    out_dir: str | os.PathLike,
    cuts: Sequence[CutChoice],
    default_cut: str,
    link: dict[str, Any],
    source: str = "",
    plan: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Bundle:
    """Copy each cut's single-cut bundle into cuts/<cut_id>/ beside a format_version 2 manifest, verified, atomically.

    `cuts` are in increasing order of bandwidth; each `bundle` is a loaded single-cut bundle (from `split`).
    """
    out = _output_dir(out_dir, overwrite)
    entries = [
        {
            "cut_id": c.cut_id,
            "model_id": c.bundle.manifest.model_id,
            "bandwidth_mbps": {"min": c.min_mbps, "max": c.max_mbps},
            **c.info,
        }
        for c in cuts
    ]
    manifest: dict[str, Any] = {
        "format_version": MULTI_CUT_FORMAT_VERSION,
        "model_id": multi_cut_model_id([e["model_id"] for e in entries]),
        "source": source,
        "default_cut": default_cut,
        "cuts": entries,
        "link": link,
        "created_by": "splitcomp_tools plan",
    }
    if plan is not None:
        manifest["plan"] = plan
    try:
        text = json.dumps(manifest, indent=2, default=_json_default, allow_nan=False) + "\n"
    except ValueError as exc:
        raise BundleError(f"{out / MANIFEST_FILE}: {exc}; predictions must be finite numbers") from exc
    tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for c in cuts:
            cut_dir = tmp / CUTS_DIR / c.cut_id
            cut_dir.mkdir(parents=True)
            labels = c.bundle.manifest.labels_file
            names = [MANIFEST_FILE, HEAD_FILE, TAIL_FILE, *([labels] if labels else [])]
            for name in names:
                write_durably(cut_dir / name, (c.bundle.path / name).read_bytes())
            fsync_dir(cut_dir)
        write_durably(tmp / MANIFEST_FILE, text.encode("utf-8"))
        fsync_dir(tmp)
        load_bundle(tmp)
        replace_dir(tmp, out)
    except BundleError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BundleError(str(exc).replace(str(tmp), str(out))) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_bundle(out)
