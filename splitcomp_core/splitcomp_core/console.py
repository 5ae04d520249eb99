"""Command-line output that a closed pipe cannot turn into a traceback (`tool --json | head -1`).

The tools and the nodes' --help both print through here. Once the reader has gone, stdout is
pointed at /dev/null so that Python's own flush at exit stays quiet too, and the program exits
like a tool killed by SIGPIPE would (128 + 13), without a message.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

EXIT_CLOSED_PIPE = 128 + 13


class ClosedPipe(Exception):
    """The reader of stdout has gone; nothing more can be printed."""


@contextlib.contextmanager
def closed_pipe_is_quiet() -> Iterator[None]:
    """Turn a BrokenPipeError on stdout inside the block (or at its final flush) into ClosedPipe."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise ClosedPipe from None
