"""Every malformed EncodedTensor is refused with one CodecError that names the offending field."""

import dataclasses
import tracemalloc

import lz4.frame
import numpy as np
import pytest
import zstandard

from splitcomp_core.codec import (
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_ZSTD,
    clip_params,
    decode,
    encode,
    pack_bits,
    range_params,
    validate,
)
from splitcomp_core.errors import CodecError

SHAPE = (1, 4, 3, 3)


def good(codec_number=CODEC_NONE, per_channel=False):
    """A valid 4-bit tensor to break one field at a time."""
    x = np.linspace(0, 30, num=int(np.prod(SHAPE)), dtype=np.float32).reshape(SHAPE)
    params = range_params(4, np.zeros(4), np.full(4, 30.0)) if per_channel else clip_params()
    return encode("layer1", x, params, codec_number)


def refused(t, field, max_elements=None):
    """Assert decode refuses `t` with a CodecError whose message names `field`; return the message."""
    with pytest.raises(CodecError) as info:
        decode(t) if max_elements is None else decode(t, max_elements=max_elements)
    assert field in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("bits", [0, 9, 12, 64, -4])
def test_bits_outside_1_8_16_32(bits):
    refused(dataclasses.replace(good(), bits=bits), "bits")


def test_bits_must_be_an_integer():
    refused(dataclasses.replace(good(), bits=4.0), "bits")


def test_scale_length_neither_one_nor_channels():
    t = dataclasses.replace(good(), scale=np.ones(3, np.float32), offset=np.zeros(3, np.float32))
    message = refused(t, "scale")
    assert "shape[1]=4" in message


def test_scale_and_offset_length_mismatch():
    t = dataclasses.replace(good(per_channel=True), offset=np.zeros(1, np.float32))
    refused(t, "offset")


def test_empty_scale_for_codes():
    t = dataclasses.replace(good(), scale=np.empty(0, np.float32), offset=np.empty(0, np.float32))
    refused(t, "scale")


def test_raw_floats_with_scale():
    raw = encode("raw", np.ones(SHAPE, np.float32), None, CODEC_NONE)
    refused(dataclasses.replace(raw, scale=np.ones(1, np.float32), offset=np.zeros(1, np.float32)), "scale")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scale(bad):
    refused(dataclasses.replace(good(), scale=np.array([bad], np.float32)), "scale")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_offset(bad):
    refused(dataclasses.replace(good(per_channel=True), offset=np.array([0, 0, bad, 0], np.float32)), "offset")


def test_range_beyond_float32_is_refused():
    """Finite but huge: dequantizing would overflow to inf and poison the tail's scores."""
    huge = np.array([3e38], np.float32)
    refused(dataclasses.replace(good(), scale=huge, offset=huge), "scale and offset")


def test_packed_size_inconsistent_with_shape_and_bits():
    t = good()
    refused(dataclasses.replace(t, packed_size=t.packed_size + 1), "packed_size")


def test_data_length_inconsistent_with_packed_size():
    t = good()
    refused(dataclasses.replace(t, data=t.data[:-1]), "data")
    refused(dataclasses.replace(t, data=t.data + b"\x00"), "data")


def test_shape_changed_without_data():
    t = good()
    refused(dataclasses.replace(t, shape=(1, 4, 3, 4)), "packed_size")


@pytest.mark.parametrize("codec_number", [3, 255, -1])
def test_unknown_codec(codec_number):
    refused(dataclasses.replace(good(), codec=codec_number), "codec")


