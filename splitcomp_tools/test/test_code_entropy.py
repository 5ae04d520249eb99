"""code_entropy's bounds: exact on frames whose entropies are known, and in the order information theory demands."""

import numpy as np
import pytest

from splitcomp_tools.model.code_entropy import code_entropy_bytes

RNG = np.random.default_rng(3)


def frames_of(codes: np.ndarray) -> list[dict[str, np.ndarray]]:
    return [{"cut": frame} for frame in codes]


def test_a_still_scene_costs_nothing_after_its_first_frame_but_its_intra_codes():
    still = np.repeat(RNG.integers(0, 16, (1, 1, 8, 6, 6), dtype=np.uint8), 5, axis=0)  # 5 frames, 8 channels
    bounds = code_entropy_bytes(frames_of(still), 4)
    assert bounds["delta"] == 0.0 and bounds["given_reference"] == 0.0
    assert 0.0 < bounds["intra"] <= 8 * 36 * 4 / 8


def test_two_symbols_each_equally_likely_and_independent_cost_one_bit_each():
    codes = np.zeros((2, 1, 2, 4, 1), dtype=np.uint8)  # 2 channels of 4 codes: 0,0,1,1 in frame 2
    codes[1, 0, :, 2:] = 1
    codes[0, 0, :, :] = np.array([0, 1, 0, 1]).reshape(4, 1)  # the previous frame says nothing about the next
    bounds = code_entropy_bytes(frames_of(codes), 2)
    assert bounds["intra"] == pytest.approx(8 / 8)  # 8 codes, 1 bit each
    assert bounds["given_reference"] == pytest.approx(8 / 8)


def test_conditioning_on_the_reference_never_costs_more_than_either_order_0_model():
    first = RNG.integers(0, 8, (1, 4, 10, 10))
    walk = [first]
    for _ in range(6):
        walk.append(np.clip(walk[-1] + RNG.integers(-1, 2, first.shape), 0, 7))
    bounds = code_entropy_bytes(frames_of(np.stack(walk).astype(np.uint8)), 3)
    assert bounds["given_reference"] <= min(bounds["intra"], bounds["delta"]) + 1e-9
    assert bounds["delta"] < bounds["intra"]  # codes that move by at most one step


def test_one_frame_is_no_sequence():
    with pytest.raises(ValueError, match="at least 2 frames"):
        code_entropy_bytes(frames_of(np.zeros((1, 1, 2, 2), dtype=np.uint8)), 4)
