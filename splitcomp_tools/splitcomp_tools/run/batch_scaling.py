"""The tail's batch scaling in ONNX Runtime: milliseconds per frame at batch 1, 2, 4, ... on real encoded frames.

What `bench fleet` reports before its table: whether one tail run over B frames costs less per frame than B
runs of one. Frames are real (`photos:test` by default), encoded by HeadPipeline and decoded by TailPipeline
as the nodes do; each batch is one `TailPipeline.answer_batch`, its tail run timed by the pipeline itself.
The session is created once; each batch size runs once untimed first (ONNX Runtime plans a new shape then).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence

from splitcomp_core.bundle import dynamic_batch_command, load_bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import Decoded, FeaturesRejected, TailPipeline, TailResult
from splitcomp_tools.cli import UsageError
from splitcomp_tools.frames.registry import open_source

DEFAULT_BATCHES = (1, 2, 4, 8, 16)
MAX_BATCH = 1024
MAX_REPEATS = 10_000


def tail_batch_scaling(
    bundle_path: str | os.PathLike,
    batches: Sequence[int] = DEFAULT_BATCHES,
    frames: str = "photos:test",
    count: int | None = None,
    repeats: int = 20,
    providers: Sequence[str] = ("cpu",),
    intra_op_threads: int | None = None,
) -> list[dict[str, float | int | bool]]:
    """One row per batch size: `batch`, `ms_per_frame` (median tail run / B), `ms_per_batch`, `frames_per_s`,
    `wall_ms_per_frame` (answer_batch with stacking and top-k, median / B), `repeats`, and `same_top1`
    (every frame's best class equals its batch-1 answer).

    `count` frames of `frames` (default: the largest batch) are used round-robin. A static-batch tail
    takes only batch 1; asking it for more is refused with the command that makes a dynamic-batch bundle.
    """
    bundle = load_bundle(bundle_path)
    _check(batches, repeats, count)
    head = HeadPipeline(bundle, providers=list(providers), intra_op_threads=intra_op_threads)
    tail = TailPipeline(bundle, list(providers), intra_op_threads=intra_op_threads)
    if max(batches) > 1 and not tail.batch_dynamic:
        raise UsageError(
            f"{bundle_path}: its tail takes a batch of 1 only; make a dynamic-batch bundle with "
            f"`{dynamic_batch_command(bundle)}`"
        )
    decoded = _decoded(head, tail, frames, count or max(batches))
    alone = [_answered(tail.answer_batch([d]))[0].results[0][0] for d in decoded]
    rows: list[dict[str, float | int | bool]] = []
    for batch in batches:
        groups = [[decoded[(r * batch + k) % len(decoded)] for k in range(batch)] for r in range(repeats + 1)]
        tail.answer_batch(groups[0])  # untimed: the first run at a new shape
        run_ms, wall_ms, same = [], [], True
        for r, group in enumerate(groups[1:], start=1):
            t0 = time.perf_counter()
            answers = _answered(tail.answer_batch(group))
            wall_ms.append((time.perf_counter() - t0) * 1e3 / batch)
            run_ms.append(answers[0].tail_ms)
            expected = [alone[(r * batch + k) % len(decoded)] for k in range(batch)]
            same = same and [a.results[0][0] for a in answers] == expected
        per_frame = statistics.median(run_ms)
        rows.append(
            {
                "batch": batch,
                "ms_per_frame": per_frame,
                "ms_per_batch": per_frame * batch,
                "frames_per_s": 1e3 / per_frame if per_frame > 0 else float("inf"),
                "wall_ms_per_frame": statistics.median(wall_ms),
                "repeats": repeats,
                "same_top1": same,
            }
        )
    return rows


def _check(batches: Sequence[int], repeats: int, count: int | None) -> None:
    if not batches or any(not 1 <= b <= MAX_BATCH for b in batches):
        raise UsageError(f"batch sizes must be from 1 to {MAX_BATCH}, got {list(batches)}")
    if not 1 <= repeats <= MAX_REPEATS:
        raise UsageError(f"repeats must be from 1 to {MAX_REPEATS}, got {repeats}")
    if count is not None and not 1 <= count <= MAX_BATCH:
        raise UsageError(f"the frame count must be from 1 to {MAX_BATCH}, got {count}")


def _decoded(head: HeadPipeline, tail: TailPipeline, spec: str, count: int) -> list[Decoded]:
    """`count` real frames of `spec`, encoded by the head and decoded by the tail as the nodes do."""
    source = open_source(spec)
    try:
        model_id = head.bundle.manifest.model_id
        decoded = [tail.decode(model_id, head(frame).tensors) for frame in source.frames(count)]
    finally:
        source.close()
    if not decoded:
        raise UsageError(f"{spec}: gave no frame to measure the tail on")
    return decoded


def _answered(results: Sequence[TailResult | FeaturesRejected]) -> list[TailResult]:
    """The answers of a batch; a rejected frame means the measurement measured nothing."""
    for r in results:
        if isinstance(r, FeaturesRejected):
            raise UsageError(f"the tail refused a frame of the batch ({r.reason}): {r}")
    return [r for r in results if isinstance(r, TailResult)]
