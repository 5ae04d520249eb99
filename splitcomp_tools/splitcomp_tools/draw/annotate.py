"""Draw a result onto a camera frame: a dark band at the top left with white text, and a detector's boxes with
their landmarks (`draw_boxes`, drawn before the band).

Pure numpy + OpenCV so the overlay node stays a thin adapter and the drawing is testable without
ROS. Everything is sized from the image height, so the text reads the same on 640x480 and on
1920x1080; the band has a fixed size for a given frame and line count, so it does not jitter as
the labels and numbers change, and nothing outside it is ever touched (the text is drawn into the
band's own view, so OpenCV clips it there). `overlay --example PNG` draws it on a generated frame.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from splitcomp_core.errors import ImageFormatError, SplitcompError
from splitcomp_core.files import atomic_write_bytes
from splitcomp_core.preprocess import to_rgb

FONT = cv2.FONT_HERSHEY_SIMPLEX
DRAWABLE_ENCODINGS = ("rgb8", "bgr8")
BAND_KEEP = 0.35  # share of the original brightness left under the band
TEXT_COLOUR = (255, 255, 255)  # white is the same in RGB and BGR
HEIGHT_PER_UNIT_SCALE = 800.0  # font scale 1.0 at 800 px image height
MIN_SCALE = 0.35  # below this the Hershey font is unreadable
BAND_TEMPLATE = "0" * 24  # the band is as wide as this string: about 30 characters of mixed text
MAX_LABEL_CHARS = 18
BOX_COLOUR = (0, 255, 0)  # pure green is the same in RGB and BGR
LANDMARK_COLOUR = (255, 0, 255)  # magenta too


@dataclass(frozen=True)
class Box:
    """One box to draw, in the frame's pixels: top-left corner, size, and keypoints as (x, y) pairs."""

    x: float
    y: float
    width: float
    height: float
    keypoints: tuple[float, ...] = ()


def _font(image_height: int) -> tuple[float, int, int, int, int]:
    """(scale, thickness, text height, line height, padding) in pixels for this image height."""
    scale = max(MIN_SCALE, image_height / HEIGHT_PER_UNIT_SCALE)
    thickness = max(1, round(scale * 1.5))
    (_, text_h), _ = cv2.getTextSize("Ag", FONT, scale, thickness)
    return scale, thickness, text_h, round(text_h * 1.7), max(3, round(text_h * 0.5))


def band_rect(image_shape: Sequence[int], n_lines: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the band for `n_lines` lines: the only pixels annotate() may change."""
    height, width = int(image_shape[0]), int(image_shape[1])
    if n_lines <= 0:
        return 0, 0, 0, 0
    scale, thickness, _, line_h, pad = _font(height)
    (template_w, _), _ = cv2.getTextSize(BAND_TEMPLATE, FONT, scale, thickness)
    return 0, 0, min(width, template_w + 2 * pad), min(height, n_lines * line_h + 2 * pad)


def annotate(image: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """A copy of an HxWx3 uint8 frame (RGB or BGR) with `lines` written in the top-left band."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ImageFormatError(
            f"annotate needs an HxWx3 uint8 image (rgb8 or bgr8), got {got}; convert it with drawable() first"
        )
    out = image.copy()
    x0, y0, x1, y1 = band_rect(out.shape, len(lines))
    band = out[y0:y1, x0:x1]
    band[...] = (band * BAND_KEEP).astype(np.uint8)
    scale, thickness, text_h, line_h, pad = _font(out.shape[0])
    for i, line in enumerate(lines):
        cv2.putText(band, line, (pad, pad + text_h + i * line_h), FONT, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)
    return out


def draw_boxes(image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
    """A copy of an HxWx3 uint8 frame with each box's outline and a dot per landmark (lines scale with the frame)."""
    out = np.ascontiguousarray(image).copy()
    thickness = max(1, round(out.shape[0] / 240))
    for b in boxes:
        x0, y0 = round(b.x), round(b.y)
        x1, y1 = round(b.x + b.width) - 1, round(b.y + b.height) - 1
        cv2.rectangle(out, (x0, y0), (max(x0, x1), max(y0, y1)), BOX_COLOUR, thickness)
        for px, py in zip(b.keypoints[0::2], b.keypoints[1::2]):
            cv2.circle(out, (round(px), round(py)), thickness + 1, LANDMARK_COLOUR, -1)
    return out


def detection_lines(count: int, latency_ms: float, feature_bytes: int, fps: float) -> list[str]:
    """The overlay text for a detector's answer: how many boxes, then latency, then bytes and rate."""
    return [
        f"{count} detection{'s' if count != 1 else ''}",
        f"latency {latency_ms:.1f} ms",
        f"{feature_bytes} B/frame  {fps:.1f} fps",
    ]


def drawable(image: np.ndarray, encoding: str) -> tuple[np.ndarray, str]:
    """(frame, encoding) to draw on and publish: rgb8 and bgr8 as they are (annotate copies), others as rgb8."""
    if encoding in DRAWABLE_ENCODINGS:
        return image, encoding
    return to_rgb(image, encoding), "rgb8"


def _label(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 3] + "..."


def result_lines(
    scores: Sequence[tuple[str, float]], latency_ms: float, feature_bytes: int, fps: float, top_n: int = 3
) -> list[str]:
    """The overlay text: the best `top_n` (label, probability) pairs, then latency, then bytes and rate."""
    lines = [f"{rank}. {_label(label)} {100.0 * score:.1f}%" for rank, (label, score) in enumerate(scores[:top_n], 1)]
    return [*lines, f"latency {latency_ms:.1f} ms", f"{feature_bytes} B/frame  {fps:.1f} fps"]


def write_png(path: str | os.PathLike, bgr: np.ndarray) -> None:
    """A BGR (or mono) image as a PNG file, written atomically."""
    ok, data = cv2.imencode(".png", bgr)
    if not ok:
        raise SplitcompError(f"OpenCV could not encode a PNG for {path}")
    atomic_write_bytes(path, data.tobytes())
