"""The agreement statistics (model/agreement.py): Wilson intervals, confident frames, top-5 overlap, the rule."""

import numpy as np
import pytest

from splitcomp_tools.model.agreement import (
    Agreement,
    Floor,
    check_enough_frames,
    frames_needed,
    measure,
    meets,
    top_k_overlap,
    unsupported,
    wilson_interval,
)


def test_wilson_lower_bound_without_disagreement_is_n_over_n_plus_z_squared():
    for n in (10, 381, 1000):
        assert wilson_interval(n, n)[0] == pytest.approx(n / (n + 1.959963984540054**2))
    low, high = wilson_interval(45, 50)
    assert low == pytest.approx(0.7864, abs=1e-3) and high == pytest.approx(0.9565, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_a_099_target_needs_381_frames():
    assert frames_needed(0.99) == 381
    assert wilson_interval(381, 381)[0] >= 0.99 > wilson_interval(380, 380)[0]


def test_confident_frames_and_top5_overlap():
    reference = np.array([[0.9, 0.05, 0.02, 0.01, 0.01, 0.01], [0.3, 0.25, 0.2, 0.1, 0.1, 0.05]])
    flipped = reference[:, [1, 0, 2, 3, 4, 5]]
    result = measure(reference, flipped)
    assert (result.agree, result.frames, result.confident_agree, result.confident_frames) == (0, 2, 0, 1)
    assert top_k_overlap(reference, flipped).tolist() == [1.0, 1.0]
    assert top_k_overlap(reference, reference[:, ::-1]).tolist() == [0.8, 0.8]


def test_the_rule_needs_the_lower_bound_and_jpeg_parity():
    jpeg = Floor(Agreement(90, 100, 50, 50, 0.9))
    assert meets(Agreement(95, 100, 400, 400, 0.9), 1000.0, jpeg, 0.99)
    assert not meets(Agreement(95, 100, 100, 100, 0.9), 1000.0, jpeg, 0.99)  # too few confident frames
    assert not meets(Agreement(80, 100, 400, 400, 0.9), 1000.0, jpeg, 0.99)  # worse than JPEG on all frames


def test_an_h264_row_sending_at_least_as_many_bytes_raises_the_floor():
    floor = Floor(
        Agreement(80, 100, 50, 50, 0.9),
        ((3000.0, Agreement(96, 100, 50, 50, 0.9)), (900.0, Agreement(92, 100, 50, 50, 0.9))),
    )
    assert floor.rate(3000.0) == 0.96 and floor.rate(3000.5) == 0.8 and floor.rate(950.0) == 0.96
    assert floor.rate(500.0) == 0.96 and floor.rate(1000.0) == 0.96
    candidate = Agreement(94, 100, 400, 400, 0.9)
    assert not meets(candidate, 2000.0, floor, 0.99)  # H.264 at 3,000 B agrees more often: send that instead
    assert meets(candidate, 3500.0, floor, 0.99)  # no H.264 row sends as much: only JPEG's 0.8 is the floor


def test_unsupported_names_the_frames_a_target_needs():
    assert unsupported(381, 0.99) is None
    why = unsupported(380, 0.99)
    assert why is not None and "only 380 confident frames" in why and "at least 381" in why


def test_check_enough_frames_counts_every_source_of_a_list():
    assert check_enough_frames("photos:test,video:bikes", 200, 0.99) is None  # up to 400 frames: maybe enough
    why = check_enough_frames("photos:test", 200, 0.99)
    assert why is not None and "at most 200 frames" in why and "381" in why
