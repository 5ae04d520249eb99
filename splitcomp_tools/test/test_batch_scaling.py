"""The tail's batch scaling on real photos: one row per batch size, batched answers equal batch-1 answers."""

from __future__ import annotations

import pytest

from splitcomp_tools.cli import UsageError
from splitcomp_tools.run.batch_scaling import tail_batch_scaling


def test_a_dynamic_batch_tail_is_measured_at_every_batch_size(tiny_batch_bundle):
    rows = tail_batch_scaling(tiny_batch_bundle.path, batches=(1, 2, 4), frames="photos:test", count=6, repeats=3)
    assert [r["batch"] for r in rows] == [1, 2, 4]
    for r in rows:
        assert r["repeats"] == 3 and r["same_top1"] is True
        assert 0 < r["ms_per_frame"] <= r["wall_ms_per_frame"]
        assert r["ms_per_batch"] == pytest.approx(r["ms_per_frame"] * r["batch"])
        assert r["frames_per_s"] == pytest.approx(1e3 / r["ms_per_frame"])


def test_a_static_batch_tail_runs_batch_1_and_refuses_more_with_the_fix(tiny_bundle):
    (row,) = tail_batch_scaling(tiny_bundle.path, batches=(1,), frames="photos:test", count=2, repeats=2)
    assert row["batch"] == 1 and row["same_top1"] is True
    with pytest.raises(UsageError, match=r"batch of 1 only.*--dynamic-batch"):
        tail_batch_scaling(tiny_bundle.path, batches=(1, 2), frames="photos:test", count=2, repeats=2)
    with pytest.raises(UsageError, match="batch sizes"):
        tail_batch_scaling(tiny_bundle.path, batches=(0,), repeats=2)
