"""The studio's HTTP side: the page, and the JSON API it calls (which scripts can call too).

Every route is a thin adapter: it checks and bounds the request, then calls `adapter` (the tools)
through the workspace. Errors are JSON `{"detail": message}` with a 4xx status; a request that
fails leaves the server serving and the workspace as it was.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import shutil
import tarfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from ament_index_python.packages import get_package_share_directory
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from splitcomp_core.bundle import MODES
from splitcomp_core.codec import CODE_BITS, CODEC_NAMES, RAW_BITS
from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write, atomic_write_text
from splitcomp_core.quantization import EncoderConfig
from splitcomp_tools.studio import adapter, catalog
from splitcomp_tools.studio.config import (
    MAX_CALIBRATION_FRAMES,
    MAX_CLASSIFY_IMAGES,
    MAX_FILES,
    MAX_IMAGE_PIXELS,
    MAX_INPUT_SIDE,
    MAX_JSON_BYTES,
    MAX_SAMPLE_FRAMES,
    Settings,
)
from splitcomp_tools.studio.errors import Refused, not_found
from splitcomp_tools.studio.events import Hub
from splitcomp_tools.studio.jobs import Jobs
from splitcomp_tools.studio.store import BundleEntry, ModelEntry, Workspace, display_name
from splitcomp_tools.studio.uploads import BodyLimit, Form, UploadedFile, image_suffix, read_form

MAX_CLASSIFIERS = 4  # bundles whose ONNX Runtime sessions stay loaded for test images
MAX_INPUT_DIMS = 8
MAX_INPUT_ELEMENTS = 1 << 26
PAGE_FILES = {"studio.js": "text/javascript", "studio.css": "text/css"}  # besides index.html: all the page loads
CALIBRATION_PHASES = {"frames": (0.0, 0.6), "encodings": (0.6, 1.0)}


def static_dir() -> Path:
    """The page's files where the package installs them (share/splitcomp_tools/studio)."""
    return Path(get_package_share_directory("splitcomp_tools")) / "studio"


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


class CalibrateBody(BaseModel):
    source: str = Field("generator", max_length=64, description="generator, photos, or upload (multipart files)")
    count: int = Field(200, ge=1, le=MAX_CALIBRATION_FRAMES)
    bits: int | None = Field(None, ge=1, le=8, description="default: the bundle's bits (4 for raw floats)")
    method: Literal["mse", "percentile"] = "mse"
    seed: int = Field(0, ge=0, le=2**31 - 1)


def _multipart(fields: dict[str, Any], files: str) -> dict[str, Any]:
    properties = {**fields, files: {"type": "array", "items": {"type": "string", "format": "binary"}}}
    return {
        "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": properties}}}}
    }


