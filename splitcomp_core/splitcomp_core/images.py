"""Image bytes to pixels, without ROS: raw buffers by encoding, step and size; compressed images; image files.

The head node, the rosbag reader, folder sources, `split --images` and `classify` all decode here,
so every path checks sizes and steps the same way before it reshapes or allocates anything.

A compressed image claims its size in its header, and a decoder allocates what it claims: a 691-byte
JPEG can ask for 20000x20000 pixels (1.2 GB). So JPEG and PNG headers are read here first and an
image over `max_pixels` is refused before any decoding. The decoder libraries print their own
warnings on stderr (libjpeg's "Corrupt JPEG data: ...", once per frame); those are collected and
handed to the caller, which reports them through its own throttled log and counters.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from splitcomp_core.errors import ImageFormatError
from splitcomp_core.preprocess import channels_of

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096  # generous for cameras (a 4K frame is 3840x2160)
MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
# Start-of-frame markers (baseline, progressive, lossless, arithmetic): the ones that hold the size.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length
_JPEG_MAX_SEGMENTS = 1000  # real files have a few dozen before the frame header
_MAX_DECODER_MESSAGE_BYTES = 4096
_LOG_LINE = re.compile(r"^\[(DEBUG|INFO|WARN|ERROR|FATAL)\] ")  # another thread's ROS log line


def check_pixels(width: int, height: int, max_pixels: int, what: str = "image") -> None:
    """Refuse an image whose claimed size is over `max_pixels` before anything is allocated for it."""
    if width * height > max_pixels:
        raise ImageFormatError(
            f"{what} claims {width}x{height} = {width * height:,} pixels, more than the limit of {max_pixels:,} "
            f"(max_image_pixels)"
        )


def compressed_size(data: bytes | memoryview) -> tuple[str, int, int] | None:
    """(format, width, height) from a JPEG or PNG header without decoding; None for any other data."""
    head = bytes(data[:8])
    if head.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or bytes(data[12:16]) != b"IHDR":
            raise ImageFormatError("PNG data has no IHDR header")
        return "png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if head.startswith(_JPEG_SOI):
        width, height = _jpeg_frame_size(data)
        return "jpeg", width, height
    return None


def _jpeg_frame_size(data: bytes | memoryview) -> tuple[int, int]:
    """Width and height from the first start-of-frame segment, walking the segments before it."""
    i, end = 2, len(data)
    for _ in range(_JPEG_MAX_SEGMENTS):
        if i + 4 > end or data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # a fill byte before the marker
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker in _JPEG_SOF:
            if i + 9 > end:
                break
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            if width == 0 or height == 0:
                raise ImageFormatError(f"JPEG frame header gives no size ({width}x{height})")
            return width, height
        if marker in (0xD9, 0xDA):  # end of image, or a scan before any frame header
            break
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise ImageFormatError("JPEG data has no readable frame header (SOF) before its image data")


def raw_pixels(
    data: bytes | bytearray | memoryview | np.ndarray, encoding: str, width: int, height: int, step: int
) -> np.ndarray:
    """HxWxC (HxW for mono) uint8 view of a raw image buffer with its row padding dropped.

    `encoding` is a ROS image encoding (splitcomp_core.preprocess lists the supported ones).
    """
    channels = channels_of(encoding)
    if height == 0 or width == 0:
        raise ImageFormatError(f"empty image ({width}x{height})")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageFormatError(f"step {step} is smaller than width*channels = {row_bytes} for {encoding}")
    size = memoryview(data).nbytes  # type: ignore[arg-type]  # numpy stubs: __buffer__ only on 3.12+
    if size != step * height:
        raise ImageFormatError(f"data has {size} bytes but step*height = {step}*{height} = {step * height}")
    rows = np.frombuffer(data, dtype=np.uint8).reshape(height, step)[:, :row_bytes]
    return rows.reshape(height, width) if channels == 1 else rows.reshape(height, width, channels)


def decode_compressed(
    data: bytes | bytearray | memoryview | np.ndarray,
    what: str = "compressed image",
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    messages: list[str] | None = None,
) -> np.ndarray:
    """HxWx3 BGR pixels of a JPEG or PNG (what image_transport's compressed images hold).

    The header's size is checked against `max_pixels` first; any other format is refused, since its
    size cannot be known before decoding. What the decoder prints (corrupt data it decoded anyway)
    goes to `messages` when given, and is dropped otherwise.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.astype(np.uint8)
    if buffer.size == 0:
        raise ImageFormatError(f"empty {what}")
    claimed = compressed_size(buffer.data)
    if claimed is None:
        raise ImageFormatError(f"{what} data is neither JPEG nor PNG (starts with {bytes(buffer[:4]).hex()})")
    check_pixels(claimed[1], claimed[2], max_pixels, f"{what} ({claimed[0]})")
    return _decode(buffer, what, messages)


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """HxWx3 RGB pixels of an image file; ImageFormatError names the file when it does not decode.

    JPEG and PNG files are held to `max_pixels` before decoding; other formats to OpenCV's own limit.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_FILE_BYTES:
            raise ImageFormatError(
                f"{path}: {size:,} bytes, more than an image file may have ({MAX_IMAGE_FILE_BYTES:,})"
            )
        buffer = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    except OSError as exc:
        raise ImageFormatError(f"{path}: cannot read the image file ({exc.strerror})") from None
    try:
        claimed = compressed_size(buffer.data) if buffer.size else None
    except ImageFormatError as exc:
        raise ImageFormatError(f"{path}: not a readable image file ({exc})") from None
    if claimed is not None:
        check_pixels(claimed[1], claimed[2], max_pixels, str(path))
    try:
        image = _decode(buffer, "image", None)
    except ImageFormatError:
        raise ImageFormatError(f"{path}: not a readable image file") from None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _decode(buffer: np.ndarray, what: str, messages: list[str] | None) -> np.ndarray:
    printed: list[str] = []
    with _decoder_stderr(printed):
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if messages is not None:
        messages.extend(printed)
    if image is None:
        because = f": {printed[-1]}" if printed else ""
        raise ImageFormatError(f"{what} data is not a decodable image{because}")
    return image


_stderr_lock = threading.Lock()
_stderr_sink: int | None = None


@contextlib.contextmanager
def _decoder_stderr(lines: list[str]) -> Iterator[None]:
    """Collect what is printed on the process's stderr (fd 2) meanwhile into `lines`.

    libjpeg prints its warnings with fprintf(stderr), below anything Python or OpenCV's log level can
    switch off, so fd 2 points at a scratch file while the decoder runs. A ROS log line another thread
    writes in that moment is passed on to stderr, not taken for the decoder's.
    """
    global _stderr_sink
    with _stderr_lock:
        try:
            if _stderr_sink is None:
                _stderr_sink, name = tempfile.mkstemp(prefix="splitcomp-decoder-")
                os.unlink(name)
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no stderr to borrow (closed): decode without collecting
            yield
            return
        os.dup2(_stderr_sink, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.lseek(_stderr_sink, 0, os.SEEK_SET)
            printed = os.read(_stderr_sink, _MAX_DECODER_MESSAGE_BYTES).decode("utf-8", "replace")
            os.ftruncate(_stderr_sink, 0)
            os.lseek(_stderr_sink, 0, os.SEEK_SET)
            for line in printed.splitlines():
                if _LOG_LINE.match(line):
                    os.write(2, (line + "\n").encode())
                elif line.strip():
                    lines.append(line.strip())


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder (by suffix), sorted; ImageFormatError when it has none."""
    folder = Path(folder)
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ImageFormatError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return paths
