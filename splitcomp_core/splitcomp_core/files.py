"""Durable, atomic file output: a result is either complete on disk or the old file is still there.

Every tool writes through here (bundles, manifests, plots, JSON reports, images, trained models),
so a crash, a full disk or a power loss mid-write never leaves a half-written output behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
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
    out = Path(out)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(out.parent)


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