class Studio:
    """What one server holds: the workspace, its jobs, the live feed, and the loaded pipelines."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workspace = Workspace(settings.workspace)
        self.jobs = Jobs(settings.max_active_jobs)
        self.hub = Hub()
        self.live: Any = None
        if settings.ros:
            try:
                from splitcomp_tools.studio.live import LiveFeed  # the one module of the studio that needs ROS
            except ImportError as exc:
                raise SplitcompError(f"--ros needs rclpy and splitcomp_msgs ({exc}); source scripts/env.sh") from exc
            self.live = LiveFeed(self.hub, settings.namespace)
        self._lock = threading.Lock()
        self._closed = False
        self._classifiers: collections.OrderedDict[str, tuple[int, adapter.Classifier]] = collections.OrderedDict()
        self._export_locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self._sources: list[str] | None = None

    def close(self) -> None:
        """Stop the jobs and the live feed (once; both the server and its lifespan call this)."""
        with self._lock:
            live, self.live = self.live, None
            if self._closed:
                return
            self._closed = True
        self.hub.close()
        self.jobs.close()
        if live is not None:
            live.close()

    def scrub(self, message: str) -> str:
        """A tool's message without the workspace's own paths (which mean nothing to the page)."""
        return message.replace(str(self.workspace.root) + os.sep, "")

    def frame_sources(self) -> list[str]:
        """The frame sources the page may offer: generated frames always; the photos (calibrate on photos:train,
        test on photos:test: no photo in both) when their wheels are installed."""
        if self._sources is None:
            photos = ["photos:train", "photos:test", "photos"] if adapter.source_available("photos") else []
            self._sources = ["generator", *photos]
        return self._sources

    # models

    def model_entry(self, key: str) -> ModelEntry:
        item = catalog.shipped().get(key)
        if item is None:
            return self.workspace.model(key)
        with contextlib.suppress(Refused):
            return self.workspace.model(key)
        return self.workspace.add_shipped(
            ModelEntry(key, item.name, "shipped", item.onnx or self._export_shipped(item), 0.0, shipped=key)
        )

    def _export_shipped(self, item: catalog.ShippedModel) -> Path:
        out = self.workspace.shipped_dir / item.id / "model.onnx"
        with self._export_locks[item.id]:
            if not out.is_file():
                out.parent.mkdir(exist_ok=True)
                assert item.export is not None  # an entry has an installed file or an export source
                adapter.export_pretrained_model(item.export, out)
        return out

    def analysis(self, entry: ModelEntry, max_tensors: int) -> dict[str, Any]:
        with entry.lock:
            if max_tensors not in entry.analyses:
                entry.analyses[max_tensors] = adapter.analyze(entry.path, max_tensors, entry.input_shape)
            return entry.analyses[max_tensors]

    def model_json(self, entry: ModelEntry, max_tensors: int = 1) -> dict[str, Any]:
        analysis = self.analysis(entry, max_tensors)
        item = catalog.shipped().get(entry.shipped or "")
        defaults = adapter.default_preprocessing(analysis["inputs"], item.preprocessing if item else None)
        return {
            "id": entry.id,
            "name": entry.name,
            "format": entry.format,
            "shipped": entry.shipped is not None,
            "has_labels": bool(item and item.labels),
            "defaults": defaults,
            **analysis,
        }

    def add_upload(self, upload: UploadedFile, kind: str, input_shape: str | None, name: str) -> dict[str, Any]:
        key, folder = self.workspace.new_model_dir()
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
                adapter.export_torch(source, shape, onnx_path, self.settings.trust_pickle)
                source.unlink()
            else:
                raise Refused(400, f"format must be onnx or torchscript, got {kind!r}")
            entry = ModelEntry(key, name, kind, onnx_path, time.time(), input_shape=shape)
            record = self.model_json(entry)
            self.workspace.add_model(entry)
            return record
        except SplitcompError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            message = str(exc)
            for path in (onnx_path, folder / "source.pt"):
                message = message.replace(str(path), name)
            raise Refused(getattr(exc, "status", 400), self.scrub(message)) from exc
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    # bundles

    def split(self, entry: ModelEntry, body: SplitBody) -> dict[str, Any]:
        defaults = self.model_json(entry)["defaults"]
        prep = body.preprocessing or PreprocessingBody(**defaults)
        size = (prep.height, prep.width) if prep.height and prep.width else None
        options = adapter.preprocessing(size, prep.resize, prep.crop_size, prep.mean, prep.std, prep.color_order)
        labels_tmp = None
        item = catalog.shipped().get(entry.shipped or "")
        labels = item.labels if item and body.labels == "model" else None
        if isinstance(body.labels, LabelsFile):
            labels_tmp = labels = self.workspace.tmp_path()
            labels.write_text(body.labels.file, encoding="utf-8")
        key, folder = self.workspace.new_bundle_dir()
        try:
            made = adapter.split(entry.path, body.at, folder / "bundle", options, labels, body.output_kind)
            bundle = BundleEntry(key, folder, entry.id, entry.name, list(body.at), time.time(), made["verification"])
            self.workspace.add_bundle(bundle)
        except SplitcompError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            message = str(exc).replace(str(labels_tmp), "the labels file") if labels_tmp else str(exc)
            raise Refused(400, self.scrub(message)) from exc
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            if labels_tmp is not None:
                labels_tmp.unlink(missing_ok=True)
        return {"bundle_id": key, **made}

    def bundle_json(self, entry: BundleEntry) -> dict[str, Any]:
        calibration = entry.dir / "calibration.json"
        return {
            "bundle_id": entry.id,
            "model": entry.model_id,
            "model_name": entry.model_name,
            "at": entry.at,
            "verification": entry.verification,
            "manifest": adapter.manifest(entry.bundle_dir),
            "calibration": json.loads(calibration.read_text()) if calibration.is_file() else None,
            "calibrating": self.jobs.running_on(entry.id),
            "download_url": f"/api/bundles/{entry.id}/download",
        }

    def calibration_inputs(self, entry: BundleEntry, form: Form) -> str:
        """Move an upload of images (or one video) into the bundle's inputs; the frame source that reads them."""
        files = form.files_of("files")
        if not files:
            raise Refused(400, "source 'upload' needs images or a video in the form field 'files'")
        inputs = entry.dir / "inputs"
        shutil.rmtree(inputs, ignore_errors=True)  # only the latest upload is kept
        inputs.mkdir()
        suffix = Path(files[0].filename).suffix.lower()
        if len(files) == 1 and suffix in adapter.VIDEO_SUFFIXES:
            video = inputs / f"video{suffix}"
            os.replace(files[0].path, video)
            size = adapter.video_size(video)
            if size is None:
                raise Refused(415, f"{files[0].filename}: OpenCV cannot read this video")
            if size[0] * size[1] > MAX_IMAGE_PIXELS:
                raise Refused(
                    413, f"{files[0].filename}: {size[0]}x{size[1]} frames are over {MAX_IMAGE_PIXELS:,} pixels"
                )
            return str(video)
        suffixes = [image_suffix(upload.path, upload.filename) for upload in files]
        for k, (upload, suffix) in enumerate(zip(files, suffixes)):
            os.replace(upload.path, inputs / f"{k:04d}{suffix}")
        return str(inputs)

    def calibrate(self, entry: BundleEntry, body: CalibrateBody, images: str) -> str:
        def finish(result: dict[str, Any]) -> dict[str, Any]:
            result.pop("bundle", None)
            result["images"] = body.source
            table = result["table"].replace(str(entry.bundle_dir), f"bundle {entry.id}").replace(images, body.source)
            result["table"] = self.scrub(table)
            result["plot_url"] = f"/api/bundles/{entry.id}/calibration.png?v={time.time_ns()}"
            atomic_write_text(entry.dir / "calibration.json", json.dumps(result))
            return result

        job = self.jobs.submit(
            "calibrate",
            entry.id,
            adapter.calibrate_bundle,
            {
                "bundle_dir": entry.bundle_dir,
                "images": images,
                "count": body.count,
                "bits": body.bits,
                "method": body.method,
                "seed": body.seed,
                "plot": entry.plot,
            },
            CALIBRATION_PHASES,
            finish,
        )
        return job.id

    def classifier(self, entry: BundleEntry) -> adapter.Classifier:
        """The bundle's pipelines, loaded once per manifest version (a calibration changes it)."""
        stamp = (entry.bundle_dir / "manifest.json").stat().st_mtime_ns
        with self._lock:
            cached = self._classifiers.get(entry.id)
            if cached is not None and cached[0] == stamp:
                self._classifiers.move_to_end(entry.id)
                return cached[1]
        made = adapter.Classifier(entry.bundle_dir)
        with self._lock:
            self._classifiers[entry.id] = (stamp, made)
            while len(self._classifiers) > MAX_CLASSIFIERS:
                self._classifiers.popitem(last=False)
        return made

    def classify(
        self, entry: BundleEntry, config: EncoderConfig, images: list[tuple[str, Callable[[], np.ndarray]]]
    ) -> dict[str, Any]:
        classifier = self.classifier(entry)
        result_id, folder = self.workspace.new_result_dir(entry)
        rows = []
        for k, (name, load) in enumerate(images):
            row = classifier(load(), config, folder / f"{k}.png")
            rows.append({"image": name, "overlay_url": f"/api/bundles/{entry.id}/results/{result_id}/{k}.png", **row})
        return {
            "bundle_id": entry.id,
            "config": {"bits": config.bits, "quantization": config.mode, "codec": config.codec},
            "images": rows,
        }


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


