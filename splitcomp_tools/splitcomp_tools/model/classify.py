"""classify: image files, or frames of a source, through a bundle's split pipeline, as the robot and edge would.

Each frame goes through the head, the feature codec at the chosen bits/codec, and the tail; a row
holds the top classes, the bytes that would cross the network, and the head's and tail's times.
Frames of a source are also judged (`judge_source`): the encoding's agreement with the unsplit model
(head then tail on float32 features) and JPEG-95 of the full frame's, on the same frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.codec import EncodedTensor
from splitcomp_core.errors import SplitcompError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.images import read_image
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.frames import open_source
from splitcomp_tools.frames.files import describe_skipped
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE, DEPENDENCE_NOTE, Agreement, measure
from splitcomp_tools.model.answers import Stats
from splitcomp_tools.model.baseline import FULL_FRAME, JpegBaseline

MAX_COUNT = 100_000
Warn = Callable[[str], None]  # told what a caller should know but need not stop for (a head's warning)


def classify(
    bundle_path: str, images: Sequence[str], config: EncoderConfig, top_k: int = 3, warn: Warn | None = None
) -> list[dict]:
    """Each image file through HeadPipeline -> codec -> TailPipeline: one row per image."""
    return classify_frames(bundle_path, ((str(p), read_image(p)) for p in images), config, top_k, warn)


@dataclass
class Judged:
    """Rows of frames of a source, and how the encoding and JPEG-95 of the full frame agree with the unsplit model."""

    rows: list[dict]
    split: Agreement
    jpeg: Stats
    confidence: float

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "confidence": self.confidence,
            "dependence_note": DEPENDENCE_NOTE,
            "agreement": {"split": self.split.to_json(), FULL_FRAME: self.jpeg.to_json()},
        }


class _Probe:
    """Per frame: the unsplit model's probabilities, the split pipeline's (decoded as the tail decodes), JPEG-95's."""

    def __init__(self, head: HeadPipeline, tail: TailPipeline) -> None:
        self.head, self.tail, self.jpeg = head, tail, JpegBaseline(head, tail)
        self.unsplit: list[np.ndarray] = []
        self.split: list[np.ndarray] = []

    def add(self, frame: np.ndarray, tensors: Sequence[EncodedTensor]) -> None:
        features = self.head.features(frame, "rgb8")[0]
        self.unsplit.append(self.tail.probabilities({n: a[np.newaxis] for n, a in features.items()})[0])
        decoded = self.tail.decode(self.tail.model_id, tensors)
        self.split.append(self.tail.probabilities({n: a[np.newaxis] for n, a in decoded.feeds.items()})[0])
        self.jpeg.add(frame)

    def judged(self, rows: list[dict], confidence: float) -> Judged:
        reference = np.stack(self.unsplit)
        jpeg = next(r.stats for r in self.jpeg.results(reference, confidence) if r.method == FULL_FRAME)
        for row, unsplit in zip(rows, reference):
            row["unsplit"] = {"class_id": int(unsplit.argmax()), "probability": float(unsplit.max())}
        return Judged(rows, measure(reference, np.stack(self.split), confidence), jpeg, confidence)


def classify_frames(
    bundle_path: str,
    frames: Iterable[tuple[str, np.ndarray]],
    config: EncoderConfig,
    top_k: int = 3,
    warn: Warn | None = None,
) -> list[dict]:
    """(name, HxWx3 RGB frame) pairs through HeadPipeline -> codec -> TailPipeline: one row per frame."""
    return _classified(bundle_path, frames, config, top_k, warn)[0]


def _classified(
    bundle_path: str,
    frames: Iterable[tuple[str, np.ndarray]],
    config: EncoderConfig,
    top_k: int,
    warn: Warn | None,
    judge: bool = False,
) -> tuple[list[dict], _Probe | None]:
    bundle = load_bundle(bundle_path)
    if bundle.manifest.detection is not None:
        raise SplitcompError(
            f"{bundle_path} detects (its tail answers boxes); classify prints classes: see its boxes with "
            f"`demo --model centerface`, the studio, or `bench video --bundle {bundle_path}`"
        )
    head = HeadPipeline(bundle, config, providers=["cpu"])
    tail = TailPipeline(bundle, ["cpu"], top_k=top_k)
    probe = _Probe(head, tail) if judge else None
    if warn is not None:
        for warning in head.warnings:
            warn(warning)
    rows = []
    for name, frame in frames:
        sent = head(frame, "rgb8")
        got = tail(bundle.manifest.model_id, sent.tensors)
        if probe is not None:
            probe.add(frame, sent.tensors)
        rows.append(
            {
                "image": name,
                "results": [{"class_id": c, "label": label, "score": score} for c, label, score in got.results],
                "feature_bytes": got.feature_bytes,
                "head_ms": sent.preprocess_ms + sent.head_ms + sent.encode_ms,
                "tail_ms": got.total_ms,
            }
        )
    return rows, probe


def classify_source(
    bundle_path: str,
    source_name: str,
    count: int,
    config: EncoderConfig,
    top_k: int = 3,
    seed: int = 0,
    topic: str = "",
    warn: Warn | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Judged:
    """`count` frames of a frame source (named as open_source takes it), each row named "<source>#<index>",
    judged against the unsplit model beside JPEG-95 of the full frame (confident: top-1 probability >= `confidence`)."""
    source = open_source(source_name, seed=seed, topic=topic)
    try:
        named = ((f"{source_name}#{i}", frame) for i, frame in enumerate(source.frames(count)))
        rows, probe = _classified(bundle_path, named, config, top_k, warn, judge=True)
    finally:
        source.close()
    if describe_skipped(source) and warn is not None:
        warn(f"{describe_skipped(source)}; classified the others")
    if probe is None or not rows:
        raise SplitcompError(f"{source_name} gave no frames that could be read")
    return probe.judged(rows, confidence)
