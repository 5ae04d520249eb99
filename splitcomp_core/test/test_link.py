"""CutSwitcher on a simulated link: a fixed setting, auto switching both ways in time, and no flapping on noise."""

import math

import numpy as np
import pytest

from splitcomp_core.link import MESSAGE_FRAMING_BYTES, CutRange, CutSwitcher, link_bytes, rate_bounds

# A small cut for slow links and a large one for fast links, switching at 10 Mbit/s (as `plan` would write).
CUTS = [CutRange("small", 0.0, 10.0, 300), CutRange("large", 10.0, None, 40_000)]


class Link:
    """A serial link at `mbps` with a queue, 2 ms of fixed round-trip overhead and some jitter; with `burst`,
    a token bucket as tbf is: a message's first `burst` bytes go at once when the bucket is full. With `framing`,
    each message also carries that many bytes beyond its payload, and packet headers (as DDS over UDP does)."""

    def __init__(self, mbps: float, seed: int = 0, burst: int = 0, framing: float = 0.0) -> None:
        self.mbps = mbps
        self.free_at = 0.0
        self.burst = burst
        self.framing = framing
        self.rng = np.random.default_rng(seed)

    def round_trip(self, sent_s: float, payload: int) -> float:
        nbytes = link_bytes(payload, self.framing)
        start = max(sent_s, self.free_at)
        full_bucket = start - self.free_at >= 8 * self.burst / (self.mbps * 1e6)
        waiting = max(0, nbytes - self.burst) if full_bucket else nbytes
        self.free_at = start + 8 * waiting / (self.mbps * 1e6)
        return self.free_at + 0.002 + self.rng.uniform(0, 0.001)


def run(switcher, link, start_s, seconds, rate_hz=10.0, changes=()):
    """Frames at rate_hz for `seconds`; returns [(time, cut)] and answers delivered in time order."""
    bytes_of = {c.cut_id: c.bytes for c in CUTS}
    answers = []  # (arrival time, sequence)
    log = []
    sequence = getattr(switcher, "_test_sequence", 0)
    t = start_s
    changes = list(changes)
    while t < start_s + seconds:
        while changes and changes[0][0] <= t:
            link.mbps = changes.pop(0)[1]
        for arrival, seq in sorted(a for a in answers if a[0] <= t):
            switcher.answered(seq, arrival, tail_ms=0.5)
            answers.remove((arrival, seq))
        cut = switcher.next_cut(t)
        sequence += 1
        switcher.sent(sequence, t, int(bytes_of[cut]), cut)
        answers.append((link.round_trip(t, int(bytes_of[cut])) + 0.0005, sequence))
        log.append((t, cut, switcher.current))
        t += 1.0 / rate_hz
    switcher._test_sequence = sequence
    return log


def test_rate_bounds_say_what_one_transfer_can_tell():
    low, high, estimate = rate_bounds(40_000, 32.0, 2.0)  # 40 KB in 32 ms: 10 Mbit/s
    assert low == pytest.approx(9.41, abs=0.01) and high == pytest.approx(10.67, abs=0.01)
    assert estimate == pytest.approx(10.0)
    low, high, _ = rate_bounds(300, 0.1, 2.0)  # a tiny message says only "not very slow"
    assert high == math.inf and low < 1.2


def test_a_set_bandwidth_picks_the_covering_cut_from_the_next_frame():
    switcher = CutSwitcher(CUTS)
    assert switcher.set_bandwidth(5.85) == "small" and switcher.next_cut(0.0) == "small"
    assert switcher.set_bandwidth(18.88) == "large" and switcher.next_cut(0.1) == "large"
    assert switcher.set_bandwidth(10.0) == "large" and switcher.set_bandwidth(9.99) == "small"
    assert not switcher.auto and switcher.switches == 2