@pytest.mark.parametrize("codec_number", [CODEC_ZSTD, CODEC_LZ4])
def test_corrupt_frame(codec_number):
    t = good(codec_number)
    data = bytearray(t.data)
    data[len(data) // 2] ^= 0x5A
    refused(dataclasses.replace(t, data=bytes(data)), "data")


@pytest.mark.parametrize("codec_number", [CODEC_ZSTD, CODEC_LZ4])
def test_truncated_frame(codec_number):
    t = good(codec_number)
    refused(dataclasses.replace(t, data=t.data[:-3]), "data")


@pytest.mark.parametrize("codec_number", [CODEC_ZSTD, CODEC_LZ4])
def test_bytes_after_the_frame(codec_number):
    t = good(codec_number)
    refused(dataclasses.replace(t, data=t.data + t.data), "data")


@pytest.mark.parametrize("codec_number", [CODEC_ZSTD, CODEC_LZ4])
def test_garbage_instead_of_a_frame(codec_number):
    refused(dataclasses.replace(good(codec_number), data=b"not a frame at all"), "data")


def test_empty_frame():
    refused(dataclasses.replace(good(CODEC_ZSTD), data=b""), "data")


BOMB_SIZE = 64 * 1024 * 1024
BOMBS = {
    "zstd with size": (CODEC_ZSTD, lambda b: zstandard.ZstdCompressor().compress(b)),
    "zstd without size": (CODEC_ZSTD, lambda b: zstandard.ZstdCompressor(write_content_size=False).compress(b)),
    "lz4 with size": (CODEC_LZ4, lambda b: lz4.frame.compress(b, store_size=True)),
    "lz4 without size": (CODEC_LZ4, lambda b: lz4.frame.compress(b, store_size=False)),
}


@pytest.fixture(scope="module")
def zeros_64mib():
    return bytes(BOMB_SIZE)


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_decompression_bomb_is_refused_without_allocating(kind, zeros_64mib):
    codec_number, make = BOMBS[kind]
    t = dataclasses.replace(good(codec_number), data=make(zeros_64mib))
    tracemalloc.start()
    try:
        refused(t, "packed_size" if "with size" in kind else "data")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"decoding a bomb allocated {peak} bytes"


def test_frame_smaller_than_packed_size():
    t = good(CODEC_ZSTD)
    short = zstandard.ZstdCompressor().compress(bytes(t.packed_size - 1))
    refused(dataclasses.replace(t, data=short), "packed_size")


def test_element_count_above_the_limit():
    t = good()
    refused(t, "shape", max_elements=int(np.prod(SHAPE)) - 1)
    huge = (1, 4096, 4096, 4096)
    refused(dataclasses.replace(t, shape=huge, packed_size=4096**3 * 2), "shape")


@pytest.mark.parametrize("shape", [(1, 0, 3, 3), (0,)])
def test_shape_with_zero_elements(shape):
    refused(dataclasses.replace(good(), shape=shape), "shape")


@pytest.mark.parametrize("shape", [(), (1, -4, 3, 3), (1, 4.5, 3, 3), "1x4x3x3"])
def test_shape_not_a_list_of_non_negative_integers(shape):
    refused(dataclasses.replace(good(), shape=shape), "shape")


def test_per_channel_scale_on_a_shape_without_channel_axis():
    t = good(per_channel=True)
    refused(dataclasses.replace(t, shape=(36,)), "shape")


def test_validate_accepts_message_like_containers():
    """A ROS message gives array.array / list fields; validate must take them as they come."""
    from array import array

    t = good(per_channel=True)
    ros_like = dataclasses.replace(
        t,
        shape=array("I", t.shape),
        scale=array("f", t.scale),
        offset=array("f", t.offset),
        data=array("B", t.data),
    )
    validate(ros_like)
    assert np.array_equal(decode(ros_like), decode(t))


def test_encode_rejects_per_channel_params_that_do_not_fit():
    x = np.ones((1, 3, 2, 2), np.float32)
    with pytest.raises(CodecError, match="per-channel"):
        encode("t", x, range_params(4, np.zeros(4), np.ones(4)), CODEC_NONE)


@pytest.mark.parametrize("raw_bits", [8, 64])
def test_encode_rejects_raw_bits_other_than_16_32(raw_bits):
    with pytest.raises(CodecError, match="raw_bits"):
        encode("t", np.ones((1, 2), np.float32), None, CODEC_NONE, raw_bits=raw_bits)


def test_range_params_rejects_inverted_or_non_finite_ranges():
    with pytest.raises(CodecError, match="hi must be >= lo"):
        range_params(4, np.array([0.0, 5.0]), np.array([1.0, 4.0]))
    with pytest.raises(CodecError, match="finite"):
        range_params(4, 0.0, np.inf)
    with pytest.raises(CodecError, match="bits"):
        clip_params(bits=0)


def test_pack_bits_rejects_codes_wider_than_bits():
    with pytest.raises(CodecError, match="3 bits"):
        pack_bits(np.array([1, 8], np.uint8), 3)
