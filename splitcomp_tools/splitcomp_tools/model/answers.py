"""What a tail answers for stacked frames, and how two sets of answers agree, by the bundle's task: one place for
calibrate, plan, the baselines and the demo.

A classification tail answers each frame's class probabilities (frames x classes), compared by
`agreement.measure`; a detection tail answers each frame's boxes (in the model input's pixels, the same scale for
split, unsplit and JPEG or video frames alike, and IoU does not change with a per-axis scale), compared by
`box_agreement.measure_boxes`. Both statistics answer `rate` and `confident_interval()`, so `agreement.meets` and
the tools' choice apply to either unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from splitcomp_core.detection import Detection
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE, Agreement, measure
from splitcomp_tools.model.box_agreement import DEFAULT_BOX_CONFIDENCE, BoxAgreement, measure_boxes

Answers = np.ndarray | list[list[Detection]]  # per frame: probabilities, or boxes
Stats = Agreement | BoxAgreement


def is_detection(tail: TailPipeline) -> bool:
    """Whether the tail's bundle detects (answers boxes) rather than classifies."""
    return tail.decoder is not None


def default_confidence(tail: TailPipeline) -> float:
    """What makes an unsplit answer confident when the user gave no --confidence: a top-1 probability of 0.5, or
    a box score of 0.8."""
    return DEFAULT_BOX_CONFIDENCE if is_detection(tail) else DEFAULT_CONFIDENCE


def answers(tail: TailPipeline, features: Mapping[str, np.ndarray]) -> Answers:
    """The tail's answers for N stacked frames' float cut tensors (each of shape (N, *tensor shape))."""
    return tail.detections(features) if is_detection(tail) else tail.probabilities(features)


def answer(tail: TailPipeline, features: Mapping[str, np.ndarray]) -> np.ndarray | list[Detection]:
    """One frame's answer from its cut tensors as the head gives them (no frame axis)."""
    return answers(tail, {n: a[np.newaxis] for n, a in features.items()})[0]


def joined(rows: Sequence[np.ndarray | list[Detection]]) -> Answers:
    """Frames' answers (from `answer`) as one set of answers, in their order."""
    arrays = [r for r in rows if isinstance(r, np.ndarray)]
    return np.stack(arrays) if arrays else [list(r) for r in rows if not isinstance(r, np.ndarray)]


def agreement(reference: Answers, candidate: Answers, confidence: float) -> Stats:
    """How `candidate` agrees with the unsplit `reference` answers of the same frames."""
    if isinstance(reference, np.ndarray):
        assert isinstance(candidate, np.ndarray)
        return measure(reference, candidate, confidence)
    assert not isinstance(candidate, np.ndarray)
    return measure_boxes(reference, candidate, confidence)
