"""Camera frames (common ROS encodings) to the model's NCHW float32 input, as the bundle's input spec says.

This runs on the robot for every frame, so the frame is resized first, in its own channel layout;
colour reordering, dropping alpha and normalisation then touch only the small image, and /255, mean
and std are folded into one multiply-add with precomputed per-channel arrays.

Encodings follow ROS sensor_msgs/image_encodings: "uyvy" and its deprecated alias "yuv422" are
packed 4:2:2 in U Y0 V Y1 byte order; "yuyv" and its deprecated alias "yuv422_yuy2" are Y0 U Y1 V.
OpenCV converts them with its BT.601 (video range) coefficients.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from splitcomp_core.bundle import InputSpec
from splitcomp_core.errors import ImageFormatError


class _Layout(NamedTuple):
    channels: int  # 1: mono (HxW or HxWx1); 2: packed YUV 4:2:2 (HxWx2); 3 or 4: colour
    order: str  # channel order once YUV is converted: "RGB", "BGR" or "MONO"
    to_rgb: int | None  # cv2.cvtColor code to RGB; None when already RGB


_UYVY = _Layout(2, "RGB", cv2.COLOR_YUV2RGB_UYVY)
_YUYV = _Layout(2, "RGB", cv2.COLOR_YUV2RGB_YUY2)
_LAYOUTS = {
    "rgb8": _Layout(3, "RGB", None),
    "bgr8": _Layout(3, "BGR", cv2.COLOR_BGR2RGB),
    "rgba8": _Layout(4, "RGB", cv2.COLOR_RGBA2RGB),
    "bgra8": _Layout(4, "BGR", cv2.COLOR_BGRA2RGB),
    "mono8": _Layout(1, "MONO", cv2.COLOR_GRAY2RGB),
    "uyvy": _UYVY,
    "yuv422": _UYVY,
    "yuyv": _YUYV,
    "yuv422_yuy2": _YUYV,
}
SUPPORTED_ENCODINGS = tuple(_LAYOUTS)


def _unsupported(encoding: str) -> str:
    return f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"


def _checked(image: np.ndarray, encoding: str) -> tuple[np.ndarray, _Layout]:
    """The image as a contiguous array of the encoding's shape (mono as HxW), with its layout."""
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageFormatError(_unsupported(encoding))
    expected = "(H, W) or (H, W, 1)" if layout.channels == 1 else f"(H, W, {layout.channels})"
    ok = isinstance(image, np.ndarray) and image.dtype == np.uint8
    if ok and layout.channels == 1 and image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if ok:
        ok = image.ndim == 2 if layout.channels == 1 else image.ndim == 3 and image.shape[2] == layout.channels
    if not ok or image.shape[0] == 0 or image.shape[1] == 0:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ImageFormatError(f"a {encoding} image must be a non-empty uint8 array of shape {expected}; got {got}")
    if layout.channels == 2 and image.shape[1] % 2:
        raise ImageFormatError(f"a {encoding} image must have an even width (4:2:2 pairs), got {image.shape[1]}")
    return np.ascontiguousarray(image), layout


def channels_of(encoding: str) -> int:
    """Bytes per pixel of a supported encoding (2 for packed YUV 4:2:2), for checking a message's step."""
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageFormatError(_unsupported(encoding))
    return layout.channels


def to_rgb(array: np.ndarray, encoding: str) -> np.ndarray:
    """HxWx3 uint8 RGB from a frame in `encoding`; an rgb8 frame is returned as it is, not copied."""
    image, layout = _checked(array, encoding)
    return image if layout.to_rgb is None else cv2.cvtColor(image, layout.to_rgb)


def _resized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Shrink with little aliasing but fast; enlarge bilinearly.

    A direct INTER_AREA by a non-integer factor is OpenCV's slow path (about 0.8 ms for 640x480 to
    128x128) and plain bilinear aliases badly beyond 2x. So exact 2x2 area halvings (a fast path)
    run while the image is at least twice too big, and bilinear does the last, less-than-2x step.
    """
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    if width > w or height > h:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    while w >= 2 * width and h >= 2 * height and w % 2 == 0 and h % 2 == 0:
        w, h = w // 2, h // 2
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    if (h, w) == (height, width):
        return image
    still_big = w >= 2 * width or h >= 2 * height  # odd sizes or a lopsided stretch: pay for exact area
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if still_big else cv2.INTER_LINEAR)


class Preprocessor:
    """Turns frames into model input per an InputSpec; build one per bundle, call it per frame."""

    def __init__(self, spec: InputSpec) -> None:
        if spec.resize not in ("stretch", "center_crop"):
            raise ValueError(f"input.resize must be stretch or center_crop, got {spec.resize!r}")
        if spec.resize == "center_crop" and (spec.resize_size or 0) < max(spec.height, spec.width):
            raise ValueError(f"input.resize_size must be >= max(height, width) for center_crop, got {spec.resize_size}")
        self.spec = spec
        mean = np.asarray(spec.mean, dtype=np.float64).reshape(3, 1, 1)
        std = np.asarray(spec.std, dtype=np.float64).reshape(3, 1, 1)
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._bias = (-mean / std).astype(np.float32)

    def __call__(self, image: np.ndarray, encoding: str = "rgb8") -> np.ndarray:
        """1x3xHxW float32 C-contiguous input: ((pixel / 255) - mean) / std in the model's colour order."""
        image, layout = _checked(image, encoding)
        if layout.channels == 2:
            assert layout.to_rgb is not None  # every packed YUV layout has a conversion
            image = cv2.cvtColor(image, layout.to_rgb)
        planes = self._planes(self._geometry(image), layout.order)
        out = np.empty((1, 3, self.spec.height, self.spec.width), dtype=np.float32)
        np.multiply(planes, self._scale, out=out[0])
        np.add(out[0], self._bias, out=out[0])
        return out

    def scaled(self, image: np.ndarray) -> np.ndarray:
        """The image resized as preprocessing resizes it, before any crop (any channel layout): what a robot sending
        pixels at the model's scale would send. Preprocessing the result gives the same geometry, no second resize."""
        if self.spec.resize == "stretch":
            return _resized(image, self.spec.width, self.spec.height)
        side = self.spec.resize_size
        assert side is not None  # __init__ rejects center_crop without resize_size
        h, w = image.shape[:2]
        new_h, new_w = (side, int(side * w / h)) if h <= w else (int(side * h / w), side)
        return _resized(image, new_w, new_h)

    def _geometry(self, image: np.ndarray) -> np.ndarray:
        """Stretch to height x width, or resize the shorter side to resize_size and crop the centre."""
        height, width = self.spec.height, self.spec.width
        resized = self.scaled(image)
        if self.spec.resize == "stretch":
            return resized
        new_h, new_w = resized.shape[:2]
        top, left = round((new_h - height) / 2.0), round((new_w - width) / 2.0)
        return resized[top : top + height, left : left + width]

    def _planes(self, small: np.ndarray, order: str) -> np.ndarray:
        """CHW view of the small image in the model's colour order (alpha dropped, mono broadcast)."""
        if small.ndim == 2:
            return small[np.newaxis]
        chw = small.transpose(2, 0, 1)
        return chw[:3] if order == self.spec.color_order else chw[2::-1]
