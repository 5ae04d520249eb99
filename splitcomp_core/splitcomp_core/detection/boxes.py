"""Boxes as the tail publishes them, and the steps every decoder shares: NMS, scaling, clipping, dropping.

A decoder kind (centerface.py, and SSD/YOLO-style kinds later) only turns its outputs into candidate boxes in
the model input's pixels; everything after that lives here once, so every kind clips, caps and counts alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# A box narrower or lower than one camera pixel once clipped covers no pixel: it is dropped (and counted).
MIN_SIDE = 1.0


@dataclass(frozen=True)
class Detection:
    """One box in camera pixels: top-left corner, size, score, class, and keypoints as (x, y) pairs."""

    class_id: int
    label: str
    score: float
    x: float
    y: float
    width: float
    height: float
    keypoints: tuple[float, ...] = ()


@dataclass
class Candidates:
    """A decoder's boxes before NMS, in model-input pixels: xyxy (N x 4), scores (N), classes (N), keypoints (N x 2K)."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))


@dataclass
class DecodeResult:
    """What one frame's outputs became, and how many boxes were dropped for covering no pixel after clipping."""

    detections: list[Detection]
    dropped_zero_size: int = 0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every xyxy box in `a` (N x 4) with every one in `b` (M x 4): N x M."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, limit: int) -> np.ndarray:
    """Indices of the boxes greedy non-maximum suppression keeps, best first, at most `limit` of them.

    A box is suppressed by a kept, higher-scoring box it overlaps with IoU >= `iou` (CenterFace's own rule).
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < limit:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        if rest.size:
            overlap = iou_matrix(boxes[best : best + 1], boxes[rest])[0]
            rest = rest[overlap < iou]
        order = rest
    return np.asarray(keep, dtype=np.int64)


def finish(
    found: Candidates,
    *,
    input_size: tuple[int, int],
    image_size: tuple[int, int],
    nms_iou: float,
    max_detections: int,
    labels: list[str] | None,
) -> DecodeResult:
    """NMS in model pixels, then boxes and keypoints scaled to the camera frame (stretch), clipped, empty ones dropped.

    `input_size` and `image_size` are (width, height) of the model input and the camera frame.
    """
    keep = nms(found.boxes, found.scores, nms_iou, max_detections)
    sx, sy = image_size[0] / input_size[0], image_size[1] / input_size[1]
    scale = np.array([sx, sy, sx, sy])
    boxes = found.boxes[keep].astype(np.float64) * scale
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, image_size[0])
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, image_size[1])
    points = found.keypoints[keep].astype(np.float64) if found.keypoints.size else np.zeros((len(keep), 0))
    points[:, 0::2] *= sx
    points[:, 1::2] *= sy
    sized = (boxes[:, 2] - boxes[:, 0] >= MIN_SIDE) & (boxes[:, 3] - boxes[:, 1] >= MIN_SIDE)
    detections = [
        Detection(
            class_id=int(found.classes[k]),
            label=_label(labels, int(found.classes[k])),
            score=float(found.scores[k]),
            x=float(box[0]),
            y=float(box[1]),
            width=float(box[2] - box[0]),
            height=float(box[3] - box[1]),
            keypoints=tuple(float(v) for v in pts),
        )
        for k, box, pts, ok in zip(keep, boxes, points, sized)
        if ok
    ]
    return DecodeResult(detections, dropped_zero_size=int(np.count_nonzero(~sized)))


def _label(labels: list[str] | None, class_id: int) -> str:
    return labels[class_id] if labels is not None and 0 <= class_id < len(labels) else str(class_id)
