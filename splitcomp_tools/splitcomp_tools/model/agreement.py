"""Agreement statistics that hold on real video: one place for calibrate, plan, classify, the studio and the demo.

Top-1 agreement on all frames punishes an encoding for frames where the unsplit model itself is unsure
(on video most frames): any perturbation flips such a top-1. What a robot acts on are confident frames,
where the unsplit top-1 probability reaches a threshold. A point estimate on a few hundred frames says
little, so every rate comes with its 95 % Wilson interval, and a target is met only by the interval's
lower bound. Consecutive video frames are not independent, so the interval is optimistic on clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

Z95 = 1.959963984540054  # the two-sided 95 % normal quantile
DEFAULT_CONFIDENCE = 0.5
TOP_K = 5
DEPENDENCE_NOTE = "consecutive video frames are not independent, so the interval is optimistic"


def wilson_interval(agree: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of `agree` successes in `total` trials; (0, 1) when there are none."""
    if total <= 0:
        return 0.0, 1.0
    p = agree / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def frames_needed(target: float, z: float = Z95) -> int:
    """The fewest frames whose lower bound can reach `target` at all (no disagreement: n / (n + z²))."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"a target agreement must be above 0 and below 1, got {target}")
    return math.ceil(target * z * z / (1.0 - target) - 1e-9)


def confident(probabilities: np.ndarray, threshold: float = DEFAULT_CONFIDENCE) -> np.ndarray:
    """Which frames (rows of class probabilities) the unsplit model is sure of: top-1 probability ≥ threshold."""
    return np.asarray(probabilities).max(axis=1) >= threshold


def top_k_overlap(reference: np.ndarray, scores: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Per frame, the share of the reference's top-k classes that are also in the other's top-k."""
    k = min(k, reference.shape[1])
    ours = np.argsort(-reference, axis=1)[:, :k]
    theirs = np.argsort(-scores, axis=1)[:, :k]
    return np.array([len(set(a) & set(b)) / k for a, b in zip(ours, theirs, strict=True)])


@dataclass(frozen=True)
class Agreement:
    """One encoding's agreement with the unsplit model: (a) all frames, (b) confident frames, (c) top-5 overlap."""

    agree: int
    frames: int
    confident_agree: int
    confident_frames: int
    top5_overlap: float

    @property
    def rate(self) -> float:
        return self.agree / self.frames if self.frames else 0.0

    @property
    def confident_rate(self) -> float:
        return self.confident_agree / self.confident_frames if self.confident_frames else 0.0

    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.agree, self.frames)

    def confident_interval(self) -> tuple[float, float]:
        return wilson_interval(self.confident_agree, self.confident_frames)

    def to_json(self) -> dict[str, Any]:
        """The counts, (a) and (b) with their 95 % Wilson intervals, and (c): what every tool's JSON carries."""
        return {
            "agree": self.agree,
            "frames": self.frames,
            "rate": self.rate,
            "interval": list(self.interval()),
            "confident_agree": self.confident_agree,
            "confident_frames": self.confident_frames,
            "confident_rate": self.confident_rate,
            "confident_interval": list(self.confident_interval()),
            "top5_overlap": self.top5_overlap,
        }


def measure(reference: np.ndarray, scores: np.ndarray, threshold: float = DEFAULT_CONFIDENCE) -> Agreement:
    """How `scores` (frames x classes) agree with the unsplit `reference` probabilities of the same frames."""
    same = np.argmax(reference, axis=1) == np.argmax(scores, axis=1)
    sure = confident(reference, threshold)
    overlap = top_k_overlap(reference, scores)
    return Agreement(
        int(same.sum()), len(same), int(same[sure].sum()), int(sure.sum()), float(overlap.mean()) if len(same) else 0.0
    )


class Rated(Protocol):
    """What the rule reads of any agreement: (a) `rate`, and the interval of (b) (Agreement, box_agreement's)."""

    @property
    def rate(self) -> float: ...

    def confident_interval(self) -> tuple[float, float]: ...


@dataclass(frozen=True)
class Floor:
    """What an encoding's (a) must reach: JPEG-95 of the camera frame's, and that of every H.264 camera-frame row
    (model/video) sending at least as many bytes per frame, since a robot could send that instead for no more.
    `h264` holds those rows as (bytes per frame, agreement), measured on the same frames as the candidates."""

    jpeg: Rated
    h264: tuple[tuple[float, Rated], ...] = ()

    def rate(self, bytes_per_frame: float) -> float:
        """The (a) an encoding sending `bytes_per_frame` must reach."""
        return max([self.jpeg.rate, *(a.rate for size, a in self.h264 if size >= bytes_per_frame)])


def meets(candidate: Rated, bytes_per_frame: float, floor: Floor, target: float) -> bool:
    """The rule: the lower bound on confident agreement reaches `target` AND all-frame agreement is no worse than
    the highest of JPEG-95's and every H.264 camera-frame row's that sends at least `bytes_per_frame` (point
    estimates, on the same frames)."""
    return candidate.confident_interval()[0] >= target and candidate.rate >= floor.rate(bytes_per_frame)


def unsupported(confident_frames: int, target: float) -> str | None:
    """Why `confident_frames` cannot support `target` (no encoding's lower bound could reach it), or None."""
    needed = frames_needed(target)
    if confident_frames >= needed:
        return None
    return (
        f"only {confident_frames} confident frames; a lower bound of {target:.1%} needs at least {needed} "
        f"(n / (n + 3.84) with no disagreement): judge on more frames, e.g. photos:test,video:bikes,video:carphone, "
        f"or lower the target; no encoding is chosen on a point estimate"
    )


def describe_rule(target: float) -> str:
    """The rule `meets` applies, in one sentence, for the tools' output."""
    return (
        f"the 95 % Wilson lower bound of top-1 agreement on confident frames reaches {target:g} and top-1 "
        "agreement on all frames is no worse than the highest of JPEG-95 of the full frame's and that of every "
        "H.264 of the camera frame that sends at least as many bytes, on the same frames"
    )


def check_enough_frames(images: str, count: int, target: float) -> str | None:
    """Before measuring: why `count` frames per source of `images` (a comma list) can never support `target`,
    or None. At most count x sources frames are judged, and every one would have to be confident."""
    most = count * len([part for part in images.split(",") if part.strip()])
    if most >= frames_needed(target):
        return None
    return (
        f"at most {most} frames would be judged ({count} per source of {images}); a lower bound of {target:.1%} "
        f"needs at least {frames_needed(target)} confident frames: raise the count, judge on more sources, e.g. "
        f"photos:test,video:bikes,video:carphone, or lower the target"
    )
