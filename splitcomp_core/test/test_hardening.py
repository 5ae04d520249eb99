"""Hostile input to the core: non-finite features, sequence gaps, decompression bombs in image headers,
decoder noise on stderr, and several files written so that all change or none does."""

import os
import resource
import stat

import cv2
import numpy as np
import pytest

from splitcomp_core.codec import CODEC_NONE, EncodedTensor, encode, range_params
from splitcomp_core.errors import ImageFormatError
from splitcomp_core.files import atomic_write_all
from splitcomp_core.head import HeadPipeline
from splitcomp_core.images import DEFAULT_MAX_IMAGE_PIXELS, compressed_size, decode_compressed, read_image
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.sequence import SequenceGaps
from splitcomp_core.tail import FeaturesRejected, TailPipeline

RNG = np.random.default_rng(3)
IMAGE = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)


def raw_tensor(values: np.ndarray, bits: int = 32) -> EncodedTensor:
    dtype = "<f4" if bits == 32 else "<f2"
    data = values.astype(dtype).tobytes()
    empty = np.empty(0, np.float32)
    return EncodedTensor("feat", values.shape, bits, empty, empty, CODEC_NONE, len(data), data)


@pytest.fixture(scope="module")
def tail(tiny_bundle):
    return TailPipeline(tiny_bundle, ["cpu"], top_k=5)


@pytest.mark.parametrize("bits", [32, 16])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_raw_features_are_rejected_before_inference(tail, tiny_bundle, bits, bad):
    values = np.ones((1, 4, 16, 16), np.float32)
    values[0, 2, 3, 4] = bad
    with pytest.raises(FeaturesRejected) as info:
        tail(tiny_bundle.manifest.model_id, [raw_tensor(values, bits)])
    assert info.value.reason == "non_finite" and "'feat'" in str(info.value)


def test_huge_finite_features_that_overflow_the_tail_are_rejected(tail, tiny_bundle):
    """3e38 is a finite float32, but the tail's sums overflow: the output check refuses NaN "probabilities"."""
    with pytest.raises(FeaturesRejected) as info:
        tail(tiny_bundle.manifest.model_id, [raw_tensor(np.full((1, 4, 16, 16), 3e38, np.float32))])
    assert info.value.reason == "non_finite" and "output" in str(info.value)


def test_codes_with_an_offset_of_3e38_are_rejected(tail, tiny_bundle):
    params = range_params(4, 3e38, 3e38)  # scale 0: every code decodes to 3e38
    with np.errstate(over="ignore"):
        tensor = encode("feat", np.zeros((1, 4, 16, 16), np.float32), params, CODEC_NONE)
    with pytest.raises(FeaturesRejected) as info:
        tail(tiny_bundle.manifest.model_id, [tensor])
    assert info.value.reason == "non_finite"


def test_valid_features_still_classify(tail, tiny_bundle):
    head = HeadPipeline(tiny_bundle, EncoderConfig(bits=4), providers=["cpu"])
    out = tail(tiny_bundle.manifest.model_id, head(IMAGE).tensors)
    assert len(out.results) == 5 and all(np.isfinite(p) for _, _, p in out.results)


def test_sequence_gaps_count_lost_messages_per_sender():
    gaps = SequenceGaps()
    assert gaps.observe("cam", "m", 1).lost == 0  # the first message of a sender says nothing
    assert gaps.observe("cam", "m", 2).lost == 0
    assert gaps.observe("cam", "m", 5).lost == 2
    assert gaps.observe("other_cam", "m", 40).lost == 0  # another sender has its own sequence
    assert gaps.observe("cam", "m", 6).lost == 0
    assert gaps.lost == 2


def test_a_restarted_head_is_a_new_stream_not_a_huge_loss():
    gaps = SequenceGaps()
    for sequence in range(1, 100_001):
        gaps.observe("cam", "m", sequence)
    restarted = gaps.observe("cam", "m", 1)
    assert restarted.restarted and restarted.lost == 0 and restarted.previous == 100_000
    assert gaps.observe("cam", "m", 3).lost == 1
    jumped = gaps.observe("cam", "m", 2**63)  # no head sends that many: a new stream, not 2**63 lost
    assert jumped.restarted and gaps.lost == 1 and gaps.restarts == 2


