"""The feature codec: quantize, bit-pack and entropy-code a cut tensor, and undo it safely.

This is the only place in splitcomp that knows the wire format of `EncodedTensor` (described in
docs/architecture.md): codes of 1..8 bits with `value = offset[c] + code * scale[c]`, packed MSB first
into one bit stream, optionally wrapped in one zstd or LZ4 frame; or raw little-endian float16/float32.
The head encodes what its ONNX head produced; the tail decodes bytes from the network, so `decode`
validates every field (and bounds every decompression) before it trusts or allocates anything.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import lz4.frame
import numpy as np
import zstandard

from splitcomp_core.errors import CodecError

CODEC_NONE = 0
CODEC_ZSTD = 1
CODEC_LZ4 = 2
CODEC_ENTROPY = 3  # codes under a probability model the bundle holds (splitcomp_core.entropy), not a frame format
CODEC_BY_NAME = {"none": CODEC_NONE, "zstd": CODEC_ZSTD, "lz4": CODEC_LZ4}
CODEC_NAMES = tuple(CODEC_BY_NAME)  # the codecs that need nothing but the bytes: every table and schema offers them
HEAD_CODECS = (*CODEC_NAMES, "entropy")  # what the head may be set to; "entropy" also needs the bundle's model
_CODEC_NAMES = {number: name for name, number in CODEC_BY_NAME.items()}
_WIRE_CODEC_NAMES = {**_CODEC_NAMES, CODEC_ENTROPY: "entropy"}

CODE_BITS = tuple(range(1, 9))  # quantized widths
RAW_BITS = (16, 32)  # raw float16/float32 pass-through
_RAW_DTYPES: dict[int, np.dtype] = {16: np.dtype("<f2"), 32: np.dtype("<f4")}
DEFAULT_MAX_ELEMENTS = 64 * 1024 * 1024

# Level 1: on bit-packed post-ReLU codes it is both faster and smaller than levels 3 and 6
# (measured on a 1x64x56x56 4-bit tensor: 0.18 ms / 58.6 kB vs 0.42 ms / 60.9 kB at level 3).
ZSTD_LEVEL = 1

# zstd contexts are not thread-safe but are costly to create, so each thread keeps its own.
_local = threading.local()


@dataclass(frozen=True, eq=False)
class QuantParams:
    """How floats map to codes: `value = offset[c] + code * scale[c]` (length 1 = whole tensor).

    `span` is `hi - lo` as float32 and is what `quantize` divides by, so that the seed's expression
    `round((clip(x, lo, hi) - lo) / (hi - lo) * (2**bits - 1))` is reproduced bit for bit (dividing by
    `scale` instead would round differently). Left out, it is derived from `scale`.
    """

    bits: int
    scale: np.ndarray
    offset: np.ndarray
    span: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_code_bits(self.bits, "bits")
        scale = _param_array(self.scale, "scale")
        offset = _param_array(self.offset, "offset")
        _check_scale_offset(scale, offset)
        if self.span is None:
            span = (scale.astype(np.float64) * _levels(self.bits)).astype(np.float32)
        else:
            span = _param_array(self.span, "span")
            if span.shape != scale.shape or np.any(span < 0):
                raise CodecError(f"span must be {scale.size} non-negative value(s) like scale, got {span.tolist()}")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "span", span)


@dataclass(frozen=True, eq=False)
class EncodedTensor:
    """One encoded cut tensor; fields mirror splitcomp_msgs/EncodedTensor one to one."""

    name: str
    shape: tuple[int, ...]
    bits: int
    scale: np.ndarray
    offset: np.ndarray
    codec: int
    packed_size: int
    data: bytes
    entropy_model: str = ""  # the digest of the probability model of CODEC_ENTROPY; "" for every other codec


def payload_bytes(tensors: Sequence[EncodedTensor]) -> int:
    """The bytes of codes a frame carries (what `feature_bytes` reports): the payload, not the message header."""
    return sum(len(t.data) for t in tensors)


def clip_params(bits: int = 4, clip_min: float = 0.0, clip_max: float = 32.0) -> QuantParams:
    """The seed's fixed clip range (0..32 at 4 bits by default) as per-tensor parameters."""
    return range_params(bits, clip_min, clip_max)


