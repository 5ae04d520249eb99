"""How a refused or failed request ends: JSON `{"detail": message}` with a 4xx status, and the server serving on."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.studio.bodies import validation_message
from splitcomp_tools.studio.errors import Refused


async def refused(_: Request, exc: Exception) -> JSONResponse:
    """A route's refusal, with the status it chose."""
    assert isinstance(exc, Refused)
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)


async def tool_error(request: Request, exc: Exception) -> JSONResponse:
    """A tool's error: bad input, so 400, without the workspace's paths."""
    return JSONResponse({"detail": request.app.state.studio.scrub(str(exc))}, status_code=400)


async def invalid(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's check of a path, query or JSON body failed: one line instead of pydantic's list."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": validation_message(exc.errors())}, status_code=422)


def register(app: FastAPI) -> None:
    """Install the studio's three handlers on `app` (Starlette picks the one nearest the error's class)."""
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(SplitcompError, tool_error)
    app.add_exception_handler(RequestValidationError, invalid)
