"""The entropy codec: per-channel tables fitted on codes, rANS with constriction, and every way a stream can be wrong."""

import hashlib
import json
import math
import zlib

import numpy as np
import pytest

from splitcomp_core.entropy import (
    ENTROPY_FILE,
    PRECISION,
    EntropyModels,
    EntropyTable,
    decode_symbols,
    encode_symbols,
    fit_table,
    load_entropy_models,
    max_stream_bytes,
    write_entropy_models,
)
from splitcomp_core.errors import BundleError, CodecError

RNG = np.random.default_rng(4)
SHAPE = (1, 6, 9, 7)


def skewed_codes(bits: int, frames: int, shape=SHAPE, seed: int = 0) -> list[np.ndarray]:
    """Codes whose distribution differs per channel (a ReLU-like pile at 0 and a channel-dependent spread)."""
    rng = np.random.default_rng(seed)
    levels = (1 << bits) - 1
    spread = np.linspace(0.05, 0.6, shape[1]).reshape(1, -1, 1, 1) * levels
    out = []
    for _ in range(frames):
        x = np.maximum(rng.standard_normal(shape) * spread, 0)
        out.append(np.minimum(np.rint(x), levels).astype(np.uint8))
    return out


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("delta", [False, True])
def test_every_width_round_trips_and_beats_packing_on_skewed_codes(bits, delta):
    table = fit_table("t", bits, "per_channel", skewed_codes(bits, 20))
    assert table.rows == SHAPE[1] and table.key.shape == (SHAPE[1], 1 << bits)
    for codes in skewed_codes(bits, 3, seed=1):
        data = encode_symbols(codes, table, delta)
        assert np.array_equal(decode_symbols(data, table, delta, SHAPE), codes)
        assert len(data) <= max_stream_bytes(codes.size)
        if not delta and bits >= 2:
            assert len(data) < math.ceil(codes.size * bits / 8), "the model should beat plain packing here"


def test_frequencies_are_integers_with_a_floor_so_unseen_codes_stay_codable():
    zeros = [np.zeros(SHAPE, np.uint8)] * 5
    table = fit_table("t", 4, "clip", zeros)
    for rows in (table.key, table.delta):
        assert rows.dtype == np.uint32 and rows.min() >= 1
        assert np.all(rows.sum(axis=1) == 1 << PRECISION)
    unseen = np.full(SHAPE, 15, np.uint8)  # never seen in the fit: the least probable code everywhere
    data = encode_symbols(unseen, table, delta=False)
    assert np.array_equal(decode_symbols(data, table, False, SHAPE), unseen)
    assert len(data) <= max_stream_bytes(unseen.size), "the bound holds for the worst case too"
    assert len(data) > unseen.size  # about 16 bits per code: the price of a model that never saw them


def test_one_table_for_a_tensor_without_channels_and_for_a_batch():
    table = fit_table("v", 3, "clip", [RNG.integers(0, 8, (50,), dtype=np.uint8) for _ in range(4)])
    assert table.rows == 1
    codes = RNG.integers(0, 8, (50,), dtype=np.uint8)
    assert np.array_equal(decode_symbols(encode_symbols(codes, table, False), table, False, (50,)), codes)
    batched = fit_table("b", 2, "clip", [RNG.integers(0, 4, (3, 5, 2), dtype=np.uint8) for _ in range(4)])
    codes = RNG.integers(0, 4, (3, 5, 2), dtype=np.uint8)
    assert np.array_equal(decode_symbols(encode_symbols(codes, batched, True), batched, True, (3, 5, 2)), codes)


def test_delta_table_comes_from_consecutive_frames():
    frames = skewed_codes(4, 10)
    still = fit_table("t", 4, "clip", [frames[0]] * 10)  # a still scene: every difference is 0
    assert np.all(still.delta[:, 0] == still.delta.max(axis=1))
    moving = fit_table("t", 4, "clip", frames)
    assert moving.delta[:, 0].mean() < still.delta[:, 0].mean()
    assert still.digest != moving.digest


def test_the_same_codes_code_to_the_same_bytes_on_every_machine():
    """Golden bytes: integer tables and a pinned constriction give one stream, so head and tail agree anywhere."""
    frames = [integer_codes(4, seed) for seed in range(6)]
    table = fit_table("golden", 4, "per_channel", frames)
    data = encode_symbols(integer_codes(4, 99), table, delta=True)
    assert table.digest == "sha256:" + hashlib.sha256(_canonical(table)).hexdigest()
    assert (table.digest[:23], len(data), zlib.crc32(data)) == GOLDEN


GOLDEN = ("sha256:b65a47a5ccbf93d4", 552, 93255924)


def integer_codes(bits: int, seed: int) -> np.ndarray:
    """Skewed codes from integer arithmetic alone (no floating-point random numbers)."""
    n = math.prod(SHAPE)
    mixed = (np.arange(n, dtype=np.uint64) * np.uint64(2654435761) + np.uint64(seed * 40503)) % np.uint64(1 << 16)
    return (mixed.astype(np.int64) * mixed.astype(np.int64) >> (32 - bits)).astype(np.uint8).reshape(SHAPE)


