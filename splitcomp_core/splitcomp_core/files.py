"""Durable, atomic file output: a result is either complete on disk or the old file is still there.

Every tool writes through here (bundles, manifests, plots, JSON reports, images, trained models),
so a crash, a full disk or a power loss mid-write never leaves a half-written output behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path


def write_durably(path: Path, data: bytes) -> None:
    """Create `path` (it must not exist) and flush it to disk, so a later rename never publishes an empty file."""
    with Path(path).open("xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (files created or renamed in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(out: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """Have `write(tmp)` fill a temp file beside `out`, flush it, give it the usual mode, then rename it over `out`.

    The mode is what a plain `open` would give (0666 less the umask), not mkstemp's private 0600.
    """
    atomic_write_all({Path(out): write})


def atomic_write_all(outputs: Mapping[Path, Callable[[Path], object]]) -> None:
    """Write several files so that all of them change or none does (as far as a file system allows).

    Every file is first written in full to a temp file beside its target and flushed; only when all
    of them are, are they renamed over their targets, in the mapping's order (put the one that makes
    the others count, a manifest, last). A failure while writing leaves every target as it was.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for out, write in outputs.items():
            staged.append((_staged(out, write), out))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, out in staged:
        os.replace(tmp, out)
    for parent in dict.fromkeys(out.parent for _, out in staged):
        fsync_dir(parent)


def _staged(out: Path, write: Callable[[Path], object]) -> Path:
    """A flushed temp file beside `out` with `write`'s content and the usual mode; an OSError names `out`."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(out)) from exc
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(out: str | os.PathLike, data: bytes) -> None:
    """`atomic_write` of a byte string."""
    atomic_write(out, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(out: str | os.PathLike, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    atomic_write_bytes(out, text.encode("utf-8"))


def replace_dir(finished: Path, out: Path) -> None:
    """Rename a finished directory to `out`, swapping out an old one only once the new one is in place."""
    if not out.exists():
        os.rename(finished, out)
        fsync_dir(out.parent)
        return
    old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
    os.rename(out, old)
    try:
        os.rename(finished, out)
    except BaseException:
        os.rename(old, out)
        raise
    fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