def test_senders_are_bounded_and_keyed_by_digest():
    gaps = SequenceGaps(max_senders=4)
    for k in range(100):
        gaps.observe("x" * 10_000 + str(k), "m", 1)
    assert len(gaps._last) == 4 and all(len(key) == 16 for key in gaps._last)


def jpeg(image: np.ndarray = IMAGE) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


def with_claimed_size(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG whose frame header claims another size (what a decompression bomb does)."""
    sof = data.find(b"\xff\xc0")
    patched = bytearray(data)
    patched[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(patched)


def test_jpeg_and_png_sizes_come_from_their_headers():
    assert compressed_size(jpeg()) == ("jpeg", 64, 48)
    assert compressed_size(cv2.imencode(".png", IMAGE)[1].tobytes()) == ("png", 64, 48)
    assert compressed_size(cv2.imencode(".bmp", IMAGE)[1].tobytes()) is None


def test_a_jpeg_bomb_is_refused_before_anything_is_allocated():
    bomb = with_claimed_size(jpeg(), 20000, 20000)
    assert len(bomb) < 10_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageFormatError, match="20000x20000"):
        decode_compressed(bomb)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 50_000, f"peak RSS grew by {grown_kb} kB"
    assert decode_compressed(with_claimed_size(jpeg(), 64, 48), max_pixels=64 * 48).shape == (48, 64, 3)
    with pytest.raises(ImageFormatError, match="max_image_pixels"):
        decode_compressed(jpeg(), max_pixels=64 * 48 - 1)
    assert DEFAULT_MAX_IMAGE_PIXELS == 4096 * 4096


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"GIF89a" + bytes(100), "neither JPEG nor PNG"),
        (cv2.imencode(".bmp", IMAGE)[1].tobytes(), "neither JPEG nor PNG"),  # its size is not checked: refused
        (b"\xff\xd8" + b"\xff" * 5000, "no readable frame header"),
        (b"\xff\xd8\xff\xda" + bytes(100), "no readable frame header"),
        (b"\x89PNG\r\n\x1a\n" + bytes(4), "IHDR"),
    ],
)
def test_other_or_headless_data_is_refused(data, reason):
    with pytest.raises(ImageFormatError, match=reason):
        decode_compressed(data)


def test_what_the_decoder_prints_is_collected_not_written_to_stderr(capfd):
    data = bytearray(jpeg())
    scan = data.find(b"\xff\xda")
    data[scan + 20 : scan + 60] = RNG.integers(0, 256, 40, dtype=np.uint8).tobytes()
    printed: list[str] = []
    image = decode_compressed(bytes(data), messages=printed)
    assert image.shape == (48, 64, 3)
    assert printed and "Corrupt JPEG data" in printed[0]
    with pytest.raises(ImageFormatError) as info:
        decode_compressed(jpeg()[: scan + 100])
    assert "not a decodable image" in str(info.value)
    assert capfd.readouterr().err == ""


def test_image_files_are_held_to_the_same_limit(tmp_path):
    path = tmp_path / "bomb.jpg"
    path.write_bytes(with_claimed_size(jpeg(), 30000, 30000))
    with pytest.raises(ImageFormatError, match="30000x30000"):
        read_image(path)
    (tmp_path / "ok.png").write_bytes(cv2.imencode(".png", IMAGE)[1].tobytes())
    assert read_image(tmp_path / "ok.png").shape == (48, 64, 3)
    with pytest.raises(ImageFormatError, match="cannot read"):
        read_image(tmp_path / "missing.png")


def test_all_outputs_change_together_or_none_does(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.png"
    first.write_text("old a")
    second.write_text("old b")

    def fails(tmp):
        raise OSError(28, "No space left on device", str(tmp))

    with pytest.raises(OSError):
        atomic_write_all({first: lambda tmp: tmp.write_text("new a"), second: fails})
    assert (first.read_text(), second.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.png"]  # no temp file left behind
    atomic_write_all({first: lambda tmp: tmp.write_text("new a"), second: lambda tmp: tmp.write_text("new b")})
    assert (first.read_text(), second.read_text()) == ("new a", "new b")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(first.stat().st_mode) == 0o666 & ~umask


def test_an_unwritable_target_is_named_in_the_error(tmp_path):
    target = tmp_path / "no_such_dir" / "out.json"
    with pytest.raises(FileNotFoundError) as info:
        atomic_write_all({target: lambda tmp: tmp.write_text("x")})
    assert info.value.filename == str(target)
