"""Models: the shipped ones and uploads (ONNX, or TorchScript exported as `export` does), their cuts, and splitting.

A shipped model is added to the workspace when first opened (exported then if it has no installed
file); an analysis is computed once per model and cut size. A split makes a bundle, verified
against the model; a failed upload or split leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.studio import adapter, catalog
from splitcomp_tools.studio.bodies import LabelsFile, PreprocessingBody, SplitBody, multipart_doc
from splitcomp_tools.studio.errors import Refused
from splitcomp_tools.studio.state import Studio, StudioDep
from splitcomp_tools.studio.store import BundleEntry, ModelEntry, display_name
from splitcomp_tools.studio.uploads import UploadedFile, read_form

MAX_INPUT_DIMS = 8
MAX_INPUT_ELEMENTS = 1 << 26
UPLOAD_FIELDS = {
    "format": {"type": "string", "enum": ["onnx", "torchscript"], "description": "default: from the file"},
    "input_shape": {
        "type": "string",
        "description": "e.g. 1,3,224,224: needed for TorchScript, and for ONNX declared with a dynamic size",
    },
    "name": {"type": "string"},
}

router = APIRouter()


@router.get("/api/models")
def list_models(studio: StudioDep) -> dict[str, Any]:
    """Uploaded models, and the ones shipped with splitcomp (analysed when first opened)."""
    shipped = [
        {"id": m.id, "name": m.name, "description": m.description, "format": "shipped", "shipped": True}
        for m in catalog.shipped().values()
    ]
    uploaded = [{**m.meta(), "shipped": False} for m in studio.workspace.models() if m.shipped is None]
    return {"models": [*shipped, *uploaded]}


@router.post("/api/models", status_code=201, openapi_extra=multipart_doc(UPLOAD_FIELDS, "file"))
async def upload_model(request: Request, studio: StudioDep) -> JSONResponse:
    """Upload an ONNX model, or a TorchScript file with its input shape (exported as `export` does)."""
    form = await read_form(request, studio.workspace.tmp_path, max_files=1)
    try:
        files = form.files_of("file")
        if len(files) != 1 or files[0].size == 0:
            raise Refused(400, "send the model as one non-empty file in the form field 'file'")
        kind = form.text("format") or await run_in_threadpool(_sniff, files[0].path) or "onnx"
        name = display_name(form.text("name") or files[0].filename, "model")
        record = await run_in_threadpool(add_upload, studio, files[0], kind, form.text("input_shape"), name)
    finally:
        form.discard()
    return JSONResponse(record, status_code=201)


@router.get("/api/models/{model_id}")
def get_model(
    model_id: str, studio: StudioDep, max_tensors: Annotated[int, Query(ge=1, le=adapter.MAX_CUT_TENSORS)] = 1
) -> dict:
    """The analysis: every cut with the fields of `analyze --json` (max_tensors 2 or 3: multi-tensor cuts too)."""
    return model_json(studio, model_entry(studio, model_id), max_tensors)


@router.delete("/api/models/{model_id}", status_code=204)
def delete_model(model_id: str, studio: StudioDep) -> None:
    studio.workspace.delete_model(model_id)


@router.post("/api/models/{model_id}/split", status_code=201)
def split(model_id: str, body: SplitBody, studio: StudioDep) -> dict[str, Any]:
    """Split at `at`, verify head∘tail against the model, and keep the bundle: {bundle_id, manifest, verification}."""
    return split_model(studio, model_entry(studio, model_id), body)


def model_entry(studio: Studio, key: str) -> ModelEntry:
    """The workspace's model `key`; a shipped one is added (and exported if need be) when first asked for."""
    item = catalog.shipped().get(key)
    if item is None:
        return studio.workspace.model(key)
    with contextlib.suppress(Refused):
        return studio.workspace.model(key)
    return studio.workspace.add_shipped(
        ModelEntry(key, item.name, "shipped", item.onnx or _export_shipped(studio, item), 0.0, shipped=key)
    )


def _export_shipped(studio: Studio, item: catalog.ShippedModel) -> Path:
    out = studio.workspace.shipped_dir / item.id / "model.onnx"
    with studio.export_locks[item.id]:
        if not out.is_file():
            out.parent.mkdir(exist_ok=True)
            assert item.export is not None  # an entry has an installed file or an export source
            adapter.export_pretrained_model(item.export, out)
    return out


def analysis(entry: ModelEntry, max_tensors: int) -> dict[str, Any]:
    """`analyze --json` of the model, computed once per cut size."""
    with entry.lock:
        if max_tensors not in entry.analyses:
            entry.analyses[max_tensors] = adapter.analyze(entry.path, max_tensors, entry.input_shape)
        return entry.analyses[max_tensors]


