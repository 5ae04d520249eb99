"""classify: image files, or frames of a source, through a bundle's split pipeline, as the robot and edge would.

Each frame goes through the head, the feature codec at the chosen bits/codec, and the tail; a row
holds the top classes, the bytes that would cross the network, and the head's and tail's times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.images import read_image
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.frames import open_source
from splitcomp_tools.frames.files import describe_skipped

MAX_COUNT = 100_000
Warn = Callable[[str], None]  # told what a caller should know but need not stop for (a head's warning)


def classify(
    bundle_path: str, images: Sequence[str], config: EncoderConfig, top_k: int = 3, warn: Warn | None = None
) -> list[dict]:
    """Each image file through HeadPipeline -> codec -> TailPipeline: one row per image."""
    return classify_frames(bundle_path, ((str(p), read_image(p)) for p in images), config, top_k, warn)


def classify_frames(
    bundle_path: str,
    frames: Iterable[tuple[str, np.ndarray]],
    config: EncoderConfig,
    top_k: int = 3,
    warn: Warn | None = None,
) -> list[dict]:
    """(name, HxWx3 RGB frame) pairs through HeadPipeline -> codec -> TailPipeline: one row per frame."""
    bundle = load_bundle(bundle_path)
    head = HeadPipeline(bundle, config, providers=["cpu"])
    tail = TailPipeline(bundle, ["cpu"], top_k=top_k)
    if warn is not None:
        for warning in head.warnings:
            warn(warning)
    rows = []
    for name, frame in frames:
        sent = head(frame, "rgb8")
        got = tail(bundle.manifest.model_id, sent.tensors)
        rows.append(
            {
                "image": name,
                "results": [{"class_id": c, "label": label, "score": score} for c, label, score in got.results],
                "feature_bytes": got.feature_bytes,
                "head_ms": sent.preprocess_ms + sent.head_ms + sent.encode_ms,
                "tail_ms": got.total_ms,
            }
        )
    return rows


def classify_source(
    bundle_path: str,
    source_name: str,
    count: int,
    config: EncoderConfig,
    top_k: int = 3,
    seed: int = 0,
    topic: str = "",
    warn: Warn | None = None,
) -> list[dict]:
    """`count` frames of a frame source (named as open_source takes it), each row named "<source>#<index>"."""
    source = open_source(source_name, seed=seed, topic=topic)
    try:
        named = ((f"{source_name}#{i}", frame) for i, frame in enumerate(source.frames(count)))
        rows = classify_frames(bundle_path, named, config, top_k, warn)
    finally:
        source.close()
    if describe_skipped(source) and warn is not None:
        warn(f"{describe_skipped(source)}; classified the others")
    return rows
