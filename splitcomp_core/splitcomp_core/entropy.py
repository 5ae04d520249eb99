"""Entropy coding of quantized codes under a probability model that head and tail share through the bundle.

zstd over bit-packed codes finds little to squeeze in dense feature maps; a per-channel order-0 model of
the codes, measured on calibration frames, comes close to their entropy. A model is a table of integer
frequencies per channel (each row sums to 2**PRECISION and no symbol has frequency 0, so every code
stays codable however the frames drift from calibration), one table for key frames and one for the
differences a P-frame carries. Integer tables are exact on every machine, so the head and the tail
build identical coders from them; the table's digest goes into each message (`entropy_model`) and a
tail whose bundle holds another model refuses the message instead of decoding garbage.

The coder is constriction's rANS (`AnsCoder`), called once per channel with that channel's model, so a
frame costs C calls into Rust and no Python work per code. The wire format of `data` for CODEC_ENTROPY:
the coder's 32-bit words, little-endian, then the CRC-32 of the coded symbols (4 bytes, little-endian).
A decoder that runs out of words does not fail by itself (it yields zeros), so the CRC and the coder's
end state are what refuse a truncated or corrupt stream.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from splitcomp_core.errors import BundleError, CodecError
from splitcomp_core.files import atomic_write_text

try:
    import constriction
except ImportError:  # a robot without the wheel still runs every other codec
    constriction = None

ENTROPY_FILE = "entropy.json"  # beside manifest.json in a bundle (in each cut's folder of a multi-cut bundle)
FORMAT = "splitcomp-entropy/1"
PRECISION = 16  # every row of frequencies sums to 2**PRECISION: no code costs more than 16 bits
MAX_FILE_BYTES = 64 << 20
_CRC_BYTES = 4
_WORD_BYTES = 4
_STATE_WORDS = 2  # the coder's 64-bit state, flushed at the end


@dataclasses.dataclass(frozen=True, eq=False)
class EntropyTable:
    """The probability model of one cut tensor's codes at one bit width and range mode.

    `key` and `delta` hold one row per channel (axis 1 of the tensor; one row for the whole tensor when it
    has no channel axis) of 2**bits integer frequencies: `key` for a key frame's codes, `delta` for a
    P-frame's differences `(code - reference) mod 2**bits`. `digest` names the model on the wire.
    """

    tensor: str
    bits: int
    mode: str
    key: np.ndarray
    delta: np.ndarray

    def __post_init__(self) -> None:
        for name in ("key", "delta"):
            object.__setattr__(self, name, _check_rows(getattr(self, name), self.bits, name))
        if self.key.shape != self.delta.shape:
            raise CodecError(f"key has {len(self.key)} rows but delta has {len(self.delta)}; they must match")

    @functools.cached_property
    def digest(self) -> str:
        digest = hashlib.sha256(f"{FORMAT}\0{self.tensor}\0{self.bits}\0{self.mode}\0{len(self.key)}\0".encode())
        digest.update(self.key.astype("<u4").tobytes())
        digest.update(self.delta.astype("<u4").tobytes())
        return "sha256:" + digest.hexdigest()

    @property
    def rows(self) -> int:
        return len(self.key)

    def coders(self, delta: bool) -> list[Any]:
        """One constriction Categorical per row, built once (both sides build the same ones from the integers)."""
        return self._delta_models if delta else self._key_models

    @functools.cached_property
    def _key_models(self) -> list[Any]:
        return _categoricals(self.key)

    @functools.cached_property
    def _delta_models(self) -> list[Any]:
        return _categoricals(self.delta)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tensor": self.tensor,
            "bits": self.bits,
            "mode": self.mode,
            "digest": self.digest,
            "key": self.key.tolist(),
            "delta": self.delta.tolist(),
        }


class EntropyModels:
    """A bundle's entropy tables: the head finds one by (tensor, bits, mode), the tail by the digest a message names."""

    def __init__(self, tables: Iterable[EntropyTable] = (), origin: str = ENTROPY_FILE) -> None:
        self.tables = list(tables)
        self.origin = origin
        self._by_digest = {t.digest: t for t in self.tables}
        self._by_use = {(t.tensor, t.bits, t.mode): t for t in self.tables}
        if len(self._by_use) != len(self.tables):
            raise BundleError(f"{origin}: two tables for the same tensor, bits and mode; keep one of each")

    def __bool__(self) -> bool:
        return bool(self.tables)

    def for_encoding(self, tensor: str, bits: int, mode: str) -> EntropyTable:
        """The table the head codes `tensor` with at `bits` in range mode `mode`; CodecError says how to get one."""
        require_coder()
        table = self._by_use.get((tensor, bits, mode))
        if table is None:
            have = ", ".join(f"{b} bits {m}" for n, b, m in sorted(self._by_use) if n == tensor) or "none"
            raise CodecError(
                f"codec entropy: the bundle has no entropy model for '{tensor}' at {bits} bits ({mode}); it has: "
                f"{have}. Fit one on calibration frames (splitcomp_core.entropy.fit_table) into {ENTROPY_FILE}, "
                f"or use codec zstd"
            )
        return table

    def for_use(self, tensor: str, bits: int, mode: str) -> EntropyTable | None:
        """The table of `tensor` at `bits` in `mode`, if any (no coder needed: what a bundle check asks)."""
        return self._by_use.get((tensor, bits, mode))

    def by_digest(self, digest: str) -> EntropyTable | None:
        return self._by_digest.get(digest)


