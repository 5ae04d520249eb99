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
    batch = batcher.take(4)
    assert robots_of(batch) == ["a", "b", "c", "a"]
    batcher.done(batch)
    # The next batch starts at b: no robot always goes first, and each pass takes one frame per robot.
    batch = batcher.take(4)
    assert robots_of(batch) == ["b", "c", "a", "b"]
    batcher.done(batch)
    batch = batcher.take(4)
    assert robots_of(batch) == ["c", "a", "b", "c"]
    batcher.done(batch)
    assert batcher.take(4) == []


def test_a_batch_holds_one_cut_and_the_other_waits():
    batcher = FairBatcher(["a", "b", "c"], depth=2)
    batcher.put("a", "feat", 1)
    batcher.put("b", "pooled", 2)
    batcher.put("c", "feat", 3)
    first = batcher.take(8)
    assert [p.item for p in first] == [1, 3] and {p.group for p in first} == {"feat"}
    assert [p.item for p in batcher.take(8)] == [2]


class Clock:
    """A clock the test moves: the batcher's decisions, not the wall time, are what the tests assert."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def at_rate(batcher, clock, offsets, rate_hz=10.0, frames=3):
    """Each robot sends `frames` frames at `rate_hz`, robot r `offsets[r]` seconds into each period."""
    start = clock.now
    for n in range(frames):
        for robot, offset in sorted(offsets.items(), key=lambda kv: kv[1]):
            clock.now = start + n / rate_hz + offset
            batch = batcher.take(8)
            batcher.done(batch)
            batcher.put(robot, "", f"{robot}{n}")


def a_frame_before_b(clock):
    """Robots a and b at 10 Hz, b 2 ms after a; a's next frame is queued, b's is due 2 ms later."""
    batcher = FairBatcher(["a", "b"], clock=clock)
    at_rate(batcher, clock, {"a": 0.0, "b": 0.002})
    batcher.done(batcher.take(8))
    clock.now += 0.098
    batcher.put("a", "", "a3")
    return batcher


def test_a_lone_robot_never_waits_for_a_batch():
    clock = Clock()
    batcher = FairBatcher(["a"], clock=clock)
    for n in range(5):
        clock.now += 0.1
        batcher.put("a", "", n)
        assert batcher.wait_left(max_batch=8, wait_s=0.005) == 0.0
        assert batcher.wait_left(max_batch=8, wait_s=10.0) == 0.0  # however long it may wait: nothing else comes
        batcher.done(batcher.take(8))


def test_a_batch_waits_only_while_another_robots_frame_is_due():
    clock = Clock()
    batcher = FairBatcher(["a", "b", "c"], clock=clock)
    at_rate(batcher, clock, {"a": 0.0, "b": 0.002, "c": 0.050})
    batcher.done(batcher.take(8))
    clock.now += 0.1 - 0.050  # a's next frame, 0.1 s after its last
    batcher.put("a", "", "a3")
    # b is due 2 ms from now, inside the 5 ms wait; c is 50 ms away and does not count.
    assert batcher.wait_left(max_batch=8, wait_s=0.005) == pytest.approx(0.005)
    clock.now += 0.001
    assert batcher.wait_left(max_batch=8, wait_s=0.005) == pytest.approx(0.004)
    clock.now += 0.001
    batcher.put("b", "", "b3")
    assert batcher.wait_left(max_batch=8, wait_s=0.005) == 0.0  # nobody else is due by the deadline: go now
    assert batcher.wait_left(max_batch=2, wait_s=1.0) == 0.0  # full
    assert robots_of(batcher.take(8)) == ["a", "b"]


def test_a_quiet_robot_is_not_waited_for():
    clock = Clock()
    batcher = a_frame_before_b(clock)
    assert batcher.wait_left(max_batch=8, wait_s=0.005) > 0  # b due in 2 ms
    clock.now += 0.5  # b has said nothing for 5 of its intervals: it has gone quiet
    batcher.put("a", "", "a4")
    assert batcher.wait_left(max_batch=8, wait_s=0.005) == 0.0


def test_a_robot_in_inference_is_not_waited_for():
    clock = Clock()
    batcher = a_frame_before_b(clock)
    held = batcher.take(8)
    assert robots_of(held) == ["a"]
    clock.now += 0.002
    batcher.put("b", "", "b3")
    # a's next frame is due 98 ms from now, inside a 200 ms wait, but it could not join: a is in inference.
    assert batcher.wait_left(max_batch=8, wait_s=0.2) == 0.0
    batcher.done(held)
    assert batcher.wait_left(max_batch=8, wait_s=0.2) == pytest.approx(0.2)


def test_next_batch_waits_for_a_due_frame_and_not_for_nothing():
    clock = Clock()
    batcher = a_frame_before_b(clock)

    def b_arrives():
        clock.now += 0.002
        batcher.put("b", "", "b3")

    threading.Timer(0.05, b_arrives).start()
    batch = batcher.next_batch(max_batch=8, wait_s=60.0)  # returns only once b's frame is in: it was due
    assert sorted(p.item for p in batch) == ["a3", "b3"]
    batcher.done(batch)
    clock.now += 0.098
    batcher.put("a", "", "a4")
    b = threading.Timer(30.0, b_arrives)  # would end a wait that should not happen; the clock says b is not due
    clock.now += 0.5
    batcher.put("a", "", "a5")
    b.start()
    try:
        assert [p.item for p in batcher.next_batch(max_batch=8, wait_s=60.0)] == ["a5"]
    finally:
        b.cancel()
    batcher.close()
    assert batcher.next_batch(max_batch=2, wait_s=0.05, idle_s=5.0) == []


def idle_workers(batcher, count, wait_s=60.0):
    """`count` worker threads waiting in next_batch, and the list each one's batch goes to."""
    taken = []
    threads = [
        threading.Thread(target=lambda: taken.append(robots_of(batcher.next_batch(8, wait_s, idle_s=30.0))))
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10.0
    while batcher.idle_workers() < count and time.monotonic() < deadline:
        time.sleep(0.001)
    assert batcher.idle_workers() == count
    return threads, taken


def test_ready_frames_are_shared_among_idle_workers_not_run_as_one_batch():
    batcher = FairBatcher(["a", "b", "c"])
    threads, taken = idle_workers(batcher, 2)
    with batcher._ready:  # both frames arrive before either worker wakes
        batcher.put("a", "", 0)
        batcher.put("b", "", 1)
    for thread in threads:
        thread.join(10.0)
    assert sorted(taken) == [["a"], ["b"]]  # two batches of one, at once: not one of two while a worker idles


def test_no_worker_waits_for_a_due_frame_while_another_worker_is_idle():
    clock = Clock()
    batcher = FairBatcher(["a", "b"], clock=clock)
    at_rate(batcher, clock, {"a": 0.0, "b": 0.002})
    batcher.done(batcher.take(8))
    threads, taken = idle_workers(batcher, 2)
    clock.now += 0.098
    batcher.put("a", "", "a3")  # b's frame is due in 2 ms, and one batch of 60 s would wait for it ...
    deadline = time.monotonic() + 10.0
    while not taken and time.monotonic() < deadline:
        time.sleep(0.001)
    assert taken == [["a"]]  # ... but the other worker is idle and will take it: no wait
    batcher.close()
    for thread in threads:
        thread.join(10.0)


def test_a_robot_in_inference_is_held_back_from_every_other_batch():
    batcher = FairBatcher(["a", "b", "c"])
    for robot in "abc":
        batcher.put(robot, "", f"{robot}1")
    first = batcher.take(2)
    assert robots_of(first) == ["a", "b"] and batcher.in_inference() == {"a", "b"}
    batcher.put("a", "", "a2")
    batcher.put("a", "", "a3")  # a floods while its frame is in inference: it only replaces its own
    second = batcher.take(8)
    assert robots_of(second) == ["c"]  # a2/a3 must not overtake a1 on another worker
    assert batcher.take(8) == []
    batcher.done(first)
    assert [p.item for p in batcher.take(8)] == ["a3"]


def test_several_workers_keep_each_robots_answers_in_order_and_share_fairly():
    robots = [f"r{n}" for n in range(6)] + ["flood"]
    batcher = FairBatcher(robots)
    lock = threading.Lock()
    in_flight: set[str] = set()
    overlaps: list[str] = []
    twice: list[str] = []
    sizes: list[int] = []
    answered: dict[str, list[int]] = {r: [] for r in robots}

    def worker():
        while True:
            batch = batcher.next_batch(max_batch=3, wait_s=0.001, idle_s=0.2)
            if not batch:
                if batcher.pending() == 0 and senders_done.is_set():
                    return
                continue
            with lock:
                sizes.append(len(batch))
                twice.extend(r for r in {p.robot for p in batch} if robots_of(batch).count(r) > 1)
                overlaps.extend(p.robot for p in batch if p.robot in in_flight)
                in_flight.update(p.robot for p in batch)
            time.sleep(0.001)  # "inference": lets another worker run meanwhile
            with lock:
                for p in batch:
                    answered[p.robot].append(p.item)
                    in_flight.discard(p.robot)
            batcher.done(batch)

    def sender(robot):
        for n in range(60):
            batcher.put(robot, "", n)
            time.sleep(0.0005)

    def flood():
        for n in range(600):
            batcher.put("flood", "", n)

    senders_done = threading.Event()
    workers = [threading.Thread(target=worker) for _ in range(4)]
    senders = [threading.Thread(target=sender, args=(r,)) for r in robots[:-1]] + [threading.Thread(target=flood)]
    for t in workers + senders:
        t.start()
    for t in senders:
        t.join()
    senders_done.set()
    for t in workers:
        t.join(timeout=30)
    assert overlaps == []  # never two frames of one robot in inference at once
    assert twice == [] and max(sizes) <= 3  # the flood never took more than its one place in a batch
    for robot, seqs in answered.items():
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), robot
        assert seqs and seqs[-1] == (599 if robot == "flood" else 59), robot  # the last frame is always answered
    assert batcher.in_inference() == set()


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