def range_params(bits: int, lo: float | np.ndarray, hi: float | np.ndarray) -> QuantParams:
    """Parameters that spread [lo, hi] over all codes; scalars = per tensor, 1-D arrays = per channel.

    A channel with lo == hi (a dead ReLU channel seen in calibration) gets scale 0: every code
    decodes to lo, which is exactly what calibration saw.
    """
    _check_code_bits(bits, "bits")
    lo64 = np.atleast_1d(np.asarray(lo, dtype=np.float64))
    hi64 = np.atleast_1d(np.asarray(hi, dtype=np.float64))
    if lo64.ndim != 1 or hi64.ndim != 1 or lo64.shape != hi64.shape or lo64.size == 0:
        raise CodecError(
            f"range lo and hi must be scalars or 1-D arrays of one length, got shapes {lo64.shape} and {hi64.shape}"
        )
    if not (np.all(np.isfinite(lo64)) and np.all(np.isfinite(hi64))):
        raise CodecError("range lo and hi must be finite numbers; recalibrate on valid frames")
    if np.any(hi64 < lo64):
        bad = int(np.flatnonzero(hi64 < lo64)[0])
        raise CodecError(f"range hi must be >= lo, but at index {bad} lo={lo64[bad]} and hi={hi64[bad]}")
    span = hi64 - lo64
    return QuantParams(
        bits=bits,
        scale=(span / _levels(bits)).astype(np.float32),
        offset=lo64.astype(np.float32),
        span=span.astype(np.float32),
    )


def quantize(x: np.ndarray, params: QuantParams) -> np.ndarray:
    """Codes (uint8, same shape as x) for float32 x; NaN maps to code 0, out-of-range values clip.

    Per-channel parameters apply along axis 1. The arithmetic is the seed's, in float32, so clip
    parameters give the seed's codes bit for bit. Clamping the scaled value (rather than x) gives the
    same codes, and fmax/fmin send NaN to 0 where np.clip would keep it (its uint8 cast is undefined).
    """
    x = np.asarray(x, dtype=np.float32)
    lo = _broadcastable(params.offset, x.shape, "quantize")
    span = params.span
    assert span is not None  # QuantParams.__post_init__ always sets it
    divisor = _broadcastable(np.where(span > 0, span, np.float32(1)), x.shape, "quantize")
    levels = np.float32(_levels(params.bits))
    t = np.subtract(x, lo)
    np.divide(t, divisor, out=t)
    np.multiply(t, levels, out=t)
    np.fmax(t, np.float32(0), out=t)
    np.fmin(t, levels, out=t)
    np.rint(t, out=t)
    return t.astype(np.uint8)


def dequantize(codes: np.ndarray, shape: tuple[int, ...], params: QuantParams) -> np.ndarray:
    """Float32 tensor of `shape` from codes: `offset[c] + code * scale[c]` computed in float32."""
    shape = tuple(int(d) for d in shape)
    codes = np.asarray(codes, dtype=np.uint8).reshape(shape)
    scale = _broadcastable(params.scale, shape, "dequantize")
    offset = _broadcastable(params.offset, shape, "dequantize")
    values = codes.astype(np.float32)
    np.multiply(values, scale, out=values)
    np.add(values, offset, out=values)
    return values


def packed_size_for(count: int, bits: int) -> int:
    """Bytes of the packed payload: ceil(count * bits / 8) (codes or raw floats alike)."""
    return (count * bits + 7) // 8


def pack_bits(codes: np.ndarray, bits: int) -> bytes:
    """Pack codes of `bits` width, MSB first, into one zero-padded bit stream (the layout of EncodedTensor.data)."""
    _check_code_bits(bits, "bits")
    flat = np.ascontiguousarray(codes, dtype=np.uint8).ravel()
    if flat.size and int(flat.max()) >> bits:
        raise CodecError(f"codes must fit in {bits} bits, got a code of {int(flat.max())}")
    if bits == 8:
        return flat.tobytes()
    if bits == 1:
        return np.packbits(flat).tobytes()
    if bits == 4:
        if flat.size % 2:
            flat = np.append(flat, np.uint8(0))
        packed = flat[0::2] << 4
        packed |= flat[1::2]
        return packed.tobytes()
    if bits == 2:
        quads = _pad_to_multiple(flat, 4).reshape(-1, 4)
        packed = quads[:, 0] << 6
        packed |= quads[:, 1] << 4
        packed |= quads[:, 2] << 2
        packed |= quads[:, 3]
        return packed.tobytes()
    # 3, 5, 6, 7 bits: eight codes fill exactly `bits` bytes, so build one 64-bit word per group,
    # one vectorized shift-or per code position (a reduce along the short axis is ~10x slower).
    groups = _pad_to_multiple(flat, 8).reshape(-1, 8)
    shifts = _group_shifts(bits)
    words = groups[:, 0].astype(np.uint64) << shifts[0]
    for position in range(1, 8):
        words |= groups[:, position].astype(np.uint64) << shifts[position]
    group_bytes = words.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - bits :]
    return group_bytes.tobytes()[: packed_size_for(flat.size, bits)]


