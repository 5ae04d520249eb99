"""Live: server-sent events of a running pipeline, from the ROS feed the studio joins with --ros.

This router needs no ROS itself: the state's feed (studio/live.py, imported only with --ros)
publishes to the hub, and this route streams the hub's events to the page.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from splitcomp_tools.studio.errors import Refused
from splitcomp_tools.studio.events import Hub
from splitcomp_tools.studio.state import StudioDep

router = APIRouter()


@router.get("/api/live")
async def live(studio: StudioDep, max_events: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> StreamingResponse:
    """Server-sent events of a running pipeline (with --ros): `diagnostics` per node and `classification`.

    max_events > 0 ends the stream after that many events (for scripts).
    """
    if studio.live is None:
        raise Refused(409, "the studio runs without ROS; start it with --ros (and --namespace NS) to see a pipeline")
    return StreamingResponse(
        _events(studio.hub, max_events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


async def _events(hub: Hub, max_events: int) -> AsyncIterator[str]:
    yield ": splitcomp studio live\n\n"
    sent = 0
    async for event in hub.subscribe():
        yield f"event: {event['kind']}\ndata: {json.dumps(event['data'])}\n\n"
        sent += 1
        if max_events and sent >= max_events:
            return