def _int(form: Form, name: str, default: int, low: int, high: int) -> int:
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


def create_app(settings: Settings, studio: Studio | None = None) -> FastAPI:
    """The FastAPI application of one studio (made from `settings` unless given)."""
    studio = studio or Studio(settings)
    page = static_dir()
    if not (page / "index.html").is_file():
        raise SplitcompError(f"{page}: the studio's page is not installed; run `make setup`")

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        studio.close()

    app = FastAPI(
        title="splitcomp studio",
        description="Upload a model, see its cuts, split, calibrate, test images, download the bundle.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's documentation pages load their scripts from a CDN; the page loads nothing
        redoc_url=None,
    )
    app.state.studio = studio
    app.add_middleware(BodyLimit, max_upload=settings.max_upload_bytes, max_json=MAX_JSON_BYTES)

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(SplitcompError)
    async def tool_error(_: Request, exc: SplitcompError) -> JSONResponse:
        return JSONResponse({"detail": studio.scrub(str(exc))}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc.errors())}, status_code=422)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(page / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def page_file(name: str) -> FileResponse:
        if name not in PAGE_FILES:
            raise Refused(404, f"the page has no file {name!r}")
        return FileResponse(page / name, media_type=PAGE_FILES[name])

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        """What this studio offers: ROS or not, frame sources, encoder choices and its limits."""
        return {
            "ros": studio.live is not None,
            "namespace": studio.live.namespace if studio.live is not None else None,
            "trust_pickle": settings.trust_pickle,
            "frame_sources": studio.frame_sources(),
            "bits": [*CODE_BITS, *RAW_BITS],
            "quantization": list(MODES),
            "codecs": list(CODEC_NAMES),
            "methods": list(adapter.RANGE_METHODS),
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_files": MAX_FILES,
                "max_classify_images": MAX_CLASSIFY_IMAGES,
                "max_image_pixels": MAX_IMAGE_PIXELS,
                "max_calibration_frames": MAX_CALIBRATION_FRAMES,
                "max_sample_frames": MAX_SAMPLE_FRAMES,
                "max_cut_tensors": adapter.MAX_CUT_TENSORS,
            },
        }

    @app.get("/api/models")
    def list_models() -> dict[str, Any]:
        """Uploaded models, and the ones shipped with splitcomp (analysed when first opened)."""
        shipped = [
            {"id": m.id, "name": m.name, "description": m.description, "format": "shipped", "shipped": True}
            for m in catalog.shipped().values()
        ]
        uploaded = [{**m.meta(), "shipped": False} for m in studio.workspace.models() if m.shipped is None]
        return {"models": [*shipped, *uploaded]}

    @app.post(
        "/api/models",
        status_code=201,
        openapi_extra=_multipart(
            {
                "format": {"type": "string", "enum": ["onnx", "torchscript"], "description": "default: from the file"},
                "input_shape": {
                    "type": "string",
                    "description": "e.g. 1,3,224,224: needed for TorchScript, and for ONNX declared with a dynamic size",
                },
                "name": {"type": "string"},
            },
            "file",
        ),
    )
    async def upload_model(request: Request) -> JSONResponse:
        """Upload an ONNX model, or a TorchScript file with its input shape (exported as `export` does)."""
        form = await read_form(request, studio.workspace.tmp_path, max_files=1)
        try:
            files = form.files_of("file")
            if len(files) != 1 or files[0].size == 0:
                raise Refused(400, "send the model as one non-empty file in the form field 'file'")
            kind = form.text("format") or await run_in_threadpool(_sniff, files[0].path) or "onnx"
            name = display_name(form.text("name") or files[0].filename, "model")
            record = await run_in_threadpool(studio.add_upload, files[0], kind, form.text("input_shape"), name)
        finally:
            form.discard()
        return JSONResponse(record, status_code=201)

    @app.get("/api/models/{model_id}")
    def get_model(model_id: str, max_tensors: Annotated[int, Query(ge=1, le=adapter.MAX_CUT_TENSORS)] = 1) -> dict:
        """The analysis: every cut with the fields of `analyze --json` (max_tensors 2 or 3: multi-tensor cuts too)."""
        return studio.model_json(studio.model_entry(model_id), max_tensors)

    @app.delete("/api/models/{model_id}", status_code=204)
    def delete_model(model_id: str) -> None:
        studio.workspace.delete_model(model_id)

    @app.post("/api/models/{model_id}/split", status_code=201)
    def split(model_id: str, body: SplitBody) -> dict[str, Any]:
        """Split at `at`, verify head∘tail against the model, and keep the bundle: {bundle_id, manifest, verification}."""
        return studio.split(studio.model_entry(model_id), body)

    @app.get("/api/bundles")
    def list_bundles() -> dict[str, Any]:
        return {"bundles": [b.meta() for b in studio.workspace.bundles()]}

    @app.get("/api/bundles/{bundle_id}")
    def get_bundle(bundle_id: str) -> dict[str, Any]:
        return studio.bundle_json(studio.workspace.bundle(bundle_id))

    @app.delete("/api/bundles/{bundle_id}", status_code=204)
    def delete_bundle(bundle_id: str) -> None:
        if studio.jobs.running_on(bundle_id):
            raise Refused(409, f"bundle {bundle_id} is being calibrated; delete it when the job has finished")
        studio.workspace.delete_bundle(bundle_id)

    calibrate_schema = CalibrateBody.model_json_schema()
    calibrate_form = {
        name: {"type": "string" if name in ("source", "method") else "integer"} for name in CalibrateBody.model_fields
    }

    @app.post(
        "/api/bundles/{bundle_id}/calibrate",
        status_code=202,
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {"schema": calibrate_schema},
                    **_multipart(calibrate_form, "files")["requestBody"]["content"],
                }
            }
        },
    )
    async def calibrate(bundle_id: str, request: Request) -> JSONResponse:
        """Start a calibration job on generated frames, photos, or uploaded images or a video: {job_id}."""
        entry = studio.workspace.bundle(bundle_id)
        studio.jobs.check_room(entry.id)  # before an upload is read; submitting checks again
        if request.headers.get("content-type", "").startswith("multipart/"):
            form = await read_form(request, studio.workspace.tmp_path, MAX_FILES)
            try:
                body = _calibrate_body({k: v for k, v in form.fields.items() if v != ""})
                _check_source(studio, body.source)
                images = (
                    await run_in_threadpool(studio.calibration_inputs, entry, form)
                    if body.source == "upload"
                    else body.source
                )
            finally:
                form.discard()
        else:
            raw = await request.body()
            try:
                data = json.loads(raw) if raw.strip() else {}
            except ValueError:
                raise Refused(400, "the calibrate request is not valid JSON") from None
            body = _calibrate_body(data)
            if body.source == "upload":
                raise Refused(400, "source 'upload' sends images or a video as a multipart form (field 'files')")
            _check_source(studio, body.source)
            images = body.source
        return JSONResponse({"job_id": studio.calibrate(entry, body, images)}, status_code=202)

    @app.get("/api/jobs")
    def list_jobs() -> dict[str, Any]:
        return {"jobs": [j.to_json() for j in studio.jobs.all()]}

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str) -> dict[str, Any]:
        """Progress (phase, done, total, fraction) and, when done, the result: rows, the table and a plot URL."""
        return studio.jobs.get(job_id).to_json()

    @app.get("/api/bundles/{bundle_id}/calibration.png", include_in_schema=False)
    def calibration_plot(bundle_id: str) -> FileResponse:
        entry = studio.workspace.bundle(bundle_id)
        if not entry.plot.is_file():
            raise not_found("calibration plot", bundle_id)
        return FileResponse(entry.plot, media_type="image/png")

    @app.post(
        "/api/bundles/{bundle_id}/classify",
        openapi_extra=_multipart(
            {
                "bits": {"type": "integer", "description": "1..8 quantize, 16/32 raw floats (default 4)"},
                "quantization": {"type": "string", "enum": list(MODES), "description": "default calibrated"},
                "codec": {"type": "string", "enum": list(CODEC_NAMES), "description": "default none"},
                "sample": {"type": "string", "description": "instead of images: frames of generator or photos"},
                "count": {"type": "integer", "description": f"sample frames, 1..{MAX_SAMPLE_FRAMES}"},
            },
            "images",
        ),
    )
    async def classify(bundle_id: str, request: Request) -> dict[str, Any]:
        """Test images through head -> codec -> tail: split and unsplit top-5, bytes against JPEG-95, timings."""
        entry = studio.workspace.bundle(bundle_id)
        form = await read_form(request, studio.workspace.tmp_path, MAX_CLASSIFY_IMAGES)
        try:
            config = EncoderConfig(
                bits=_int(form, "bits", 4, 1, 32),
                mode=form.text("quantization") or "calibrated",
                codec=form.text("codec") or "none",
            ).validated()
            images = await run_in_threadpool(_images, studio, form)
            return await run_in_threadpool(studio.classify, entry, config, images)
        finally:
            form.discard()

    @app.get("/api/bundles/{bundle_id}/results/{result_id}/{index}.png", include_in_schema=False)
    def overlay(bundle_id: str, result_id: str, index: int) -> FileResponse:
        entry = studio.workspace.bundle(bundle_id)
        return FileResponse(studio.workspace.result_file(entry, result_id, index), media_type="image/png")

    @app.get("/api/bundles/{bundle_id}/download", response_class=FileResponse)
    def download(bundle_id: str) -> FileResponse:
        """The bundle as bundle-ID.tar.gz: it unpacks to bundle-ID/, ready for head_node and tail_node."""
        entry = studio.workspace.bundle(bundle_id)
        top = f"bundle-{entry.id}"
        archive = entry.dir / f"{top}.tar.gz"

        def write(tmp: Path) -> None:
            with tarfile.open(tmp, "w:gz") as tar:
                for path in sorted(entry.bundle_dir.iterdir()):
                    if path.is_file():
                        tar.add(path, arcname=f"{top}/{path.name}")

        atomic_write(archive, write)
        return FileResponse(archive, media_type="application/gzip", filename=archive.name)

    @app.get("/api/live")
    async def live(max_events: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> StreamingResponse:
        """Server-sent events of a running pipeline (with --ros): `diagnostics` per node and `classification`.

        max_events > 0 ends the stream after that many events (for scripts).
        """
        if studio.live is None:
            raise Refused(
                409, "the studio runs without ROS; start it with --ros (and --namespace NS) to see a pipeline"
            )

        async def events() -> AsyncIterator[str]:
            yield ": splitcomp studio live\n\n"
            sent = 0
            async for event in studio.hub.subscribe():
                yield f"event: {event['kind']}\ndata: {json.dumps(event['data'])}\n\n"
                sent += 1
                if max_events and sent >= max_events:
                    return

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def _check_source(studio: Studio, source: str) -> None:
    offered = [*studio.frame_sources(), "upload"]
    if source not in offered:
        raise Refused(400, f"source must be one of {', '.join(offered)} here, got {source!r}")


def _calibrate_body(data: Any) -> CalibrateBody:
    if not isinstance(data, dict):
        raise Refused(400, "the calibrate request must be a JSON object, or a multipart form")
    try:
        return CalibrateBody.model_validate(data)
    except ValidationError as exc:
        raise Refused(422, _validation_message(exc.errors())) from None


def _validation_message(errors: Any) -> str:
    """Pydantic's errors as one line: "preprocessing.mean: List should have at least 3 items; ..."."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def _images(studio: Studio, form: Form) -> list[tuple[str, Callable[[], np.ndarray]]]:
    """The test images (checked from their headers) or sample frames, each with a loader that decodes it."""
    files = form.files_of("images")
    sample = form.text("sample")
    if files and sample:
        raise Refused(400, "send images or ask for sample frames, not both")
    if sample:
        if sample not in studio.frame_sources():
            raise Refused(400, f"sample must be one of {studio.frame_sources()}, got {sample!r}")
        count = _int(form, "count", 4, 1, MAX_SAMPLE_FRAMES)
        frames = adapter.sample_frames(sample, count)
        return [(f"{sample} frame {k + 1}", functools.partial(_same, frame)) for k, frame in enumerate(frames)]
    if not files:
        raise Refused(400, "send one or more images in the form field 'images', or sample=generator")
    for f in files:
        image_suffix(f.path, f.filename)
    return [(f.filename, functools.partial(adapter.read_rgb, f.path)) for f in files]


def _same(frame: np.ndarray) -> np.ndarray:
    return frame