def unpack_bits(buf: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of `pack_bits`: `count` uint8 codes from exactly ceil(count * bits / 8) bytes."""
    _check_code_bits(bits, "bits")
    expected = packed_size_for(count, bits)
    raw = np.frombuffer(buf, dtype=np.uint8)
    if raw.size != expected:
        raise CodecError(f"data holds {raw.size} packed bytes but {count} codes of {bits} bits need {expected}")
    if bits == 8:
        return raw.copy()
    if bits == 1:
        return np.unpackbits(raw, count=count)
    if bits == 4:
        codes = np.empty(raw.size * 2, dtype=np.uint8)
        np.right_shift(raw, 4, out=codes[0::2])
        np.bitwise_and(raw, 0x0F, out=codes[1::2])
        return codes[:count]
    if bits == 2:
        codes = np.empty(raw.size * 4, dtype=np.uint8)
        for position, shift in enumerate((6, 4, 2, 0)):
            np.right_shift(raw, shift, out=codes[position::4])
        codes &= 3
        return codes[:count]
    groups = -(-count // 8)
    padded = np.zeros((groups, 8), dtype=np.uint8)
    padded[:, 8 - bits :] = _pad_to_multiple(raw, bits).reshape(groups, bits)
    words = padded.view(">u8").ravel()
    shifts = _group_shifts(bits)
    mask = np.uint64((1 << bits) - 1)
    codes = np.empty((groups, 8), dtype=np.uint8)
    for position in range(8):
        codes[:, position] = (words >> shifts[position]) & mask
    return codes.ravel()[:count]


def compress(buf: bytes, codec: int) -> bytes:
    """Wrap the packed payload in one zstd or LZ4 frame (with checksum), or return it unchanged."""
    codec = _check_codec(codec)
    if codec == CODEC_NONE:
        return bytes(buf)
    if codec == CODEC_ZSTD:
        return _zstd_compressor().compress(buf)
    return lz4.frame.compress(buf, content_checksum=True)


def decompress(buf: bytes, codec: int, max_size: int) -> bytes:
    """Undo `compress`, never producing (or allocating) more than `max_size` bytes.

    Raises CodecError for an unknown codec, a corrupt, truncated or over-long frame, or trailing data.
    """
    codec = _check_codec(codec)
    name = _CODEC_NAMES[codec]
    if codec == CODEC_NONE:
        if len(buf) > max_size:
            raise CodecError(f"data holds {len(buf)} bytes, more than the limit of {max_size}")
        return bytes(buf)
    try:
        if codec == CODEC_ZSTD:
            return _zstd_decompress(buf, max_size)
        return _lz4_decompress(buf, max_size)
    except (zstandard.ZstdError, RuntimeError) as exc:
        raise CodecError(f"data is not a valid {name} frame: {exc}") from exc


def encode(
    name: str,
    x: np.ndarray,
    params: QuantParams | None,
    codec: int,
    raw_bits: int = 32,
) -> EncodedTensor:
    """Encode one cut tensor; `params=None` sends raw little-endian floats of `raw_bits` (16 or 32)."""
    codec = _check_codec(codec)
    x = np.asarray(x, dtype=np.float32)
    shape = _check_shape(x.shape, DEFAULT_MAX_ELEMENTS)
    if params is None:
        if raw_bits not in RAW_BITS:
            raise CodecError(f"raw_bits must be 16 or 32 for raw pass-through, got {raw_bits}")
        bits = raw_bits
        payload = x.astype(_RAW_DTYPES[raw_bits]).tobytes()
        scale = offset = np.empty(0, dtype=np.float32)
    else:
        bits = params.bits
        payload = pack_bits(quantize(x, params), bits)
        scale, offset = params.scale, params.offset
    return EncodedTensor(
        name=name,
        shape=shape,
        bits=bits,
        scale=scale,
        offset=offset,
        codec=codec,
        packed_size=len(payload),
        data=compress(payload, codec),
    )


def decode(t: EncodedTensor, max_elements: int = DEFAULT_MAX_ELEMENTS) -> np.ndarray:
    """Validate, then decode to a float32 tensor of `t.shape`; any inconsistency is a CodecError."""
    validate(t, max_elements)
    shape = tuple(int(d) for d in t.shape)
    bits = int(t.bits)
    if bits in RAW_BITS:
        payload = _payload(t)
        return np.frombuffer(payload, dtype=_RAW_DTYPES[bits]).astype(np.float32).reshape(shape)
    return dequantize(unpacked_codes(t, max_elements), shape, quant_params(t))


def unpacked_codes(t: EncodedTensor, max_elements: int = DEFAULT_MAX_ELEMENTS) -> np.ndarray:
    """The codes (uint8, `t.shape`) a quantized tensor of codec none, zstd or lz4 carries, after validating it."""
    validate(t, max_elements)
    if int(t.bits) in RAW_BITS:
        raise CodecError(f"bits {t.bits} are raw floats, not codes")
    shape = tuple(int(d) for d in t.shape)
    return unpack_bits(_payload(t), int(t.bits), math.prod(shape)).reshape(shape)


def quant_params(t: EncodedTensor) -> QuantParams:
    """The quantization a validated tensor of codes declares (its bits, scale and offset)."""
    return QuantParams(bits=int(t.bits), scale=t.scale, offset=t.offset)


def _payload(t: EncodedTensor) -> bytes:
    if t.codec == CODEC_ENTROPY:
        raise CodecError("codec entropy needs the bundle's entropy model: decode it with splitcomp_core.interframe")
    payload = decompress(t.data, int(t.codec), int(t.packed_size))
    if len(payload) != t.packed_size:
        raise CodecError(f"data decompressed to {len(payload)} bytes but packed_size says {t.packed_size}")
    return payload


def validate(t: EncodedTensor, max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
    """Check every header field of an EncodedTensor against the others; CodecError names the field.

    Frame contents are checked by `decode` (bounded by packed_size), not here.
    """
    bits = t.bits
    if not _is_int(bits) or not (1 <= bits <= 8 or bits in RAW_BITS):
        raise CodecError(f"bits must be 1..8 (codes), 16 or 32 (raw floats), got {bits!r}")
    _check_codec(t.codec, _WIRE_CODEC_NAMES)
    if t.codec == CODEC_ENTROPY and bits in RAW_BITS:
        raise CodecError(f"codec entropy codes quantized codes, not raw {bits}-bit floats")
    shape = _check_shape(t.shape, max_elements)
    count = math.prod(shape)
    scale = np.asarray(t.scale, dtype=np.float32)
    offset = np.asarray(t.offset, dtype=np.float32)
    if bits in RAW_BITS:
        if scale.size or offset.size:
            raise CodecError(
                f"scale and offset must be empty for raw {bits}-bit floats, got lengths {scale.size} and {offset.size}"
            )
    else:
        _check_scale_offset(scale, offset)
        reach = np.abs(offset.astype(np.float64)) + np.abs(scale.astype(np.float64)) * _levels(bits)
        if np.any(reach > np.finfo(np.float32).max):
            raise CodecError(
                f"scale and offset reach beyond float32 at {bits} bits (max |offset| + {_levels(bits)}*|scale| "
                f"= {reach.max():.3g}); the sender's range is broken"
            )
        if scale.size > 1:
            if len(shape) < 2:
                raise CodecError(
                    f"shape {list(shape)} has no channel axis, but per-channel scale has "
                    f"{scale.size} values; send one scale/offset for a tensor of fewer than 2 dims"
                )
            if scale.size != shape[1]:
                raise CodecError(f"scale has {scale.size} values: it must have 1 or shape[1]={shape[1]}")
    expected = packed_size_for(count, bits)
    if not _is_int(t.packed_size) or t.packed_size != expected:
        raise CodecError(
            f"packed_size is {t.packed_size!r} but shape {list(shape)} at {bits} bits packs to {expected} bytes"
        )
    data_len = memoryview(t.data).nbytes
    if t.codec == CODEC_NONE and data_len != expected:
        raise CodecError(f"data holds {data_len} bytes but codec none with packed_size {expected} needs exactly that")
    if t.codec not in (CODEC_NONE, CODEC_ENTROPY) and data_len == 0:
        raise CodecError(f"data is empty but codec {_CODEC_NAMES[t.codec]} needs a frame")


def _levels(bits: int) -> int:
    return (1 << bits) - 1


def _is_int(value: object) -> TypeGuard[int | np.integer]:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_code_bits(bits: object, field_name: str) -> None:
    if not _is_int(bits) or not 1 <= bits <= 8:
        raise CodecError(f"{field_name} must be an integer 1..8 for quantized codes, got {bits!r}")


def _check_codec(codec: object, known: dict[int, str] = _CODEC_NAMES) -> int:
    if not _is_int(codec) or int(codec) not in known:
        names = ", ".join(f"{number} ({name})" for number, name in known.items())
        raise CodecError(f"codec {codec!r} is unknown here: use {names}")
    return int(codec)


def _check_shape(shape: Iterable[Any], max_elements: int) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)
        integral = all(_is_int(d) for d in shape)
    except (TypeError, ValueError):
        raise CodecError(f"shape must be a list of non-negative integers, got {shape!r}") from None
    if not dims or not integral or any(d < 0 for d in dims):
        raise CodecError(f"shape must be a non-empty list of non-negative integers, got {shape!r}")
    count = math.prod(dims)
    if count == 0:
        raise CodecError(f"shape {list(dims)} has no elements; a cut tensor cannot be empty")
    if count > max_elements:
        raise CodecError(
            f"shape {list(dims)} has {count} elements, above the limit of {max_elements}; "
            f"raise max_elements if this tensor is expected"
        )
    return dims


def _param_array(values: object, field_name: str) -> np.ndarray:
    array = np.atleast_1d(np.asarray(values, dtype=np.float32))
    if array.ndim != 1 or array.size == 0:
        raise CodecError(f"{field_name} must be a non-empty 1-D list, got shape {array.shape}")
    return array


def _check_scale_offset(scale: np.ndarray, offset: np.ndarray) -> None:
    if scale.ndim != 1 or scale.size == 0:
        raise CodecError(f"scale must hold 1 value or one per channel, got {scale.size}")
    if offset.shape != scale.shape:
        raise CodecError(f"offset has {offset.size} values but scale has {scale.size}; they must match")
    if not np.all(np.isfinite(scale)):
        raise CodecError("scale holds a non-finite value (nan or inf); the sender's range is broken")
    if not np.all(np.isfinite(offset)):
        raise CodecError("offset holds a non-finite value (nan or inf); the sender's range is broken")


def _broadcastable(per_channel: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Reshape a length-1 or length-C parameter so it broadcasts along axis 1 of `shape`."""
    if per_channel.size == 1:
        return per_channel.reshape(())
    if len(shape) < 2 or shape[1] != per_channel.size:
        raise CodecError(
            f"cannot {what} a tensor of shape {list(shape)} with {per_channel.size} per-channel "
            f"scale values: axis 1 must have that many channels"
        )
    return per_channel.reshape((1, per_channel.size) + (1,) * (len(shape) - 2))


def _pad_to_multiple(flat: np.ndarray, multiple: int) -> np.ndarray:
    extra = -flat.size % multiple
    return np.concatenate([flat, np.zeros(extra, dtype=flat.dtype)]) if extra else flat


def _group_shifts(bits: int) -> np.ndarray:
    """Shift of each of the 8 codes in a group's 64-bit word: the first code is the highest."""
    return (bits * np.arange(7, -1, -1)).astype(np.uint64)


def _zstd_compressor() -> zstandard.ZstdCompressor:
    compressor = getattr(_local, "zstd_compressor", None)
    if compressor is None:
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
        _local.zstd_compressor = compressor
    return compressor


def _zstd_decompressor() -> zstandard.ZstdDecompressor:
    decompressor = getattr(_local, "zstd_decompressor", None)
    if decompressor is None:
        decompressor = zstandard.ZstdDecompressor()
        _local.zstd_decompressor = decompressor
    return decompressor


def _zstd_decompress(buf: bytes, max_size: int) -> bytes:
    # zstandard allocates whatever the frame header claims and ignores max_output_size then,
    # so the claim is checked first; frames without a claim are bounded by max_output_size.
    claimed = zstandard.frame_content_size(buf)
    if claimed > max_size:
        raise CodecError(f"data is a zstd frame of {claimed} bytes, more than packed_size {max_size}")
    return _zstd_decompressor().decompress(buf, max_output_size=max_size, allow_extra_data=False)


def _lz4_decompress(buf: bytes, max_size: int) -> bytes:
    claimed = lz4.frame.get_frame_info(buf)["content_size"]
    if claimed > max_size:
        raise CodecError(f"data is an lz4 frame of {claimed} bytes, more than packed_size {max_size}")
    decompressor = lz4.frame.LZ4FrameDecompressor()
    out = decompressor.decompress(buf, max_length=max_size + 1)
    if len(out) > max_size:
        raise CodecError(f"data is an lz4 frame of more than packed_size {max_size} bytes")
    if not decompressor.eof:
        raise CodecError("data is a truncated lz4 frame: it ends before the end mark")
    if decompressor.unused_data:
        raise CodecError(f"data has {len(decompressor.unused_data)} bytes after the lz4 frame; send one frame")
    return out
