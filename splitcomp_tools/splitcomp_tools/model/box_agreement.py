"""Agreement for boxes: a split detector's detections against the unsplit model's on the same frames.

Boxes are matched one to one at IoU >= 0.5 (the best-overlapping pairs first), and three figures follow:
(a) F1 over the unsplit detections above the decoder's threshold, (b) recall on the unsplit model's confident
detections (score >= `confidence`, 0.8 by default) with its 95 % Wilson interval, and (c) the mean IoU of the
matched boxes. `BoxAgreement` answers `rate` (F1) and `confident_interval()` (of the recall) like the class
`Agreement`, so `agreement.meets` applies the same rule to both tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from splitcomp_core.detection import Detection, iou_matrix
from splitcomp_tools.model.agreement import wilson_interval

MATCH_IOU = 0.5
DEFAULT_BOX_CONFIDENCE = 0.8


def xyxy(detections: Sequence[Detection]) -> np.ndarray:
    """Detections as an N x 4 array of (x1, y1, x2, y2)."""
    return np.array([(d.x, d.y, d.x + d.width, d.y + d.height) for d in detections], dtype=np.float64).reshape(-1, 4)


def match(reference: np.ndarray, candidate: np.ndarray, min_iou: float = MATCH_IOU) -> list[tuple[int, int, float]]:
    """One-to-one pairs (reference index, candidate index, IoU) with IoU >= `min_iou`, the best overlaps first."""
    if not len(reference) or not len(candidate):
        return []
    ious = iou_matrix(reference, candidate)
    rows, cols = np.nonzero(ious >= min_iou)
    order = np.argsort(-ious[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c, float(ious[r, c])))
    return pairs


@dataclass(frozen=True)
class BoxAgreement:
    """Counts over frames: matched pairs, both sides' boxes, the confident reference boxes found, the IoU sum."""

    matched: int
    reference_boxes: int
    candidate_boxes: int
    confident_matched: int
    confident_boxes: int
    iou_sum: float

    @property
    def rate(self) -> float:
        """(a) F1: 2 matched / (reference + candidate boxes); 1 when neither side found anything."""
        total = self.reference_boxes + self.candidate_boxes
        return 2 * self.matched / total if total else 1.0

    @property
    def confident_rate(self) -> float:
        """(b) recall on the unsplit model's confident boxes."""
        return self.confident_matched / self.confident_boxes if self.confident_boxes else 0.0

    @property
    def confident_frames(self) -> int:
        """How many confident boxes (b) is judged on (named as the class agreement's, for the shared rule)."""
        return self.confident_boxes

    @property
    def mean_iou(self) -> float:
        """(c) the mean IoU of the matched boxes."""
        return self.iou_sum / self.matched if self.matched else 0.0

    def confident_interval(self) -> tuple[float, float]:
        return wilson_interval(self.confident_matched, self.confident_boxes)

    def to_json(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "reference_boxes": self.reference_boxes,
            "candidate_boxes": self.candidate_boxes,
            "f1": self.rate,
            "confident_matched": self.confident_matched,
            "confident_boxes": self.confident_boxes,
            "confident_recall": self.confident_rate,
            "confident_interval": list(self.confident_interval()),
            "mean_iou": self.mean_iou,
        }


def measure_boxes(
    reference: Sequence[Sequence[Detection]],
    candidate: Sequence[Sequence[Detection]],
    confidence: float = DEFAULT_BOX_CONFIDENCE,
    min_iou: float = MATCH_IOU,
) -> BoxAgreement:
    """How `candidate` (per frame, the split model's detections) agrees with the unsplit `reference` per frame."""
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference frames but {len(candidate)} candidate frames")
    matched = confident_matched = confident_boxes = ref_boxes = cand_boxes = 0
    iou_sum = 0.0
    for ours, theirs in zip(reference, candidate):
        pairs = match(xyxy(ours), xyxy(theirs), min_iou)
        sure = {i for i, d in enumerate(ours) if d.score >= confidence}
        matched += len(pairs)
        iou_sum += sum(iou for _, _, iou in pairs)
        confident_matched += sum(1 for r, _, _ in pairs if r in sure)
        confident_boxes += len(sure)
        ref_boxes += len(ours)
        cand_boxes += len(theirs)
    return BoxAgreement(matched, ref_boxes, cand_boxes, confident_matched, confident_boxes, iou_sum)
