"""distill's one error type, apart from the torch modules so that judging a distilled bundle needs no torch."""

from __future__ import annotations

from splitcomp_core.errors import SplitcompError


class DistillError(SplitcompError):
    """The bundle or the request cannot be distilled or judged as asked (the message says what to change)."""
