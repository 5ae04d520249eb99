"""The rate-agreement curve of distilled bundles, measured as the nodes would run them on held-out frames.

Each frame goes through the distilled bundle's HeadPipeline (encoder, symbols, entropy coding: the bytes on the
wire) and TailPipeline (decoding, decoder, tail), and is compared with the unsplit model (the original bundle's
head then tail on float features) by agreement.measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.bundle.manifest import Bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE, Agreement, measure
from splitcomp_tools.model.distill.errors import DistillError


@dataclass(frozen=True)
class Point:
    """One distilled bundle on the judged frames: mean bytes per frame on the wire, and its agreement."""

    path: Path
    bytes_per_frame: float
    agreement: Agreement


def unsplit(bundle: Bundle, frames: Sequence[np.ndarray]) -> np.ndarray:
    """The unsplit model's class probabilities of `frames` (head then tail on float features)."""
    head, tail = HeadPipeline(bundle), TailPipeline(bundle)
    features = [head.features(f)[0] for f in frames]
    return tail.probabilities({name: np.stack([f[name] for f in features]) for name in head.cut_names})


def judge(
    path: Path, frames: Sequence[np.ndarray], reference: np.ndarray, confidence: float = DEFAULT_CONFIDENCE
) -> Point:
    """Bytes per frame and agreement of the distilled bundle at `path` on `frames` (intra frames, its defaults)."""
    bundle = load_bundle(path)
    head, tail = HeadPipeline(bundle), TailPipeline(bundle)
    sizes, decoded = [], []
    for frame in frames:
        tensors = head(frame).tensors
        sizes.append(sum(len(t.data) for t in tensors))
        decoded.append(tail.decode(bundle.manifest.model_id, tensors).feeds)
    scores = tail.probabilities({name: np.stack([d[name] for d in decoded]) for name in head.cut_names})
    return Point(path, float(np.mean(sizes)), measure(reference, scores, confidence))


def training_images(bundle: Bundle) -> str:
    """The frames a distilled bundle was trained on ("" for a bundle `distill` did not write)."""
    verification = bundle.manifest.verification or {}
    return str(verification.get("training_images", "")) if verification.get("kind") == "distillation" else ""


def bottleneck_row(
    path: str | Path, original: Bundle, frames: Sequence[np.ndarray], reference: np.ndarray, confidence: float
) -> Point:
    """A distilled bundle of `original`'s cut judged on `frames` against `original`'s unsplit `reference`."""
    bundle = load_bundle(path)
    if not training_images(bundle):
        raise DistillError(f"{path}: not a bundle distill wrote (its manifest's verification is not a distillation)")
    if bundle.manifest.input != original.manifest.input or bundle.manifest.output != original.manifest.output:
        raise DistillError(f"{path}: distilled from another model than {original.path} (input or output differs)")
    return judge(bundle.path, frames, reference, confidence)
