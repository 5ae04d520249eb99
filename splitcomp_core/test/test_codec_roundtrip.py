"""Round trips, the wire format's byte layout, and bit-exact compatibility with the seed's quantizer."""

from concurrent.futures import ThreadPoolExecutor

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitcomp_core.codec import (
    CODEC_BY_NAME,
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_ZSTD,
    EncodedTensor,
    clip_params,
    decode,
    decompress,
    dequantize,
    encode,
    pack_bits,
    quantize,
    range_params,
    unpack_bits,
)

ALL_CODECS = sorted(CODEC_BY_NAME.values())
FAST = settings(max_examples=60, deadline=None)


def seed_codes(x: np.ndarray, clip_min: float, clip_max: float, bits: int) -> np.ndarray:
    """The seed's quantizer, verbatim from its description."""
    return np.round((np.clip(x, clip_min, clip_max) - clip_min) / (clip_max - clip_min) * (2**bits - 1))


def near_boundaries(clip_min: float, clip_max: float, bits: int, ulps: int = 64) -> np.ndarray:
    """Every float32 within `ulps` steps of each rounding boundary (k + 0.5) of the clip range."""
    levels = 2**bits - 1
    centers = (clip_min + (np.arange(levels) + 0.5) * (clip_max - clip_min) / levels).astype(np.float32)
    patterns = centers.view(np.int32)[:, None] + np.arange(-ulps, ulps + 1, dtype=np.int32)
    return patterns.view(np.float32).ravel()


def bit_string_reference(codes: np.ndarray, bits: int) -> bytes:
    """Slow, obviously-correct packer for cross-checking: '0'/'1' text cut into bytes."""
    text = "".join(format(int(c), f"0{bits}b") for c in codes)
    text += "0" * (-len(text) % 8)
    return bytes(int(text[i : i + 8], 2) for i in range(0, len(text), 8))


