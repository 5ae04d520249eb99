"""Image bytes to pixels, without ROS: raw buffers by encoding, step and size; compressed images; image files.

The head node, the rosbag reader, folder sources, `split --images` and `classify` all decode here,
so every path checks sizes and steps the same way before it reshapes or allocates anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from splitcomp_core.errors import ImageFormatError
from splitcomp_core.preprocess import channels_of

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


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


def decode_compressed(data: bytes | bytearray | memoryview | np.ndarray, what: str = "compressed image") -> np.ndarray:
    """HxWx3 BGR pixels of a JPEG or PNG (what image_transport's compressed images hold)."""
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.astype(np.uint8)
    if buffer.size == 0:
        raise ImageFormatError(f"empty {what}")
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageFormatError(f"{what} data is not a decodable image")
    return image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """HxWx3 RGB pixels of an image file; ImageFormatError names the file when it does not decode."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageFormatError(f"{path}: not a readable image file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder (by suffix), sorted; ImageFormatError when it has none."""
    folder = Path(folder)
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ImageFormatError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return paths
