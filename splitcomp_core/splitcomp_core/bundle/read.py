"""Loading a bundle directory: refused at start-up with one message naming the problem and the file.

A bundle that loads is one whose manifest is valid, whose model files are the ones its model_id names,
and whose head, tail and labels agree with the manifest; nothing fails later on the robot or the edge
server. A multi-cut bundle (format_version 2) is handed to multi_cut.py, which loads each cut with this.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from splitcomp_core.bundle.manifest import Bundle, Manifest
from splitcomp_core.bundle.model_files import GraphIO, check_head, check_tail, model_id_of_files
from splitcomp_core.bundle.multi_cut import load_multi_cut
from splitcomp_core.bundle.schema import DYNAMIC, HEAD_FILE, MANIFEST_FILE, MULTI_CUT_FORMAT_VERSION, TAIL_FILE
from splitcomp_core.bundle.validate import reject_non_finite
from splitcomp_core.detection import check_decoder
from splitcomp_core.entropy import ENTROPY_FILE, load_entropy_models
from splitcomp_core.errors import BundleError
from splitcomp_core.postprocess import load_labels


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
        data = json.loads(text, parse_constant=reject_non_finite)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except ValueError as exc:
        raise BundleError(f"{path}: {exc}") from exc
    return data


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
        return load_multi_cut(root, data, load_bundle)
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
    head, tail = GraphIO.read(head_path), GraphIO.read(tail_path)
    check_head(manifest, head, head_path)
    check_tail(manifest, tail, tail_path)
    if manifest.detection is not None:
        try:
            check_decoder(manifest.detection, {n: dims for n, (_, dims) in tail.outputs.items()}, _input_size(manifest))
        except BundleError as exc:
            raise BundleError(f"{manifest_path}: {exc}") from None
    labels = _read_labels(root, manifest, tail)
    _check_entropy_default(root, manifest)
    return Bundle(path=root, manifest=manifest, head_path=head_path, tail_path=tail_path, labels=labels)


def _check_entropy_default(root: Path, m: Manifest) -> None:
    """A bundle whose default codec is entropy (a distilled bottleneck's) must hold a table for every cut tensor at
    its default bits and mode, or no head could start with it."""
    q = m.quantization
    if q.codec != "entropy":
        return
    models = load_entropy_models(root)
    for t in m.cut:
        table = models.for_use(t.name, q.bits, q.mode)
        if table is None:
            raise BundleError(
                f"{root / ENTROPY_FILE}: no entropy table for '{t.name}' at {q.bits} bits ({q.mode}), which "
                f"{MANIFEST_FILE} sends by default with codec entropy; write the tables again (distill, calibrate)"
            )
        channels = t.shape[1] if len(t.shape) >= 2 else 1
        if table.rows not in (1, channels):
            raise BundleError(
                f"{root / ENTROPY_FILE}: the table of '{t.name}' has {table.rows} rows but the tensor has {channels} "
                f"channels; write the tables again (distill, calibrate)"
            )


def _read_labels(root: Path, m: Manifest, tail: GraphIO) -> list[str] | None:
    """The labels file the manifest names, one label per class the tail outputs; None if it names none."""
    if m.labels_file is None:
        return None
    path = root / m.labels_file
    if not path.is_file():
        raise BundleError(f"{path}: labels file named in {MANIFEST_FILE} labels_file is missing")
    labels = load_labels(path)
    dims = tail.outputs[m.output.name][1]
    axis = 1 if m.task == "detection" else -1  # a detection output (the heatmap) holds its classes as channels
    classes = m.output.shape[axis] if m.output.shape[axis] != DYNAMIC or not dims else dims[axis]
    if classes != DYNAMIC and len(labels) != classes:
        raise BundleError(f"{path}: {len(labels)} labels, but the model outputs {classes} classes")
    return labels


def _input_size(m: Manifest) -> tuple[int, int]:
    """The model input's (width, height), as decoders take sizes."""
    return m.input.width, m.input.height