@st.composite
def quantized_cases(draw):
    """A small float32 tensor, a range (per tensor or per channel, some channels constant), bits, codec."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    x = draw(hnp.arrays(np.float32, shape, elements=st.floats(-40, 40, width=32)))
    bits = draw(st.integers(1, 8))
    channels = shape[1] if len(shape) >= 2 and draw(st.booleans()) else 1
    lo = np.array(draw(st.lists(st.floats(-20, 5), min_size=channels, max_size=channels)))
    width = np.array(draw(st.lists(st.sampled_from([0.0, 0.25, 1.0, 7.5, 32.0]), min_size=channels, max_size=channels)))
    codec_number = draw(st.sampled_from(ALL_CODECS))
    if channels == 1:
        return x, range_params(bits, float(lo[0]), float(lo[0] + width[0])), codec_number
    return x, range_params(bits, lo, lo + width), codec_number


@FAST
@given(quantized_cases())
def test_encode_decode_keeps_codes_and_is_within_half_a_step(case):
    x, params, codec_number = case
    encoded = encode("cut", x, params, codec_number)
    codes = quantize(x, params)

    payload = decompress(encoded.data, codec_number, encoded.packed_size)
    assert np.array_equal(unpack_bits(payload, params.bits, x.size), codes.ravel())
    assert encoded.packed_size == -(-x.size * params.bits // 8)

    decoded = decode(encoded)
    assert decoded.dtype == np.float32 and decoded.shape == x.shape
    assert np.array_equal(decoded, dequantize(codes, x.shape, params))

    axis_shape = (1, params.scale.size) + (1,) * (x.ndim - 2) if params.scale.size > 1 else ()
    lo = params.offset.astype(np.float64).reshape(axis_shape)
    hi = lo + params.span.astype(np.float64).reshape(axis_shape)
    step = params.scale.astype(np.float64).reshape(axis_shape)
    clipped = np.clip(x.astype(np.float64), lo, hi)
    tolerance = step / 2 + 1e-5 * np.maximum(np.abs(lo), np.abs(hi)) + 1e-6
    assert np.all(np.abs(decoded - clipped) <= tolerance)


@FAST
@given(st.integers(1, 8), st.data())
def test_unpack_inverts_pack_and_matches_bit_string(bits, data):
    codes = data.draw(hnp.arrays(np.uint8, st.integers(0, 70), elements=st.integers(0, 2**bits - 1)))
    packed = pack_bits(codes, bits)
    assert packed == bit_string_reference(codes, bits)
    assert np.array_equal(unpack_bits(packed, bits, codes.size), codes)


@pytest.mark.parametrize(
    ("bits", "codes", "expected"),
    [
        # 4-bit [1, 15]: 0001 1111 -> 0x1F (the wire format's worked example)
        (4, [1, 15], bytes([0x1F])),
        # 3-bit [5, 3, 7]: 101 011 111 -> 10101111 1|0000000 -> 0xAF 0x80
        (3, [5, 3, 7], bytes([0xAF, 0x80])),
        # 5-bit [31, 0, 17]: 11111 00000 10001 -> 11111000 0010001|0 -> 0xF8 0x22
        (5, [31, 0, 17], bytes([0xF8, 0x22])),
        # 1-bit [1,0,1,1,0,0,0,1, 1]: 10110001 1|0000000 -> 0xB1 0x80
        (1, [1, 0, 1, 1, 0, 0, 0, 1, 1], bytes([0xB1, 0x80])),
        # 2-bit [3, 0, 2, 1, 1]: 11 00 10 01 | 01 000000 -> 0xC9 0x40
        (2, [3, 0, 2, 1, 1], bytes([0xC9, 0x40])),
        # 6-bit [63, 1]: 111111 000001 -> 11111100 0001|0000 -> 0xFC 0x10
        (6, [63, 1], bytes([0xFC, 0x10])),
        # 7-bit [64, 1]: 1000000 0000001 -> 10000000 000001|00 -> 0x80 0x04
        (7, [64, 1], bytes([0x80, 0x04])),
        # 8-bit: one code per byte
        (8, [0xAB, 0x01], bytes([0xAB, 0x01])),
    ],
)
def test_pinned_byte_layout(bits, codes, expected):
    codes = np.array(codes, dtype=np.uint8)
    assert pack_bits(codes, bits) == expected
    assert np.array_equal(unpack_bits(expected, bits, codes.size), codes)
    message = EncodedTensor(
        name="",
        shape=(codes.size,),
        bits=bits,
        scale=np.array([0.5], np.float32),
        offset=np.array([-1.0], np.float32),
        codec=CODEC_NONE,
        packed_size=len(expected),
        data=expected,
    )
    assert np.array_equal(decode(message), -1.0 + codes * np.float32(0.5))


@pytest.mark.parametrize(
    ("clip_min", "clip_max", "bits"),
    [(0.0, 32.0, 4), (0.0, 32.0, 1), (0.0, 32.0, 3), (0.0, 32.0, 8), (-1.3, 7.9, 5), (0.1, 6.0, 7)],
)
def test_clip_codes_equal_the_seed_expression_bit_for_bit(clip_min, clip_max, bits):
    rng = np.random.default_rng(bits)
    boundaries = near_boundaries(clip_min, clip_max, bits)
    x = np.concatenate(
        [
            boundaries,
            rng.uniform(clip_min - 5, clip_max + 5, 20000).astype(np.float32),
            np.array([clip_min, clip_max, -np.inf, np.inf, 1e30, -1e30], dtype=np.float32),
        ]
    )
    scaled = (np.clip(boundaries, clip_min, clip_max) - clip_min) / (clip_max - clip_min) * (2**bits - 1)
    assert np.any(scaled == np.floor(scaled) + 0.5), "the sample must contain exact .5 ties"
    expected = seed_codes(x, clip_min, clip_max, bits).astype(np.uint8)
    assert np.array_equal(quantize(x, clip_params(bits, clip_min, clip_max)), expected)


def test_seed_defaults_are_0_to_32_at_4_bits():
    params = clip_params()
    assert params.bits == 4
    assert params.offset.tolist() == [0.0]
    assert params.scale.tolist() == [np.float32(32.0 / 15)]


@pytest.mark.filterwarnings("error")  # a NaN reaching the uint8 cast warns: its result is undefined
def test_nan_encodes_as_code_zero_and_constant_channels_decode_to_their_value():
    x = np.array([[[np.nan, 3.0]], [[2.0, 9.0]]], dtype=np.float32).transpose(1, 0, 2)  # (1, 2, 2)
    params = range_params(4, np.array([1.0, 2.0]), np.array([5.0, 2.0]))
    assert quantize(x, params)[0, 0, 0] == 0
    decoded = decode(encode("t", x, params, CODEC_NONE))
    assert decoded[0, 0, 0] == 1.0
    assert np.array_equal(decoded[0, 1], [2.0, 2.0])


@pytest.mark.parametrize("codec_number", ALL_CODECS)
def test_raw_float32_round_trip_is_exact_and_little_endian(codec_number):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 3, 4, 5)) * 1e3).astype(np.float32)
    x.flat[:4] = [np.inf, -np.inf, -0.0, np.finfo(np.float32).tiny]
    encoded = encode("raw", x, None, codec_number, raw_bits=32)
    assert (encoded.bits, encoded.packed_size, encoded.scale.size) == (32, x.size * 4, 0)
    assert decompress(encoded.data, codec_number, encoded.packed_size) == x.astype("<f4").tobytes()
    decoded = decode(encoded)
    assert decoded.tobytes() == x.tobytes()


@pytest.mark.parametrize("codec_number", ALL_CODECS)
def test_raw_float16_round_trip_is_exact_for_half_values(codec_number):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 3, 3)).astype(np.float16).astype(np.float32)
    encoded = encode("raw16", x, None, codec_number, raw_bits=16)
    assert (encoded.bits, encoded.packed_size) == (16, x.size * 2)
    assert decompress(encoded.data, codec_number, encoded.packed_size) == x.astype("<f2").tobytes()
    assert np.array_equal(decode(encoded), x)


def test_empty_name_is_fine():
    x = np.array([[0.0, 1.0, 2.0]], dtype=np.float32)
    encoded = encode("", x, range_params(8, 0.0, 2.0), CODEC_LZ4)
    assert encoded.name == ""
    assert np.allclose(decode(encoded), x, atol=1 / 255)


def test_shared_zstd_contexts_are_safe_across_threads():
    rng = np.random.default_rng(3)
    tensors = [np.maximum(rng.normal(0, 8, (1, 8, 16, 16)), 0).astype(np.float32) for _ in range(16)]
    params = clip_params()

    def round_trip(x):
        return decode(encode("t", x, params, CODEC_ZSTD))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(round_trip, tensors * 4))
    for x, decoded in zip(tensors * 4, results):
        assert np.array_equal(decoded, dequantize(quantize(x, params), x.shape, params))
