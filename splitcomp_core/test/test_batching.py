"""Fair batches across robots (FairBatcher) and batched tail runs that answer as one frame at a time does."""

import threading
import time

import numpy as np
import pytest

from splitcomp_core.batching import BatchHistogram, FairBatcher
from splitcomp_core.head import HeadPipeline
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import FeaturesRejected, TailPipeline

RNG = np.random.default_rng(19)


def robots_of(batch):
    return [p.robot for p in batch]


def test_a_flooding_robot_only_replaces_its_own_frames():
    batcher = FairBatcher(["a", "b", "c"])
    assert batcher.put("b", "", "b1") is None
    for n in range(50):
        stale = batcher.put("a", "", f"a{n}")
        assert stale is None or stale.robot == "a"
    batch = batcher.take(8)
    assert sorted(p.item for p in batch) == ["a49", "b1"]


def test_batches_go_round_robin_and_start_one_robot_further_each_time():
    batcher = FairBatcher(["a", "b", "c"], depth=4)
    for n in range(4):
        for robot in "abc":
            batcher.put(robot, "", f"{robot}{n}")
    assert robots_of(batcher.take(4)) == ["a", "b", "c", "a"]
    # The next batch starts at b: no robot always goes first, and each pass takes one frame per robot.
    assert robots_of(batcher.take(4)) == ["b", "c", "a", "b"]
    assert robots_of(batcher.take(4)) == ["c", "a", "b", "c"]
    assert batcher.take(4) == []


def test_a_batch_holds_one_cut_and_the_other_waits():
    batcher = FairBatcher(["a", "b", "c"], depth=2)
    batcher.put("a", "feat", 1)
    batcher.put("b", "pooled", 2)
    batcher.put("c", "feat", 3)
    first = batcher.take(8)
    assert [p.item for p in first] == [1, 3] and {p.group for p in first} == {"feat"}
    assert [p.item for p in batcher.take(8)] == [2]


def test_next_batch_waits_for_more_frames_up_to_the_wait():
    batcher = FairBatcher(["a", "b"])
    batcher.put("a", "", 1)
    threading.Timer(0.05, lambda: batcher.put("b", "", 2)).start()
    batch = batcher.next_batch(max_batch=2, wait_s=2.0)
    assert sorted(p.item for p in batch) == [1, 2]
    batcher.put("a", "", 3)
    t0 = time.monotonic()
    assert [p.item for p in batcher.next_batch(max_batch=2, wait_s=0.05)] == [3]
    assert time.monotonic() - t0 < 1.0
    batcher.close()
    assert batcher.next_batch(max_batch=2, wait_s=0.05, idle_s=5.0) == []


def test_robots_must_be_distinct():
    with pytest.raises(ValueError, match="distinct"):
        FairBatcher(["a", "a"])


def test_histogram_counts_batch_sizes_and_shares():
    histogram = BatchHistogram()
    histogram.add(["a", "b"])
    histogram.add(["a"])
    assert histogram.text() == "1:1 2:1"
    assert histogram.share("a") == pytest.approx(2 / 3)


def encoded_frames(bundle, count, bits=8):
    head = HeadPipeline(bundle, EncoderConfig(bits=bits, mode="per_channel"), providers=["cpu"])
    return [head(RNG.integers(0, 256, (24, 20, 3), dtype=np.uint8), "rgb8").tensors for _ in range(count)]


@pytest.mark.parametrize("bits", [8, 32])
def test_batched_answers_match_each_frame_alone(tiny_batch_bundle, bits):
    tail = TailPipeline(tiny_batch_bundle, ["cpu"], top_k=5)
    assert tail.batches
    model_id = tiny_batch_bundle.manifest.model_id
    decoded = [tail.decode(model_id, t) for t in encoded_frames(tiny_batch_bundle, 7, bits)]
    alone = [tail.answer(d) for d in decoded]
    batched = tail.answer_batch(decoded)
    for one, many in zip(alone, batched):
        assert not isinstance(many, FeaturesRejected)
        assert [c for c, _, _ in many.results] == [c for c, _, _ in one.results]
        np.testing.assert_allclose([s for *_, s in many.results], [s for *_, s in one.results], atol=1e-4)


class CountingSession:
    """A session that records the batch sizes it was given (ONNX Runtime underneath)."""

    def __init__(self, inner):
        self.inner, self.provider, self.sizes = inner, "counting", []

    def run(self, feeds):
        self.sizes.append(next(iter(feeds.values())).shape[0])
        return self.inner.run(feeds)


def test_a_static_batch_tail_runs_one_frame_at_a_time(tiny_bundle, tiny_batch_bundle):
    static = TailPipeline(tiny_bundle, ["cpu"])
    session = CountingSession(static.session)
    tail = TailPipeline(tiny_bundle, ["cpu"], session=session)
    assert not tail.batches and tail.session is session
    model_id = tiny_bundle.manifest.model_id
    decoded = [tail.decode(model_id, t) for t in encoded_frames(tiny_bundle, 3)]
    assert all(not isinstance(r, FeaturesRejected) for r in tail.answer_batch(decoded))
    assert session.sizes == [1, 1, 1]
    dynamic = CountingSession(TailPipeline(tiny_batch_bundle, ["cpu"]).session)
    batching = TailPipeline(tiny_batch_bundle, ["cpu"], session=dynamic)
    batching.answer_batch(decoded)
    assert dynamic.sizes == [3]


def test_a_frame_with_non_finite_scores_rejects_only_itself(tiny_batch_bundle):
    tail = TailPipeline(tiny_batch_bundle, ["cpu"])
    model_id = tiny_batch_bundle.manifest.model_id
    decoded = [tail.decode(model_id, t) for t in encoded_frames(tiny_batch_bundle, 3, bits=32)]
    decoded[1].feeds["feat"] = np.full_like(decoded[1].feeds["feat"], 3e38)
    results = tail.answer_batch(decoded)
    assert isinstance(results[1], FeaturesRejected) and results[1].reason == "non_finite"
    assert not isinstance(results[0], FeaturesRejected) and not isinstance(results[2], FeaturesRejected)
