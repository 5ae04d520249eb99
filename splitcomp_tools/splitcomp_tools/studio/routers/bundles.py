"""Bundles: list, read (manifest, verification, last calibration), delete, and download as a tar.gz to deploy."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from splitcomp_core.files import atomic_write
from splitcomp_tools.studio import adapter
from splitcomp_tools.studio.errors import Refused
from splitcomp_tools.studio.state import Studio, StudioDep
from splitcomp_tools.studio.store import BundleEntry

router = APIRouter()


@router.get("/api/bundles")
def list_bundles(studio: StudioDep) -> dict[str, Any]:
    return {"bundles": [b.meta() for b in studio.workspace.bundles()]}


@router.get("/api/bundles/{bundle_id}")
def get_bundle(bundle_id: str, studio: StudioDep) -> dict[str, Any]:
    return bundle_json(studio, studio.workspace.bundle(bundle_id))


@router.delete("/api/bundles/{bundle_id}", status_code=204)
def delete_bundle(bundle_id: str, studio: StudioDep) -> None:
    if studio.jobs.running_on(bundle_id):
        raise Refused(409, f"bundle {bundle_id} is being calibrated; delete it when the job has finished")
    studio.workspace.delete_bundle(bundle_id)


@router.get("/api/bundles/{bundle_id}/download", response_class=FileResponse)
def download(bundle_id: str, studio: StudioDep) -> FileResponse:
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


def bundle_json(studio: Studio, entry: BundleEntry) -> dict[str, Any]:
    """What GET /api/bundles/{id} answers: where the bundle came from, its manifest and its last calibration."""
    calibration = entry.dir / "calibration.json"
    return {
        "bundle_id": entry.id,
        "model": entry.model_id,
        "model_name": entry.model_name,
        "at": entry.at,
        "verification": entry.verification,
        "manifest": adapter.manifest(entry.bundle_dir),
        "calibration": json.loads(calibration.read_text()) if calibration.is_file() else None,
        "calibrating": studio.jobs.running_on(entry.id),
        "download_url": f"/api/bundles/{entry.id}/download",
    }
