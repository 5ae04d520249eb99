"""One cut tensor of one frame on the wire: a key frame's codes, or a P-frame's difference to a reference.

Consecutive video frames share most of their codes, so a P-frame carries `(code - reference) mod 2**bits`
for every element: mostly zeros, which zstd or the entropy model's delta table code in few bytes. The
symbols are coded exactly as a key frame's codes would be (bit-packed, then none/zstd/LZ4; or under the
bundle's entropy model), and adding the reference back modulo 2**bits gives the codes of intra coding
bit for bit, so the tail's features, and its answers, cannot change: only the bytes do.

Raw floats (bits 16 and 32) are never coded against a reference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from splitcomp_core.codec import (
    CODEC_ENTROPY,
    DEFAULT_MAX_ELEMENTS,
    RAW_BITS,
    EncodedTensor,
    QuantParams,
    compress,
    decode,
    dequantize,
    encode,
    pack_bits,
    packed_size_for,
    quant_params,
    quantize,
    unpacked_codes,
    validate,
)
from splitcomp_core.entropy import EntropyModels, EntropyTable, decode_symbols, encode_symbols
from splitcomp_core.errors import CodecError, EntropyModelError


@dataclasses.dataclass(frozen=True)
class Reference:
    """A frame both sides hold: its sequence, the model_id (cut) that made it, and each tensor's codes."""

    sequence: int
    model_id: str
    codes: Mapping[str, np.ndarray]


def encode_tensor(
    name: str,
    x: np.ndarray,
    params: QuantParams | None,
    codec: int,
    raw_bits: int = 32,
    table: EntropyTable | None = None,
    reference: np.ndarray | None = None,
) -> tuple[EncodedTensor, np.ndarray | None]:
    """Encode one tensor, intra or against `reference` codes; returns it with its codes (None for raw floats).

    `table` is the entropy model of CODEC_ENTROPY (its delta table codes a P-frame).
    """
    if params is None:
        if reference is not None:
            raise CodecError("raw floats cannot be coded against a reference")
        return encode(name, x, None, codec, raw_bits), None
    codes = quantize(x, params)
    symbols = codes if reference is None else _difference(codes, reference, params.bits)
    if codec == CODEC_ENTROPY:
        if table is None:
            raise CodecError("codec entropy needs the bundle's entropy model for this tensor")
        data, digest = encode_symbols(symbols, table, delta=reference is not None), table.digest
    else:
        data, digest = compress(pack_bits(symbols, params.bits), codec), ""
    tensor = EncodedTensor(
        name=name,
        shape=tuple(int(d) for d in codes.shape),
        bits=params.bits,
        scale=params.scale,
        offset=params.offset,
        codec=codec,
        packed_size=packed_size_for(codes.size, params.bits),
        data=data,
        entropy_model=digest,
    )
    return tensor, codes


def entropy_table(t: EncodedTensor, models: EntropyModels) -> EntropyTable | None:
    """The model a tensor names, checked against it; EntropyModelError when this bundle holds no such model."""
    digest = t.entropy_model
    if t.codec != CODEC_ENTROPY:
        if digest:
            raise EntropyModelError(f"codec {t.codec} needs no entropy model, but the message names {digest[:80]!r}")
        return None
    table = models.by_digest(digest) if digest else None
    if table is None:
        raise EntropyModelError(
            f"entropy model {digest[:80]!r} is not one of this bundle's ({len(models.tables)} held): head and tail "
            f"bundles differ, copy the head's {models.origin.rsplit('/', 1)[-1]} to the tail"
        )
    if table.tensor != t.name or table.bits != t.bits:
        raise EntropyModelError(
            f"entropy model {digest[:80]!r} is for '{table.tensor}' at {table.bits} bits, not '{t.name[:80]}' at {t.bits}"
        )
    return table


def decode_tensor(
    t: EncodedTensor,
    table: EntropyTable | None,
    reference: np.ndarray | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Float32 values of one received tensor and its codes (None for raw floats); CodecError if it is malformed.

    `table` comes from `entropy_table`; `reference` holds the codes of the frame a P-frame names.
    """
    validate(t, max_elements)
    shape = tuple(int(d) for d in t.shape)
    if t.bits in RAW_BITS:
        if reference is not None:
            raise CodecError("raw floats cannot be coded against a reference")
        return decode(t, max_elements), None
    if t.codec == CODEC_ENTROPY:
        assert table is not None  # entropy_table refused the message otherwise
        symbols = decode_symbols(t.data, table, reference is not None, shape)
    else:
        symbols = unpacked_codes(t, max_elements)
    codes = symbols if reference is None else _sum(symbols, reference, int(t.bits))
    return dequantize(codes, shape, quant_params(t)), codes


def _difference(codes: np.ndarray, reference: np.ndarray, bits: int) -> np.ndarray:
    if reference.shape != codes.shape:
        raise CodecError(f"reference codes have shape {list(reference.shape)}, these {list(codes.shape)}")
    return np.bitwise_and(codes - reference, np.uint8((1 << bits) - 1))


def _sum(symbols: np.ndarray, reference: np.ndarray, bits: int) -> np.ndarray:
    return np.bitwise_and(symbols + reference, np.uint8((1 << bits) - 1))
