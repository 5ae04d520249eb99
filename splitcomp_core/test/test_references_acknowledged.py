"""P-frames against acknowledged references: a lost message costs only itself.

A simulated link carries each frame from the head's InterFrameHead to the tail's InterFrameTail (real ONNX
Runtime sessions of the tiny bundle) and each acknowledgement back `round_trip` frames later; it can drop,
duplicate or reorder either way, and restart the tail. Every frame the tail decodes must give the codes of
intra coding bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from drifting import video_frames

from splitcomp_core.cuts import HeadCuts, TailCuts
from splitcomp_core.keyframes import MAX_REFERENCE_FRAMES, InterFrameHead, KeyframeSchedule
from splitcomp_core.references import InterFrameTail
from splitcomp_core.sequence import sender_key
from splitcomp_core.tail import FeaturesRejected

SENDER = sender_key("splitcomp/features", "camera", "model")
FRAMES = video_frames(24, seed=9)


@dataclasses.dataclass
class Outcome:
    decoded: list[int]
    missing: list[int]
    references: dict[int, int]  # sequence -> reference_sequence as sent
    schedule: KeyframeSchedule


@pytest.fixture(scope="module")
def sides(tiny_bundle):
    heads = HeadCuts(tiny_bundle, providers=["cpu"])
    heads.configure({"codec": "zstd", "bits": 4})
    return heads, TailCuts(tiny_bundle, providers=["cpu"])


def run_link(
    sides,
    count: int = 16,
    mode: str = "acknowledged",
    dropped: frozenset[int] = frozenset(),
    acks_dropped: frozenset[int] = frozenset(),
    round_trip: int = 1,
    tail_frames: int = 8,
    duplicate_acks: bool = False,
    reverse_acks: bool = False,
    restart_before: int = 0,
    cut_of=lambda sequence: "",
) -> Outcome:
    """Frames 1..count through the link; the acknowledgement of frame t reaches the head before frame t + round_trip."""
    heads, tails = sides
    schedule = KeyframeSchedule(interval=100, timeout_s=60, mode=mode)
    coder = InterFrameHead(heads, schedule)
    receiver = InterFrameTail(tails, frames=tail_frames)
    model_ids = {b.cut_id: b.manifest.model_id for b in heads.bundle.all_cuts()} or {"": heads.bundle.manifest.model_id}
    due: dict[int, list[tuple[int, str, int]]] = {}
    outcome = Outcome([], [], {}, schedule)
    for sequence in range(1, count + 1):
        arriving = due.pop(sequence, [])
        for acked, status, window in reversed(arriving) if reverse_acks else arriving:
            for _ in range(2 if duplicate_acks else 1):
                schedule.acknowledged(acked, status, ("stamp", acked), window)
        if sequence == restart_before:
            receiver = InterFrameTail(tails, frames=tail_frames)
        cut_id = cut_of(sequence)
        result = coder(sequence, cut_id, FRAMES[sequence - 1], "rgb8", sequence * 0.04, ("stamp", sequence))
        outcome.references[sequence] = result.reference_sequence
        if sequence in dropped:
            continue
        try:
            decoded = receiver.decode(
                SENDER, sequence, result.reference_sequence, cut_id, model_ids[cut_id], result.tensors
            )
        except FeaturesRejected as exc:
            assert exc.reason == "missing_reference", exc
            outcome.missing.append(sequence)
            status = "missing_reference"
        else:
            intra = heads.pipelines[cut_id](FRAMES[sequence - 1])
            assert decoded.codes is not None and all(
                np.array_equal(decoded.codes[n], intra.codes[n]) for n in intra.codes
            )
            outcome.decoded.append(sequence)
            status = "decoded"
        if sequence not in acks_dropped:
            due.setdefault(sequence + round_trip, []).append((sequence, status, tail_frames))
    return outcome


@pytest.mark.parametrize("lost", range(2, 16))
def test_a_loss_anywhere_in_a_chain_costs_only_that_frame(sides, lost):
    outcome = run_link(sides, dropped=frozenset({lost}))
    assert outcome.decoded == [s for s in range(1, 17) if s != lost]
    assert outcome.missing == []
    assert outcome.schedule.key_frames == 1, "no key frame was needed"
    assert outcome.references[lost + 1] == (lost - 1 if lost > 1 else 0), "the frame after the loss skips it"


def test_with_previous_references_a_loss_costs_the_frames_until_the_head_hears(sides):
    outcome = run_link(sides, mode="previous", dropped=frozenset({5}), round_trip=3)
    # 6 and 7 refer to 5 and 6; the acknowledgement of 6 (missing) arrives before 9, so 8 is lost too
    assert outcome.missing == [6, 7, 8]
    assert outcome.references[9] == 0, "then a key frame"
    assert outcome.decoded == [1, 2, 3, 4, *range(9, 17)]


@pytest.mark.parametrize("lost", [frozenset({3}), frozenset({3, 4, 5}), frozenset({2, 7, 8, 12})])
def test_losses_of_acknowledgements_only_move_the_reference_back(sides, lost):
    outcome = run_link(sides, acks_dropped=lost, round_trip=2)
    assert outcome.missing == [] and len(outcome.decoded) == 16
    assert all(outcome.references[s] not in lost for s in outcome.references), "only acknowledged frames are references"
    assert outcome.schedule.key_frames == 2, "frames 1 and 2, sent before any acknowledgement came back"


def test_reordered_and_duplicated_acknowledgements_change_nothing(sides):
    outcome = run_link(sides, round_trip=3, duplicate_acks=True, reverse_acks=True, dropped=frozenset({6}))
    assert outcome.missing == [] and 6 not in outcome.decoded and len(outcome.decoded) == 15
    # the acknowledgements of frames 1..13 (6 lost) arrive before frame 16: each once, and once more ignored
    assert outcome.schedule.acks["decoded"] == 12
    assert outcome.schedule.acks["ignored.duplicate"] == 12


def test_a_restarted_tail_costs_the_frames_in_flight_then_a_key_frame(sides):
    outcome = run_link(sides, restart_before=8, round_trip=2)
    # 8 and 9 were coded against frames the old tail held; the head hears of 8 before frame 10
    assert outcome.missing == [8, 9]
    assert outcome.references[10] == 0
    assert outcome.decoded == [*range(1, 8), *range(10, 17)]
    assert outcome.schedule.losses == 1


def test_a_cut_switch_starts_a_key_frame_of_the_new_cut(tiny_multi_cut_bundle):
    heads = HeadCuts(tiny_multi_cut_bundle, providers=["cpu"])
    heads.configure({"codec": "zstd", "bits": 4})
    tails = TailCuts(tiny_multi_cut_bundle, providers=["cpu"])
    outcome = run_link((heads, tails), count=12, cut_of=lambda s: "feat" if s < 6 or s > 9 else "pooled")
    assert outcome.missing == [] and len(outcome.decoded) == 12
    assert [s for s, r in outcome.references.items() if r == 0] == [1, 6, 10]


def test_a_tail_holding_fewer_frames_than_the_round_trip_gets_key_frames(sides):
    short = run_link(sides, round_trip=4, tail_frames=3)
    assert short.missing == [] and all(r == 0 for r in short.references.values())
    enough = run_link(sides, round_trip=4, tail_frames=4)
    assert enough.missing == []
    assert [enough.references[s] for s in range(5, 9)] == [1, 2, 3, 4], "four frames back, as far as the tail holds"


def test_acknowledgements_of_frames_never_sent_by_this_head_are_counted_and_ignored():
    schedule = KeyframeSchedule(interval=10)
    settings, codes = object(), {"t": np.zeros(1, np.uint8)}
    schedule.sent(1, "", settings, codes, 0, 0.0, stamp=(1, 0))
    assert schedule.acknowledged(1, "decoded", (9, 9), 8) == "unknown", "another head's frame 1"
    assert schedule.acknowledged(7, "decoded", (7, 0), 8) == "unknown", "never sent"
    assert schedule.acknowledged(1, "exploded", (1, 0), 8) == "status"
    assert schedule.reference(2, "", settings, 0.1)[0] == 0, "nothing acknowledged yet"
    assert schedule.acknowledged(1, "decoded", (1, 0), 8) is None
    assert schedule.acknowledged(1, "decoded", (1, 0), 8) == "duplicate"
    assert schedule.reference(2, "", settings, 0.1)[0] == 1
    assert dict(schedule.acks) == {"ignored.unknown": 2, "ignored.status": 1, "ignored.duplicate": 1, "decoded": 1}


def test_a_missing_reference_makes_the_next_frame_a_key_frame_at_once():
    schedule = KeyframeSchedule(interval=10)
    settings, codes = object(), {"t": np.zeros(1, np.uint8)}
    for sequence in (1, 2, 3):
        schedule.sent(sequence, "", settings, codes, sequence - 1, 0.0, stamp=sequence)
    schedule.acknowledged(1, "decoded", 1, 8)
    schedule.acknowledged(2, "decoded", 2, 8)
    assert schedule.reference(4, "", settings, 0.0)[0] == 2
    schedule.acknowledged(3, "missing_reference", 3, 8)
    assert schedule.reference(4, "", settings, 0.0)[0] == 0 and schedule.losses == 1


def test_acknowledgements_that_stop_altogether_end_the_chain_after_the_timeout():
    schedule = KeyframeSchedule(interval=100, timeout_s=0.5)
    settings, codes = object(), {"t": np.zeros(1, np.uint8)}
    schedule.sent(1, "", settings, codes, 0, 0.0, stamp=1)
    schedule.acknowledged(1, "decoded", 1, 8)
    schedule.sent(2, "", settings, codes, 1, 0.1, stamp=2)
    assert schedule.reference(3, "", settings, 0.5)[0] == 1
    assert schedule.reference(3, "", settings, 0.7)[0] == 0 and schedule.losses == 1


def test_the_head_holds_codes_of_recent_frames_only():
    schedule = KeyframeSchedule(interval=10_000)
    settings = object()
    for sequence in range(1, 3000):
        schedule.sent(sequence, "", settings, {"t": np.zeros(4, np.uint8)}, sequence - 1, 0.0, stamp=sequence)
    assert len(schedule._codes) == MAX_REFERENCE_FRAMES + 1
    assert schedule.acknowledged(5, "decoded", 5, 8) == "old"


def test_one_sender_cannot_push_out_another_senders_references(tiny_bundle, sides):
    heads, tails = sides
    receiver = InterFrameTail(tails, max_senders=4, frames=3)
    other = sender_key("other")
    key = heads.pipelines[""](FRAMES[0])
    model_id = tiny_bundle.manifest.model_id
    receiver.decode(other, 1, 0, "", model_id, key.tensors)
    for sequence in range(1, 200):  # a flood from one sender
        receiver.decode(SENDER, sequence, 0, "", model_id, key.tensors)
    p_frame = heads.pipelines[""](FRAMES[1], reference=key.codes)
    receiver.decode(other, 2, 1, "", model_id, p_frame.tensors)
    with pytest.raises(FeaturesRejected):
        receiver.decode(SENDER, 200, 150, "", model_id, p_frame.tensors)  # it holds its own last 3 only
    assert receiver.senders() == 2


@pytest.mark.parametrize("bad", [0, -1, MAX_REFERENCE_FRAMES + 1, True, 2.5])
def test_reference_frames_and_mode_are_checked(sides, bad):
    with pytest.raises(ValueError, match="reference_frames"):
        InterFrameTail(sides[1], frames=bad)
    with pytest.raises(ValueError, match="reference_frames"):
        KeyframeSchedule(window=bad)
    with pytest.raises(ValueError, match="reference must be"):
        KeyframeSchedule(mode="newest")