def require_coder() -> None:
    """Refuse the entropy codec where constriction is not installed (the other codecs need nothing more)."""
    if constriction is None:
        raise CodecError("codec entropy needs the constriction package (pip install constriction==0.5.0)")


def fit_table(tensor: str, bits: int, mode: str, frames: Sequence[np.ndarray]) -> EntropyTable:
    """Frequencies of each channel's codes over `frames` (codes of one tensor, in the order they were seen).

    Consecutive frames also give the differences a P-frame codes; frames in no particular order (photos)
    still give a usable, if wider, delta table. Every symbol keeps a frequency of at least 1.
    """
    if not frames:
        raise CodecError(f"no frames to fit an entropy model of '{tensor}' on")
    codes = np.stack([np.asarray(f, dtype=np.uint8) for f in frames])
    if codes.size and int(codes.max()) >> bits:
        raise CodecError(f"codes of '{tensor}' do not fit in {bits} bits")
    mask = np.uint8((1 << bits) - 1)
    deltas = (codes[1:] - codes[:-1]) & mask if len(codes) > 1 else codes[:0]
    return EntropyTable(
        tensor, bits, mode, _frequencies(channel_counts(codes, bits)), _frequencies(channel_counts(deltas, bits))
    )


def encode_symbols(symbols: np.ndarray, table: EntropyTable, delta: bool) -> bytes:
    """Code a tensor's symbols (uint8, its shape) with the table's per-channel models: words, then the CRC."""
    require_coder()
    by_row = _by_row(np.asarray(symbols, dtype=np.uint8), table)
    coders = table.coders(delta)
    coder = constriction.stream.stack.AnsCoder()
    for row in range(len(coders) - 1, -1, -1):  # a stack: the last row coded is the first decoded
        coder.encode_reverse(by_row[row].astype(np.int32), coders[row])
    words = np.asarray(coder.get_compressed(), dtype=np.uint32).astype("<u4").tobytes()
    return words + zlib.crc32(by_row.tobytes()).to_bytes(_CRC_BYTES, "little")


