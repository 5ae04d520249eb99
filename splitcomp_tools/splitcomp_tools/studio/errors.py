"""The one error a studio request ends with when it is refused: an HTTP status (4xx) and a message saying why."""

from __future__ import annotations

from splitcomp_core.errors import SplitcompError


class Refused(SplitcompError):
    """A request the studio will not serve; the page shows the message, a script reads it from `detail`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def not_found(what: str, key: str) -> Refused:
    return Refused(404, f"no {what} with id {key!r}; list them with GET /api/{what}s")
