"""Jobs: the long requests (calibrations) the page polls for progress and, when done, their result."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from splitcomp_tools.studio.state import StudioDep

router = APIRouter()


@router.get("/api/jobs")
def list_jobs(studio: StudioDep) -> dict[str, Any]:
    return {"jobs": [j.to_json() for j in studio.jobs.all()]}


@router.get("/api/jobs/{job_id}")
def get_job(job_id: str, studio: StudioDep) -> dict[str, Any]:
    """Progress (phase, done, total, fraction) and, when done, the result: rows, the table and a plot URL."""
    return studio.jobs.get(job_id).to_json()