def decode_symbols(data: bytes, table: EntropyTable, delta: bool, shape: Sequence[int]) -> np.ndarray:
    """Undo `encode_symbols` for a tensor of `shape` (already bounded by the caller); CodecError if anything is off."""
    require_coder()
    shape = tuple(int(d) for d in shape)
    rows = _rows_of(shape, table)
    count = math.prod(shape)
    limit = max_stream_bytes(count)
    size = len(data)
    if size < _CRC_BYTES or size > limit or (size - _CRC_BYTES) % _WORD_BYTES:
        raise CodecError(
            f"data holds {size} bytes: an entropy stream of {count} codes is whole 32-bit words plus a 4-byte "
            f"CRC, at most {limit} bytes"
        )
    words = np.frombuffer(data, dtype="<u4", count=(size - _CRC_BYTES) // _WORD_BYTES).astype(np.uint32)
    per_row = count // rows
    out = np.empty((rows, per_row), dtype=np.uint8)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        for row, model in enumerate(table.coders(delta)):
            out[row] = coder.decode(model, per_row)
        ended = coder.is_empty()
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CodecError(f"data is not a valid entropy stream: {exc}") from exc
    crc = int.from_bytes(data[-_CRC_BYTES:], "little")
    if not ended or zlib.crc32(out.tobytes()) != crc:
        raise CodecError("data is a truncated or corrupt entropy stream (its CRC or end state does not match)")
    return _from_rows(out, shape)


def max_stream_bytes(count: int) -> int:
    """The most bytes `encode_symbols` can make of `count` codes: PRECISION bits each, the state and the CRC."""
    return ((count * PRECISION + 31) // 32 + _STATE_WORDS + 1) * _WORD_BYTES + _CRC_BYTES


def write_entropy_models(bundle_dir: str | Path, tables: Sequence[EntropyTable]) -> Path:
    """Write `tables` as the bundle's ENTROPY_FILE (atomically), beside its manifest."""
    path = Path(bundle_dir) / ENTROPY_FILE
    atomic_write_text(path, entropy_document(tables, str(path)))
    return path


def entropy_document(tables: Sequence[EntropyTable], origin: str = ENTROPY_FILE) -> str:
    """The ENTROPY_FILE text of `tables`, for a caller that writes it together with other files (calibrate)."""
    EntropyModels(tables, origin)  # refuses duplicates before anything is written
    document = {"format": FORMAT, "precision": PRECISION, "tables": [t.to_dict() for t in tables]}
    return json.dumps(document, separators=(",", ":")) + "\n"


def load_entropy_models(bundle_dir: str | Path) -> EntropyModels:
    """The bundle's entropy tables (none when it has no ENTROPY_FILE); BundleError names the file if it is off."""
    path = Path(bundle_dir) / ENTROPY_FILE
    if not path.is_file():
        return EntropyModels((), str(path))
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BundleError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not an entropy model this splitcomp wrote")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return EntropyModels(_tables_of(document, path), str(path))
    except (ValueError, TypeError, KeyError, CodecError) as exc:
        raise BundleError(f"{path}: {exc}; fit the model again") from exc


def _tables_of(document: Any, path: Path) -> list[EntropyTable]:
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} document")
    if document.get("precision") != PRECISION:
        raise ValueError(f"precision must be {PRECISION}, got {document.get('precision')!r}")
    tables = []
    for entry in document["tables"]:
        bits = entry["bits"]
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 8:
            raise ValueError(f"bits must be 1..8, got {bits!r}")
        table = EntropyTable(
            str(entry["tensor"]), bits, str(entry["mode"]), _int_rows(entry["key"]), _int_rows(entry["delta"])
        )
        if entry.get("digest") != table.digest:
            raise ValueError(f"the table of '{table.tensor}' at {bits} bits was edited (its digest does not match)")
        tables.append(table)
    return tables


def _int_rows(rows: Any) -> np.ndarray:
    array = np.asarray(rows)
    if array.ndim != 2 or array.dtype.kind not in "iu":
        raise ValueError("frequencies must be a list of rows of integers")
    return array


def _check_rows(rows: Any, bits: int, name: str) -> np.ndarray:
    symbols = 1 << bits
    array = np.asarray(rows)
    if array.ndim != 2 or array.shape[1] != symbols or len(array) == 0 or array.dtype.kind not in "iu":
        raise CodecError(f"{name} must be rows of {symbols} integer frequencies, got shape {array.shape}")
    if np.any(array < 1) or np.any(array.sum(axis=1, dtype=np.int64) != 1 << PRECISION):
        raise CodecError(f"{name}: every frequency must be >= 1 and every row must sum to 2**{PRECISION}")
    return array.astype(np.uint32)


def channel_counts(codes: np.ndarray, bits: int) -> np.ndarray:
    """(rows, 2**bits) counts of codes stacked as (frames, *shape); rows = the channel axis, or 1 without one.

    The per-channel statistics a table is fitted from (and what tools measure code entropies with)."""
    symbols = 1 << bits
    shape = codes.shape[1:]
    rows = shape[1] if len(shape) >= 2 else 1
    if codes.shape[0] == 0:
        return np.zeros((rows, symbols), dtype=np.int64)
    row_of = np.broadcast_to(_row_index(shape, rows), codes.shape)
    flat = row_of.astype(np.int64).ravel() * symbols + codes.ravel()
    return np.bincount(flat, minlength=rows * symbols).reshape(rows, symbols)


def _frequencies(counts: np.ndarray) -> np.ndarray:
    """Integer frequencies summing to 2**PRECISION, each at least 1, in proportion to `counts` (integer arithmetic)."""
    rows, symbols = counts.shape
    total = 1 << PRECISION
    seen = counts.sum(axis=1, keepdims=True)
    share = np.where(seen > 0, counts * (total - symbols) // np.maximum(seen, 1), (total - symbols) // symbols)
    freq = share + 1
    freq[np.arange(rows), np.argmax(counts, axis=1)] += total - freq.sum(axis=1)
    return freq.astype(np.uint32)


def _row_index(shape: tuple[int, ...], rows: int) -> np.ndarray:
    if rows == 1 and len(shape) < 2:
        return np.zeros(shape, dtype=np.int64)
    return np.arange(rows).reshape((1, rows) + (1,) * (len(shape) - 2))


def _rows_of(shape: tuple[int, ...], table: EntropyTable) -> int:
    rows = shape[1] if len(shape) >= 2 and table.rows > 1 else 1
    if rows != table.rows:
        raise CodecError(f"the entropy model has {table.rows} channel rows but the tensor {list(shape)} needs {rows}")
    return rows


def _by_row(symbols: np.ndarray, table: EntropyTable) -> np.ndarray:
    """(rows, n) symbols: each channel's codes in element order (batch, then position), one row per model."""
    shape = symbols.shape
    rows = _rows_of(shape, table)
    if rows == 1:
        return symbols.reshape(1, -1)
    return np.ascontiguousarray(np.moveaxis(symbols.reshape(shape[0], rows, -1), 1, 0)).reshape(rows, -1)


def _from_rows(by_row: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    rows = len(by_row)
    if rows == 1:
        return by_row.reshape(shape)
    return np.ascontiguousarray(np.moveaxis(by_row.reshape(rows, shape[0], -1), 0, 1)).reshape(shape)


def _categoricals(freq: np.ndarray) -> list[Any]:
    require_coder()
    probabilities = freq.astype(np.float64) / float(1 << PRECISION)  # exact: integers over a power of two
    return [constriction.stream.model.Categorical(row, perfect=False) for row in probabilities]
