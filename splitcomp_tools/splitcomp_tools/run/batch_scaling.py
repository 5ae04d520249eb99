"""ONNX Runtime's batch scaling of a bundle's tail alone: milliseconds per frame at batch 1, 2, 4, 8 and 16.

What a batching tail can gain at most: if a batch of 8 costs as much per frame as batch 1 (a saturated CPU),
batching across robots saves only the per-call overhead; on a GPU batch 1 leaves most of it idle. Measured
through TailPipeline.answer_batch on real decoded frames (the same call the fleet tail makes), after one
warm-up run per size. A static-batch tail runs one frame at a time whatever the size (`batches` false).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from splitcomp_core.bundle import Bundle
from splitcomp_core.codec import EncodedTensor
from splitcomp_core.tail import TailPipeline

SIZES = (1, 2, 4, 8, 16)


@dataclasses.dataclass(frozen=True)
class Scaling:
    """ms per frame by batch size, and whether the tail really ran the frames as one batch."""

    ms_per_frame: dict[int, float]
    batches: bool

    def text(self) -> str:
        cells = "  ".join(f"batch {size}: {ms:.3f}" for size, ms in self.ms_per_frame.items())
        note = "" if self.batches else " (static-batch tail: one frame per run)"
        return f"tail alone, ONNX Runtime, ms per frame: {cells}{note}"


def batch_scaling(
    bundle: Bundle,
    frames: Sequence[Sequence[EncodedTensor]],
    sizes: Sequence[int] = SIZES,
    repeats: int = 20,
    intra_op_threads: int | None = None,
) -> Scaling:
    """ms per frame of the tail over batches of `sizes` frames (taken in turn from `frames`), `repeats` runs each."""
    tail = TailPipeline(bundle, ["cpu"], intra_op_threads=intra_op_threads)
    decoded = [tail.decode(bundle.manifest.model_id, tensors) for tensors in frames]
    results = {}
    for size in sizes:
        batch = [decoded[i % len(decoded)] for i in range(size)]
        tail.answer_batch(batch)
        start = time.perf_counter()
        for _ in range(repeats):
            tail.answer_batch(batch)
        results[size] = (time.perf_counter() - start) * 1e3 / (repeats * size)
    return Scaling(results, tail.batches)