def test_answers_are_the_same_with_one_or_several_threads_and_workers(tiny_batch_bundle):
    """One session run from several workers at once, and with ONNX Runtime's own thread pool, answers as one
    worker on one thread does: the same top-k, scores within 1e-4."""
    model_id = tiny_batch_bundle.manifest.model_id
    one = TailPipeline(tiny_batch_bundle, ["cpu"], top_k=5, intra_op_threads=1)
    decoded = [one.decode(model_id, t) for t in encoded_frames(tiny_batch_bundle, 12)]
    expected = [one.answer(d) for d in decoded]
    for threads in (1, 2, None):
        shared = TailPipeline(tiny_batch_bundle, ["cpu"], top_k=5, intra_op_threads=threads)
        got: dict[int, list] = {}

        def worker(n, shared=shared, got=got):
            for _ in range(5):
                got[n] = shared.answer_batch(decoded[3 * n : 3 * n + 3])

        workers = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        answers = [a for n in range(4) for a in got[n]]
        for alone, many in zip(expected, answers, strict=True):
            assert not isinstance(many, FeaturesRejected)
            assert [c for c, _, _ in many.results] == [c for c, _, _ in alone.results], threads
            np.testing.assert_allclose([s for *_, s in many.results], [s for *_, s in alone.results], atol=1e-4)
