"""The studio's HTTP side: the page, and the JSON API it calls (which scripts can call too).

Every route is a thin adapter in a router of its resource (`routers/`): it checks and bounds the
request, then calls `adapter` (the tools) through the server's `state.Studio`. Errors are JSON
`{"detail": message}` with a 4xx status (`handlers`); a request that fails leaves the server
serving and the workspace as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from splitcomp_tools.studio import handlers
from splitcomp_tools.studio.config import MAX_JSON_BYTES, Settings
from splitcomp_tools.studio.routers import bundles, calibration, classify, jobs, live, models, page
from splitcomp_tools.studio.state import Studio
from splitcomp_tools.studio.uploads import BodyLimit

ROUTERS = (page, models, bundles, calibration, jobs, classify, live)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Stop the studio's jobs and live feed when the app stops."""
    yield
    app.state.studio.close()


def create_app(settings: Settings, studio: Studio | None = None) -> FastAPI:
    """The FastAPI application of one studio (made from `settings` unless given)."""
    studio = studio or Studio(settings)
    page.check_installed()
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
    handlers.register(app)
    for module in ROUTERS:
        app.include_router(module.router)
    return app
