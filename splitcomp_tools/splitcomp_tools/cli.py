"""The one place that turns a tool's expected failures into a clean message and exit code."""

import sys
from collections.abc import Callable, Sequence

from splitcomp_core.errors import SplitcompError

EXIT_USAGE = 2


def run_cli(fn: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a tool's body; a SplitcompError or a missing file becomes `error: ...` and exit 2."""
    try:
        return fn(argv)
    except (SplitcompError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
