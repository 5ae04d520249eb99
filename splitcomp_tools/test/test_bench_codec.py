"""The codec benchmark reports what it measured: sizes and decodes are checked, timings are not."""

import json

import numpy as np
import pytest

from splitcomp_core.codec import CODEC_BY_NAME, clip_params, decode, decompress, encode, quantize, unpack_bits
from splitcomp_tools.run.bench_codec import (
    main,
    make_feature,
    run_codec_bench,
    seed_bitstring_decode,
    seed_bitstring_encode,
    seed_json_decode,
    seed_json_encode,
)

SHAPE = (1, 5, 6, 7)
ENTRY_KEYS = {"encode_ms", "decode_ms", "bytes"}
RATIO_KEYS = {
    "encode_speedup_vs_seed_bitstring",
    "decode_speedup_vs_seed_bitstring",
    "bytes_ratio_vs_seed_bitstring",
    "bytes_ratio_vs_seed_json",
}


@pytest.mark.parametrize("bits", [4, 3])
def test_report_sizes_match_a_fresh_encode_and_payload_decodes_to_the_codes(bits):
    report = json.loads(json.dumps(run_codec_bench(repeats=2, shape=SHAPE, bits=bits, seed=7, seed_repeats=1)))

    assert set(report["codecs"]) == set(CODEC_BY_NAME) == set(report["ratios"])
    for name in CODEC_BY_NAME:
        assert set(report["codecs"][name]) == ENTRY_KEYS
        assert set(report["ratios"][name]) == RATIO_KEYS
    assert set(report["seed_bitstring"]) == ENTRY_KEYS and set(report["seed_json"]) == ENTRY_KEYS
    assert report["shape"] == list(SHAPE) and report["bits"] == bits
    assert report["matches_seed"] is True

    x = make_feature(SHAPE, seed=7)
    params = clip_params(bits)
    codes = quantize(x, params).ravel()
    for name, number in CODEC_BY_NAME.items():
        encoded = encode("feature", x, params, number)
        assert report["codecs"][name]["bytes"] == len(encoded.data)
        payload = decompress(encoded.data, number, encoded.packed_size)
        assert np.array_equal(unpack_bits(payload, bits, x.size), codes)
    assert report["codecs"]["none"]["bytes"] == -(-x.size * bits // 8)
    assert report["seed_bitstring"]["bytes"] == x.size * bits
    assert report["ratios"]["none"]["bytes_ratio_vs_seed_bitstring"] == pytest.approx(
        report["codecs"]["none"]["bytes"] / (x.size * bits)
    )


def test_seed_reimplementations_agree_with_our_codec():
    x = make_feature(SHAPE, seed=3)
    x.flat[:3] = [40.0, 32.0, 16.0]  # above the clip, at it, and a .5 tie at 4 bits (16 / 32 * 15 = 7.5)
    text = seed_bitstring_encode(x, 4)
    assert len(text) == x.size * 4 and set(text) <= {"0", "1"}
    assert text[:12] == "111111111000"  # codes 15, 15, 8 (7.5 rounds half to even)
    ours = decode(encode("f", x, clip_params(4), CODEC_BY_NAME["none"]))
    assert np.array_equal(seed_bitstring_decode(text, 4, SHAPE), ours)
    assert np.array_equal(seed_json_decode(seed_json_encode(x)), x)


def test_feature_is_post_relu_like():
    x = make_feature((1, 64, 32, 32), seed=0)
    assert x.dtype == np.float32 and x.min() == 0
    assert 0.4 < np.mean(x == 0) < 0.6
    assert np.mean(x <= 32) > 0.999


def test_main_prints_the_table_and_writes_json_on_request(capsys, tmp_path):
    out = tmp_path / "codec.json"
    argv = ["--repeats", "1", "--seed-repeats", "1", "--bits", "5", "--shape", "1,3,4,4", "--json", str(out)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| encoding | encode ms | decode ms | bytes |"
    assert [line.split(" | ")[0] for line in lines[2:7]] == [
        "| splitcomp, 5-bit packed",
        "| splitcomp, 5-bit packed + zstd",
        "| splitcomp, 5-bit packed + LZ4",
        "| seed: one `'0'`/`'1'` character per bit",
        "| seed: the feature as a JSON list of floats",
    ]
    assert lines[2].endswith(f"| {-(-48 * 5 // 8)} |") and "the codes are the seed's: yes" in lines[-1]
    report = json.loads(out.read_text())
    assert report["bits"] == 5 and report["shape"] == [1, 3, 4, 4] and report["matches_seed"] is True


@pytest.mark.parametrize(
    "argv",
    [["--shape", "1,0,3"], ["--shape", "1,a"], ["--bits", "9"], ["--repeats", "0"], ["--shape", "1,4096,4096,4096"]],
)
def test_bad_arguments_exit_2_with_a_message(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error:") and len(captured.err.splitlines()) == 1


def test_a_real_cut_is_measured_with_every_codec_and_p_frames(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "cut.json"
    argv = ["--bundle", str(tiny_bundle.path), "--images", "generator", "--count", "4", "--eval-images", "generator"]
    argv += ["--eval-count", "3", "--repeats", "1", "--bits", "3", "--quantization", "per_channel", "--json", str(out)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    header = "codec  key B/frame  encode ms  decode ms  P B/frame  P encode ms  P decode ms"
    assert " ".join(lines[0].split()) == " ".join(header.split())
    assert [line.split()[0] for line in lines[1:5]] == ["none", "zstd", "lz4", "entropy"]
    assert "feat 1x4x16x16 at 3 bits (per_channel)" in lines[-1] and lines[-1].endswith("intra coding's: yes.")
    report = json.loads(out.read_text())
    assert report["fit"]["frames"] == 4 and report["eval"]["frames"] == 3
    codecs = report["codecs"]
    assert codecs["none"]["key_bytes"] == codecs["none"]["p_bytes"] == -(-4 * 16 * 16 * 3 // 8)
    assert all(r["p_identical"] for r in codecs.values())
    assert not (tiny_bundle.path / "entropy.json").exists(), "the benchmark writes nothing into the bundle"


@pytest.mark.parametrize(
    "extra",
    [["--bits", "16"], ["--eval-images", "/no/such/video.mp4"], ["--images", "generator", "--count", "1"]],
)
def test_a_real_cut_with_bad_arguments_exits_2(tiny_bundle, extra, capsys):
    assert main(["--bundle", str(tiny_bundle.path), "--images", "generator", "--count", "3", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.splitlines()) == 1, err


def test_a_multi_cut_bundle_names_its_cuts(tiny_multi_cut_bundle, capsys):
    assert main(["--bundle", str(tiny_multi_cut_bundle.path)]) == 2
    assert "multi-cut bundle; pass one of its cuts" in capsys.readouterr().err
