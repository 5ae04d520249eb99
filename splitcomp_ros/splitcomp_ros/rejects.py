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
        try:
            return step()
        except ImageFormatError as exc:
            self._health.rejected("image_format")
            self._logger.warning(f"skipping {what}: {clip_text(exc)}", throttle_duration_sec=self._throttle_s)
        except SplitcompError as exc:
            reason = getattr(exc, "reason", None)
            if reason is not None:
                self._health.rejected(reason)
                self._logger.warning(
                    f"rejected {what} ({reason}): {clip_text(exc)}", throttle_duration_sec=self._throttle_s
                )
            else:
                self._health.rejected("inference")
                self._logger.error(f"{what} failed: {clip_text(exc)}", throttle_duration_sec=self._throttle_s)
        except Exception as exc:
            self._health.rejected("internal_error")
            self._logger.error(
                f"unexpected error on {what}: {clip_text(repr(exc))}", throttle_duration_sec=self._throttle_s
            )
        return None