def test_auto_follows_the_link_both_ways_within_seconds():
    switcher = CutSwitcher(CUTS)
    assert switcher.set_bandwidth(None) == "small"
    link = Link(100.0)
    log = run(switcher, link, 0.0, 6.0)
    up = next(t for t, _cut, current in log if current == "large")
    assert up < 3.0, log[:40]
    log = run(switcher, link, 6.0, 10.0, changes=[(7.0, 1.1)])
    down = next(t for t, _cut, current in log if current == "small")
    assert 7.0 < down < 8.5
    log = run(switcher, link, 16.0, 10.0, changes=[(17.0, 100.0)])
    up_again = next(t for t, _cut, current in log if t > 17.0 and current == "large")
    assert up_again < 17.0 + 5.0
    assert switcher.switches == 3


@pytest.mark.parametrize("mbps", [1.1, 5.85, 18.88, 100.0])
def test_auto_does_not_flap_on_a_steady_link(mbps):
    switcher = CutSwitcher(CUTS)
    switcher.set_bandwidth(None)
    run(switcher, Link(mbps, seed=3), 0.0, 8.0)  # settle
    settled, switches = switcher.current, switcher.switches
    log = run(switcher, Link(mbps, seed=4), 8.0, 30.0)
    assert switcher.switches == switches and {current for _t, _c, current in log} == {settled}
    assert settled == ("small" if mbps < 10 else "large")
    probes = sum(1 for _t, cut, current in log if cut != current)
    assert probes <= 30 / 2.0 + 1  # at 1.1 and 5.85 Mbit/s the head probes at most every 2 s


def test_a_rate_inside_the_hysteresis_band_keeps_the_cut():
    switcher = CutSwitcher(CUTS)
    switcher.set_bandwidth(None)
    run(switcher, Link(100.0), 0.0, 5.0)
    assert switcher.current == "large"
    run(switcher, Link(9.0, seed=1), 5.0, 20.0)  # below 10 but within 1.25x: not clearly a small-cut link
    assert switcher.current == "large"


def test_a_collapsed_link_is_noticed_by_the_frames_that_do_not_come_back():
    switcher = CutSwitcher(CUTS)
    switcher.set_bandwidth(None)
    run(switcher, Link(100.0), 0.0, 5.0)
    assert switcher.current == "large"
    for i in range(5):  # the link stops: nothing is answered any more
        switcher.sent(10_000 + i, 5.0 + 0.1 * i, 40_000, "large")
        switcher.next_cut(5.05 + 0.1 * i)
    assert switcher.current == "small"


def test_on_a_token_bucket_link_small_messages_say_nothing_and_probes_tell_the_rate():
    """The test bed's tbf lets 1600 bytes through at once: a 300-byte message crosses in no time even at 1.1 Mbit/s."""
    cuts = [CutRange("small", 0.0, 10.0, 300), CutRange("large", 10.0, None, 40_000)]
    switcher = CutSwitcher(cuts, burst_bytes=1600)
    switcher.set_bandwidth(None)
    link = Link(1.1, burst=1600)
    log = run(switcher, link, 0.0, 20.0)
    assert {current for _t, _c, current in log} == {"small"} and switcher.switches == 0
    assert switcher.last_estimate == pytest.approx(1.1, rel=0.3)  # what the probes measured
    log = run(switcher, link, 20.0, 10.0, changes=[(21.0, 100.0)])
    assert next(t for t, _c, current in log if current == "large") < 21.0 + 5.0


@pytest.mark.parametrize(("framing", "low", "high"), [(MESSAGE_FRAMING_BYTES, 0.9, 1.2), (0.0, 0.3, 0.6)])
def test_the_rate_is_the_bytes_that_crossed_over_their_time(framing, low, high):
    """At 1.1 Mbit/s a 300-byte payload is 612 bytes on the link: counting the payload alone halves the estimate."""
    switcher = CutSwitcher(CUTS, framing_bytes=framing)
    switcher.set_bandwidth(1.1)  # every frame at the small cut
    link = Link(1.1, seed=5, framing=MESSAGE_FRAMING_BYTES)  # what DDS over UDP puts on a real link
    estimates = []
    for sequence in range(1, 21):
        sent_s = 0.1 * sequence
        switcher.sent(sequence, sent_s, 300, "small")
        observation = switcher.answered(sequence, link.round_trip(sent_s, 300) + 0.0005, tail_ms=0.5)
        assert observation is not None
        estimates.append(observation.estimate_mbps)
    assert low < float(np.median(estimates)) < high, estimates
