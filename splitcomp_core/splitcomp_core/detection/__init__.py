"""Detection as data: the decoder kinds a bundle may name, and the one Decoder the tail runs for any of them.

A kind is a module's three functions (its output roles, the check that a model's outputs fit, and the
candidates at one frame); everything else (NMS, scaling to the camera frame, clipping, the cap, the
counts) is shared in boxes.py. Adding an SSD- or YOLO-style kind is one entry in KINDS: no node changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from splitcomp_core.detection import centerface
from splitcomp_core.detection.boxes import Candidates, DecodeResult, Detection, finish, iou_matrix, nms
from splitcomp_core.errors import BundleError

# Largest camera side the tail maps boxes to: a size beyond it is not a camera frame but a corrupt message.
MAX_IMAGE_SIDE = 65535


@dataclass(frozen=True)
class DecoderKind:
    """One decoder kind: the output roles it reads, why given output shapes do not fit, and its candidates."""

    outputs: tuple[str, ...]
    fit_problem: Callable[[Mapping[str, list[int]], int, tuple[int, int]], str | None]
    candidates: Callable[[Mapping[str, np.ndarray], float, int], Candidates]


KINDS: Mapping[str, DecoderKind] = {
    "centerface": DecoderKind(centerface.OUTPUTS, centerface.fit_problem, centerface.candidates),
}


class DetectionRejected(ValueError):
    """A frame the decoder will not answer; `reason` is the tail's counter key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DecoderSettings:
    """The manifest's detection section as the decoder uses it (see bundle.manifest.DetectionSpec)."""

    decoder: str
    outputs: Mapping[str, str]  # role -> tensor name in tail.onnx
    threshold: float
    stride: int
    nms_iou: float
    max_detections: int


class Decoder:
    """A bundle's post-processing for detection: outputs of one frame -> boxes in that frame's pixels."""

    def __init__(
        self, settings: DecoderSettings, input_size: tuple[int, int], labels: Sequence[str] | None = None
    ) -> None:
        """`input_size` is the model input's (width, height); the kind must be known (see `check_decoder`)."""
        self.settings = settings
        self.kind = KINDS[settings.decoder]
        self.input_size = input_size
        self.labels = list(labels) if labels is not None else None
        self.tensor_names = [settings.outputs[role] for role in self.kind.outputs]

    def __call__(self, outputs: Mapping[str, np.ndarray], image_size: tuple[int, int]) -> DecodeResult:
        """Boxes for one frame of `image_size` (width, height); DetectionRejected for sizes or values it cannot use."""
        check_image_size(image_size)
        by_role = {role: np.asarray(outputs[self.settings.outputs[role]]) for role in self.kind.outputs}
        for role, values in by_role.items():
            if not np.isfinite(values).all():
                bad = int(values.size - np.count_nonzero(np.isfinite(values)))
                raise DetectionRejected("non_finite", f"the tail's {role} output holds {bad} NaN or infinite value(s)")
        s = self.settings
        found = self.kind.candidates(by_role, s.threshold, s.stride)
        return finish(
            found,
            input_size=self.input_size,
            image_size=image_size,
            nms_iou=s.nms_iou,
            max_detections=s.max_detections,
            labels=self.labels,
        )


def check_image_size(image_size: tuple[int, int]) -> None:
    """Refuse a camera size the tail cannot map boxes to: zero (an old head, or unset) or beyond MAX_IMAGE_SIDE."""
    width, height = image_size
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        raise DetectionRejected(
            "image_size",
            f"image size {width}x{height} cannot be mapped to (each side must be 1..{MAX_IMAGE_SIDE}; a head that "
            f"predates image_width/image_height sends 0: update the robot)",
        )


def check_decoder(settings: DecoderSettings, shapes: Mapping[str, list[int]], input_size: tuple[int, int]) -> None:
    """Refuse, with one line, an unknown decoder kind or tail outputs (name -> shape) that do not fit it."""
    kind = KINDS.get(settings.decoder)
    if kind is None:
        raise BundleError(f"detection.decoder {settings.decoder!r} is not a known kind (known: {', '.join(KINDS)})")
    missing_roles = [role for role in kind.outputs if role not in settings.outputs]
    extra_roles = sorted(set(settings.outputs) - set(kind.outputs))
    if missing_roles or extra_roles:
        raise BundleError(
            f"detection.outputs must name exactly the {settings.decoder} roles {list(kind.outputs)}; "
            f"missing {missing_roles}, unknown {extra_roles}"
        )
    absent = [name for name in settings.outputs.values() if name not in shapes]
    if absent:
        raise BundleError(f"detection.outputs {absent} are not outputs of the tail (its outputs: {list(shapes)})")
    problem = kind.fit_problem(
        {role: shapes[name] for role, name in settings.outputs.items()}, settings.stride, input_size
    )
    if problem is not None:
        raise BundleError(f"detection: the tail's outputs do not fit decoder {settings.decoder!r}: {problem}")


__all__ = [
    "KINDS",
    "MAX_IMAGE_SIDE",
    "Candidates",
    "DecodeResult",
    "Decoder",
    "DecoderKind",
    "DecoderSettings",
    "Detection",
    "DetectionRejected",
    "check_decoder",
    "check_image_size",
    "finish",
    "iou_matrix",
    "nms",
]