def _canonical(table: EntropyTable) -> bytes:
    head = f"splitcomp-entropy/1\0{table.tensor}\0{table.bits}\0{table.mode}\0{table.rows}\0".encode()
    return head + table.key.astype("<u4").tobytes() + table.delta.astype("<u4").tobytes()


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d[:-4],  # a word short
        lambda d: d[:-1],  # not whole words
        lambda d: d[:4],  # only the CRC's worth
        lambda d: b"",
        lambda d: d[:-4] + b"\0\0\0\1" + d[-4:],  # an extra word
        lambda d: d[:8] + bytes([d[8] ^ 0x10]) + d[9:],  # one bit flipped
        lambda d: d[:-4] + (zlib.crc32(b"x")).to_bytes(4, "little"),  # another CRC
        lambda d: bytes(max_stream_bytes(SHAPE[1] * 63) + 4),  # longer than any stream of these codes
        lambda d: d[:-8] + b"\0\0\0\0" + d[-4:],  # ends in a zero word, which constriction refuses
    ],
)
def test_truncated_corrupt_or_overlong_streams_are_refused(spoil):
    table = fit_table("t", 4, "per_channel", skewed_codes(4, 10))
    data = encode_symbols(skewed_codes(4, 1, seed=3)[0], table, delta=False)
    with pytest.raises(CodecError, match=r"entropy stream|bytes"):
        decode_symbols(spoil(data), table, False, SHAPE)


def test_another_table_or_a_shape_it_does_not_fit_is_refused():
    frames = skewed_codes(4, 10)
    table = fit_table("t", 4, "per_channel", frames)
    other = fit_table("t", 4, "per_channel", skewed_codes(4, 10, seed=5))
    data = encode_symbols(frames[0], table, delta=False)
    with pytest.raises(CodecError):
        decode_symbols(data, other, False, SHAPE)  # garbage never comes out: the CRC refuses it
    with pytest.raises(CodecError, match="channel rows"):
        decode_symbols(data, table, False, (1, 3, 9, 14))
    with pytest.raises(CodecError, match="channel rows"):
        encode_symbols(np.zeros((1, 3, 9, 14), np.uint8), table, False)


def test_tables_refuse_frequencies_that_could_not_code_every_symbol():
    good = fit_table("t", 2, "clip", skewed_codes(2, 3))
    with pytest.raises(CodecError, match=">= 1"):
        EntropyTable("t", 2, "clip", np.array([[0, 1 << PRECISION, 0, 0]]), good.delta[:1])
    with pytest.raises(CodecError, match="rows of 4"):
        EntropyTable("t", 2, "clip", good.key[:, :3], good.delta[:, :3])
    with pytest.raises(CodecError, match="must match"):
        EntropyTable("t", 2, "clip", good.key, good.delta[:1])
    with pytest.raises(CodecError, match="fit in 2 bits"):
        fit_table("t", 2, "clip", [np.full(SHAPE, 4, np.uint8)])


def test_models_are_written_and_read_with_their_digests(tmp_path):
    tables = [fit_table("a", b, m, skewed_codes(b, 4)) for b in (2, 4) for m in ("clip", "per_channel")]
    path = write_entropy_models(tmp_path, tables)
    assert path.name == ENTROPY_FILE
    models = load_entropy_models(tmp_path)
    assert [t.digest for t in models.tables] == [t.digest for t in tables]
    assert models.for_encoding("a", 4, "clip").digest == tables[2].digest
    assert models.by_digest(tables[1].digest).mode == "per_channel"
    assert models.by_digest("sha256:" + "0" * 64) is None
    with pytest.raises(CodecError, match=r"no entropy model for 'a' at 3 bits.*2 bits clip"):
        models.for_encoding("a", 3, "clip")
    assert not load_entropy_models(tmp_path / "elsewhere")  # no file: no models, nothing refused


@pytest.mark.parametrize(
    "edit",
    [
        lambda doc: doc["tables"][0]["key"][0].__setitem__(0, doc["tables"][0]["key"][0][0] + 1),  # sum breaks
        lambda doc: doc["tables"][0].__setitem__("digest", "sha256:" + "1" * 64),
        lambda doc: (
            doc["tables"][0]["key"][0].__setitem__(0, doc["tables"][0]["key"][0][0] - 1)
            or doc["tables"][0]["key"][0].__setitem__(1, doc["tables"][0]["key"][0][1] + 1)
        ),  # same sums, edited
        lambda doc: doc.__setitem__("format", "something else"),
        lambda doc: doc.__setitem__("precision", 12),
        lambda doc: doc["tables"][0].__setitem__("bits", 9),
        lambda doc: doc["tables"].append(dict(doc["tables"][0])),  # a duplicate
    ],
)
def test_an_edited_or_foreign_model_file_is_refused_naming_it(tmp_path, edit):
    write_entropy_models(tmp_path, [fit_table("a", 2, "clip", skewed_codes(2, 4))])
    path = tmp_path / ENTROPY_FILE
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=ENTROPY_FILE):
        load_entropy_models(tmp_path)


def test_not_json_is_refused(tmp_path):
    (tmp_path / ENTROPY_FILE).write_text("{")
    with pytest.raises(BundleError, match="fit the model again"):
        load_entropy_models(tmp_path)


def test_duplicate_tables_are_not_written(tmp_path):
    table = fit_table("a", 2, "clip", skewed_codes(2, 4))
    with pytest.raises(BundleError, match="two tables"):
        write_entropy_models(tmp_path, [table, table])
    assert not (tmp_path / ENTROPY_FILE).exists()
    assert EntropyModels([table]).for_encoding("a", 2, "clip") is table
