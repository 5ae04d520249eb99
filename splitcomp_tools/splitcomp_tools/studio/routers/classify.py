"""Classify: test images (or sample frames) through a bundle's head -> codec -> tail, and the overlays drawn for them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from splitcomp_core.bundle import MODES
from splitcomp_core.codec import CODEC_NAMES
from splitcomp_core.quantization import EncoderConfig
from splitcomp_tools.studio import adapter
from splitcomp_tools.studio.bodies import form_int, multipart_doc
from splitcomp_tools.studio.config import MAX_CLASSIFY_IMAGES, MAX_SAMPLE_FRAMES
from splitcomp_tools.studio.errors import Refused
from splitcomp_tools.studio.state import Studio, StudioDep
from splitcomp_tools.studio.store import BundleEntry
from splitcomp_tools.studio.uploads import Form, image_suffix, read_form

FORM_FIELDS = {
    "bits": {"type": "integer", "description": "1..8 quantize, 16/32 raw floats (default 4)"},
    "quantization": {"type": "string", "enum": list(MODES), "description": "default calibrated"},
    "codec": {"type": "string", "enum": list(CODEC_NAMES), "description": "default none"},
    "sample": {"type": "string", "description": "instead of images: frames of generator or photos"},
    "count": {"type": "integer", "description": f"sample frames, 1..{MAX_SAMPLE_FRAMES}"},
}
Images = list[tuple[str, Callable[[], np.ndarray]]]

router = APIRouter()


@router.post("/api/bundles/{bundle_id}/classify", openapi_extra=multipart_doc(FORM_FIELDS, "images"))
async def classify(bundle_id: str, request: Request, studio: StudioDep) -> dict[str, Any]:
    """Test images through head -> codec -> tail: split and unsplit top-5, bytes against JPEG-95, timings."""
    entry = studio.workspace.bundle(bundle_id)
    form = await read_form(request, studio.workspace.tmp_path, MAX_CLASSIFY_IMAGES)
    try:
        config = EncoderConfig(
            bits=form_int(form, "bits", 4, 1, 32),
            mode=form.text("quantization") or "calibrated",
            codec=form.text("codec") or "none",
        ).validated()
        images = await run_in_threadpool(_images, studio, form)
        return await run_in_threadpool(classify_images, studio, entry, config, images)
    finally:
        form.discard()


@router.get("/api/bundles/{bundle_id}/results/{result_id}/{index}.png", include_in_schema=False)
def overlay(bundle_id: str, result_id: str, index: int, studio: StudioDep) -> FileResponse:
    entry = studio.workspace.bundle(bundle_id)
    return FileResponse(studio.workspace.result_file(entry, result_id, index), media_type="image/png")


def classify_images(studio: Studio, entry: BundleEntry, config: EncoderConfig, images: Images) -> dict[str, Any]:
    """Each image through the bundle's pipelines with `config`; its overlay kept in a new result set."""
    classifier = studio.classifiers.get(entry)
    result_id, folder = studio.workspace.new_result_dir(entry)
    rows = []
    for k, (name, load) in enumerate(images):
        row = classifier(load(), config, folder / f"{k}.png")
        rows.append({"image": name, "overlay_url": f"/api/bundles/{entry.id}/results/{result_id}/{k}.png", **row})
    return {
        "bundle_id": entry.id,
        "config": {"bits": config.bits, "quantization": config.mode, "codec": config.codec},
        "images": rows,
        "agreement": adapter.agreement_of(rows),
    }


def _images(studio: Studio, form: Form) -> Images:
    """The test images (checked from their headers) or sample frames, each with a loader that decodes it."""
    files = form.files_of("images")
    sample = form.text("sample")
    if files and sample:
        raise Refused(400, "send images or ask for sample frames, not both")
    if sample:
        if sample not in studio.frame_sources():
            raise Refused(400, f"sample must be one of {studio.frame_sources()}, got {sample!r}")
        count = form_int(form, "count", 4, 1, MAX_SAMPLE_FRAMES)
        frames = adapter.sample_frames(sample, count)
        return [(f"{sample} frame {k + 1}", functools.partial(_same, frame)) for k, frame in enumerate(frames)]
    if not files:
        raise Refused(400, "send one or more images in the form field 'images', or sample=generator")
    for f in files:
        image_suffix(f.path, f.filename)
    return [(f.filename, functools.partial(adapter.read_rgb, f.path)) for f in files]


def _same(frame: np.ndarray) -> np.ndarray:
    return frame
