"""Calibration: a job on a bundle, over generated frames, photos, or uploaded images or a video, and its plot.

The request is JSON, or a multipart form when it uploads the frames. The job runs in a worker
process (`jobs`); when it ends, its result is kept with the bundle as calibration.json.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from splitcomp_core.files import atomic_write_text
from splitcomp_tools.cli_options import video_codecs
from splitcomp_tools.studio import adapter
from splitcomp_tools.studio.bodies import CalibrateBody, calibrate_body, multipart_doc
from splitcomp_tools.studio.config import MAX_FILES, MAX_IMAGE_PIXELS
from splitcomp_tools.studio.errors import Refused, not_found
from splitcomp_tools.studio.state import Studio, StudioDep
from splitcomp_tools.studio.store import BundleEntry
from splitcomp_tools.studio.uploads import Form, image_suffix, read_form

CALIBRATION_PHASES = {"frames": (0.0, 0.6), "encodings": (0.6, 1.0)}
FORM_FIELDS = {
    name: {
        "type": {"source": "string", "method": "string", "eval_source": "string", "confidence": "number"}.get(
            name, "integer"
        )
    }
    for name in CalibrateBody.model_fields
}
REQUEST_DOC = {
    "requestBody": {
        "content": {
            "application/json": {"schema": CalibrateBody.model_json_schema()},
            **multipart_doc(FORM_FIELDS, "files")["requestBody"]["content"],
        }
    }
}

router = APIRouter()


@router.post("/api/bundles/{bundle_id}/calibrate", status_code=202, openapi_extra=REQUEST_DOC)
async def calibrate(bundle_id: str, request: Request, studio: StudioDep) -> JSONResponse:
    """Start a calibration job on generated frames, photos, or uploaded images or a video: {job_id}."""
    entry = studio.workspace.bundle(bundle_id)
    studio.jobs.check_room(entry.id)  # before an upload is read; submitting checks again
    if request.headers.get("content-type", "").startswith("multipart/"):
        form = await read_form(request, studio.workspace.tmp_path, MAX_FILES)
        try:
            body = calibrate_body({k: v for k, v in form.fields.items() if v != ""})
            _check_source(studio, body.source, body.eval_source)
            images = (
                await run_in_threadpool(calibration_inputs, entry, form) if body.source == "upload" else body.source
            )
        finally:
            form.discard()
    else:
        raw = await request.body()
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise Refused(400, "the calibrate request is not valid JSON") from None
        body = calibrate_body(data)
        if body.source == "upload":
            raise Refused(400, "source 'upload' sends images or a video as a multipart form (field 'files')")
        _check_source(studio, body.source, body.eval_source)
        images = body.source
    return JSONResponse({"job_id": start_job(studio, entry, body, images)}, status_code=202)


@router.get("/api/bundles/{bundle_id}/calibration.png", include_in_schema=False)
def calibration_plot(bundle_id: str, studio: StudioDep) -> FileResponse:
    entry = studio.workspace.bundle(bundle_id)
    if not entry.plot.is_file():
        raise not_found("calibration plot", bundle_id)
    return FileResponse(entry.plot, media_type="image/png")


def _check_source(studio: Studio, source: str, eval_source: str = "") -> None:
    offered = [*studio.frame_sources(), "upload"]
    if source not in offered:
        raise Refused(400, f"source must be one of {', '.join(offered)} here, got {source!r}")
    parts = [p.strip() for p in eval_source.split(",")] if eval_source else []
    wrong = [p for p in parts if p not in studio.frame_sources()]
    if wrong:
        raise Refused(
            400, f"eval_source: a comma list of {', '.join(studio.frame_sources())} here; not {', '.join(wrong)!r}"
        )


def calibration_inputs(entry: BundleEntry, form: Form) -> str:
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
            raise Refused(413, f"{files[0].filename}: {size[0]}x{size[1]} frames are over {MAX_IMAGE_PIXELS:,} pixels")
        return str(video)
    suffixes = [image_suffix(upload.path, upload.filename) for upload in files]
    for k, (upload, suffix) in enumerate(zip(files, suffixes)):
        os.replace(upload.path, inputs / f"{k:04d}{suffix}")
    return str(inputs)


def start_job(studio: Studio, entry: BundleEntry, body: CalibrateBody, images: str) -> str:
    """Submit the calibration of `entry` on `images` (a frame source); its job id."""

    def finish(result: dict[str, Any]) -> dict[str, Any]:
        result.pop("bundle", None)
        result["images"] = body.source
        table = result["table"].replace(str(entry.bundle_dir), f"bundle {entry.id}").replace(images, body.source)
        result["table"] = studio.scrub(table)
        result["plot_url"] = f"/api/bundles/{entry.id}/calibration.png?v={time.time_ns()}"
        atomic_write_text(entry.dir / "calibration.json", json.dumps(result))
        return result

    job = studio.jobs.submit(
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
            "eval_images": body.eval_source or None,
            "eval_count": body.eval_count,
            "confidence": body.confidence,
            "video_codecs": video_codecs(body.video_codecs),
        },
        CALIBRATION_PHASES,
        finish,
    )
    return job.id