def model_json(studio: Studio, entry: ModelEntry, max_tensors: int = 1) -> dict[str, Any]:
    """What GET /api/models/{id} answers: the model, its split defaults and its analysis."""
    found = analysis(entry, max_tensors)
    item = catalog.shipped().get(entry.shipped or "")
    recorded = item.preprocessing if item else adapter.recorded_preprocessing_of(entry.path)
    defaults = adapter.default_preprocessing(found["inputs"], recorded)
    return {
        "id": entry.id,
        "name": entry.name,
        "format": entry.format,
        "shipped": entry.shipped is not None,
        "has_labels": bool(item and item.labels),
        "defaults": defaults,
        **found,
    }


def add_upload(studio: Studio, upload: UploadedFile, kind: str, input_shape: str | None, name: str) -> dict[str, Any]:
    """Keep an uploaded model (a TorchScript file exported to ONNX first); its folder goes if anything fails."""
    key, folder = studio.workspace.new_model_dir()
    onnx_path = folder / "model.onnx"
    try:
        shape = _input_shape(input_shape) if input_shape else None
        if kind == "onnx":
            os.replace(upload.path, onnx_path)
        elif kind == "torchscript":
            if shape is None:
                raise Refused(400, "a TorchScript model needs input_shape, e.g. 1,3,224,224")
            source = folder / "source.pt"
            os.replace(upload.path, source)
            adapter.export_torch(source, shape, onnx_path, studio.settings.trust_pickle)
            source.unlink()
        else:
            raise Refused(400, f"format must be onnx or torchscript, got {kind!r}")
        entry = ModelEntry(key, name, kind, onnx_path, time.time(), input_shape=shape)
        record = model_json(studio, entry)
        studio.workspace.add_model(entry)
        return record
    except SplitcompError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        message = str(exc)
        for path in (onnx_path, folder / "source.pt"):
            message = message.replace(str(path), name)
        raise Refused(getattr(exc, "status", 400), studio.scrub(message)) from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def split_model(studio: Studio, entry: ModelEntry, body: SplitBody) -> dict[str, Any]:
    """Split `entry` as `body` says into a new bundle of the workspace; its folder goes if the split fails."""
    defaults = model_json(studio, entry)["defaults"]
    prep = body.preprocessing or PreprocessingBody(**defaults)
    size = (prep.height, prep.width) if prep.height and prep.width else None
    options = adapter.preprocessing(size, prep.resize, prep.crop_size, prep.mean, prep.std, prep.color_order)
    labels_tmp = None
    item = catalog.shipped().get(entry.shipped or "")
    labels = item.labels if item and body.labels == "model" else None
    if isinstance(body.labels, LabelsFile):
        labels_tmp = labels = studio.workspace.tmp_path()
        labels.write_text(body.labels.file, encoding="utf-8")
    key, folder = studio.workspace.new_bundle_dir()
    try:
        made = adapter.split(
            entry.path, body.at, folder / "bundle", options, labels, body.output_kind, body.dynamic_batch
        )
        bundle = BundleEntry(key, folder, entry.id, entry.name, list(body.at), time.time(), made["verification"])
        studio.workspace.add_bundle(bundle)
    except SplitcompError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        message = str(exc).replace(str(labels_tmp), "the labels file") if labels_tmp else str(exc)
        raise Refused(400, studio.scrub(message)) from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        if labels_tmp is not None:
            labels_tmp.unlink(missing_ok=True)
    return {"bundle_id": key, **made}


def _input_shape(text: str) -> list[int]:
    try:
        dims = [int(d) for d in text.split(",")]
    except ValueError:
        raise Refused(400, f"input_shape {text!r}: expected comma-separated integers like 1,3,224,224") from None
    elements = 1
    for d in dims:
        elements *= max(d, 0)
    if not 1 <= len(dims) <= MAX_INPUT_DIMS or min(dims) < 1 or elements > MAX_INPUT_ELEMENTS:
        raise Refused(
            400,
            f"input_shape {text!r}: 1 to {MAX_INPUT_DIMS} positive dimensions, at most {MAX_INPUT_ELEMENTS:,} elements",
        )
    return dims


def _sniff(path: Path) -> str:
    """torchscript for a zip archive (TorchScript, torch.save) or a bare pickle, onnx otherwise (protobuf has no magic)."""
    with path.open("rb") as f:
        head = f.read(4)
    return "torchscript" if head.startswith((b"PK\x03\x04", b"\x80")) else "onnx"
