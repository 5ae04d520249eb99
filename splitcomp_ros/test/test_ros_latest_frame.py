"""LatestFrameWorker: the newest item wins, waiting ones are dropped and counted, and the rate is bounded."""

import itertools
import threading
import time

import pytest

from splitcomp_ros.latest_frame import LatestFrameWorker


def test_a_busy_worker_processes_the_newest_item_and_counts_the_skipped_ones():
    started, release = threading.Event(), threading.Event()
    done, drops = [], []

    def process(item):
        started.set()
        release.wait(5)
        done.append(item)

    worker = LatestFrameWorker(process, on_drop=lambda: drops.append(1))
    worker.submit(0)
    assert started.wait(5)
    for item in range(1, 6):  # 1..4 are replaced while 0 is still being processed
        worker.submit(item)
    release.set()
    deadline = time.monotonic() + 5
    while len(done) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.close()
    assert done == [0, 5] and len(drops) == 4


def test_max_rate_bounds_how_often_items_are_processed():
    done = []
    worker = LatestFrameWorker(lambda item: done.append(time.monotonic()), max_rate_hz=20.0)
    start = time.monotonic()
    while time.monotonic() - start < 0.5:
        worker.submit("frame")
        time.sleep(0.002)
    elapsed = time.monotonic() - start
    worker.close()
    gaps = [b - a for a, b in itertools.pairwise(done)]
    assert done and len(done) <= 1 + elapsed * 20.0 + 1
    assert min(gaps) >= 0.045  # 1/20 s apart, less scheduling slack


def test_close_stops_the_thread_and_a_negative_rate_is_refused():
    worker = LatestFrameWorker(lambda item: None)
    with pytest.raises(ValueError, match="max_rate_hz"):
        worker.set_rate(-1.0)
    worker.close()
    assert not worker._thread.is_alive()
