"""The one place that turns a tool's expected failures into one `error:` line and exit 2.

Every tool builds its parser as a ToolParser (argparse's own errors are one line too, not a usage
block) and runs its body through `run_cli`: a SplitcompError, any OSError (read-only file system,
no space, a busy directory...) or a bad argument prints `error: ...` on stderr and exits 2; a
reader closing the pipe (`analyze --json | head -1`) ends the tool quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from tqdm import tqdm

from splitcomp_core.console import EXIT_CLOSED_PIPE, ClosedPipe, closed_pipe_is_quiet
from splitcomp_core.errors import SplitcompError

EXIT_USAGE = 2
_WRITE_HINTS = {
    errno.EROFS: "the file system is read-only; write the output somewhere else",
    errno.ENOSPC: "the disk is full; free some space or write the output somewhere else",
    errno.EDQUOT: "the disk quota is exceeded; free some space or write the output somewhere else",
    errno.EACCES: "check the permissions, or write the output somewhere else",
    errno.EPERM: "check the permissions, or write the output somewhere else",
    errno.EBUSY: "it is in use (a mount point, or the current directory); choose another path",
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
}


class UsageError(SplitcompError):
    """A command-line argument the tool cannot take; the message says which and why."""


class ToolParser(argparse.ArgumentParser):
    """argparse with the tools' error style: one `error:` line that names the argument, then exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type`: an integer from `low` to `high`, refused with the range otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def float_in(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """An argparse `type`: a finite number in [low, high] (or (low, high] with `low_open`)."""
    interval = f"{'above' if low_open else 'at least'} {low:g} and at most {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {interval}, got {text!r}") from None
        if not (low < value <= high if low_open else low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be {interval}, got {text}")
        return value

    return parse


def run_cli(fn: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a tool's body; an expected failure becomes `error: ...` and exit 2, a closed pipe a quiet exit."""
    try:
        with closed_pipe_is_quiet():
            return fn(argv)
    except ClosedPipe:
        return EXIT_CLOSED_PIPE
    except SplitcompError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(describe_os_error(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def describe_os_error(exc: OSError) -> str:
    """An OSError as one line: the path, what the system said, and what to do about it (by errno)."""
    where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "") if exc.filename else ""
    said = exc.strerror or str(exc)
    hint = _WRITE_HINTS.get(exc.errno or 0)
    text = f"{where}: {said}" if where else said
    return f"{text} ({hint})" if hint else text


def check_outputs(
    outputs: Iterable[tuple[str, str | os.PathLike | None]], inputs: Iterable[Path], files: bool = False
) -> None:
    """Refuse, before any work, an output path that is one of the command's inputs or another output.

    `outputs` are (option, path) pairs, a None path being an option not given; `inputs` are the files
    the command reads (a bundle's manifest and models, the model to analyze). With `files`, every
    output must also be a file name in an existing folder, so a long run does not fail at its end.
    """
    outputs = list(outputs)
    for option, path in outputs if files else []:
        if path is not None and Path(path).is_dir():
            raise UsageError(f"{option} {path}: is a directory; give a file name")
        if path is not None and not Path(path).parent.is_dir():
            raise UsageError(f"{option} {path}: directory {Path(path).parent} does not exist")
    protected = {_identity(p): p for p in inputs if p.exists()}
    seen: dict[tuple[int, int] | str, str] = {}
    for option, path in outputs:
        if path is None:
            continue
        key = _identity(Path(path))
        if key in protected:
            raise UsageError(f"{option} {path}: is {protected[key]}, an input of this command; give another file name")
        if key in seen:
            raise UsageError(f"{option} {path}: is also the file of {seen[key]}; give each output its own file")
        seen[key] = option


def format_table(header: Sequence[str], rows: Iterable[Sequence[object]], left: Iterable[int] = (0,)) -> str:
    """Columns padded to their widest cell, two spaces apart: the one table printer of every command.

    Columns whose index is in `left` are left-aligned (names); the others right-aligned (figures).
    Trailing spaces are stripped, so a table compares cleanly in tests and diffs.
    """
    table = [[str(cell) for cell in header], *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lefts = set(left)
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i in lefts else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in table
    )


@contextlib.contextmanager
def progress_bars(
    enabled: bool, labels: Mapping[str, Sequence[str]] | None = None
) -> Iterator[Callable[[str, int, int], None] | None]:
    """A library's progress callback, (phase, done, total), drawn on stderr as one bar per pass; None when off.

    A pass starts when the phase changes or `done` starts over; its bar is named by the next of
    `labels[phase]` (e.g. the frame sources in the order they are read), else by the phase.
    """
    if not enabled:
        yield None
        return
    names = {phase: list(given) for phase, given in (labels or {}).items()}
    bars: list[tuple[str, tqdm]] = []

    def report(phase: str, done: int, total: int) -> None:
        if not bars or bars[-1][0] != phase or done <= bars[-1][1].n:
            if bars:
                bars[-1][1].close()
            queue = names.get(phase)
            bars.append((phase, tqdm(total=total, desc=queue.pop(0) if queue else phase, file=sys.stderr)))
        bars[-1][1].update(done - bars[-1][1].n)

    try:
        yield report
    finally:
        for _, bar in bars:
            bar.close()


def _identity(path: Path) -> tuple[int, int] | str:
    """The same key for every name of one file (links included), or its resolved path if it does not exist yet."""
    try:
        stat = path.stat()
        return stat.st_dev, stat.st_ino
    except OSError:
        return str(path.resolve())


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE
