"""One place that turns a failed step on a node's hot path into a counted reason and one throttled log line.

Every node serves on after a bad frame or message: the failure is counted under its reason in
/diagnostics and logged at most once per THROTTLE_S per kind, with any text that came from the
sender cut to MAX_ECHO_CHARS so a hostile message cannot flood the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from splitcomp_core.errors import ImageFormatError, SplitcompError
from splitcomp_ros.diagnostics import NodeHealth

THROTTLE_S = 5.0
MAX_ECHO_CHARS = 300

Result = TypeVar("Result")


def clip_text(text: object, limit: int = MAX_ECHO_CHARS) -> str:
    """`text` cut to `limit` characters, saying how much was left out."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


class Rejects:
    """Runs one step (a frame, a message); an expected failure returns None after counting and logging it.

    A `SplitcompError` with a `reason` attribute (the tail's FeaturesRejected) counts under that
    reason, an ImageFormatError under `image_format`, any other SplitcompError under `inference`,
    and anything else, a bug, under `internal_error`: one bad input never stops the node.
    """

    def __init__(self, health: NodeHealth, logger: Any, throttle_s: float = THROTTLE_S) -> None:
        self._health = health
        self._logger = logger
        self._throttle_s = throttle_s

    def run(self, what: str, step: Callable[[], Result]) -> Result | None:
        return self.attempt(what, step)[0]

    def attempt(self, what: str, step: Callable[[], Result]) -> tuple[Result | None, str | None]:
        """Like `run`, and also the reason a failed step was counted under (None when it succeeded)."""
        try:
            return step(), None
        except ImageFormatError as exc:
            reason = "image_format"
            self._logger.warning(f"skipping {what}: {clip_text(exc)}", throttle_duration_sec=self._throttle_s)
        except SplitcompError as exc:
            given = getattr(exc, "reason", None)
            reason = given or "inference"
            if given is not None:
                self._logger.warning(
                    f"rejected {what} ({reason}): {clip_text(exc)}", throttle_duration_sec=self._throttle_s
                )
            else:
                self._logger.error(f"{what} failed: {clip_text(exc)}", throttle_duration_sec=self._throttle_s)
        except Exception as exc:
            reason = "internal_error"
            self._logger.error(
                f"unexpected error on {what}: {clip_text(repr(exc))}", throttle_duration_sec=self._throttle_s
            )
        self._health.rejected(reason)
        return None, reason
