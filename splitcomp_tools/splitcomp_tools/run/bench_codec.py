"""Measure the feature codec against the seed's encodings, so the README's figures are reproducible.

The seed sent a cut feature either as a text string of '0'/'1' characters (clip 0..32, 4 bits) or as
a JSON list of floats. Both are re-implemented here from that description, deliberately as slow as
they were (a Python loop per element is the point of the comparison), and timed in the same run as
our quantize + bit-pack (+ zstd/LZ4) path on the same post-ReLU-like tensor. With `--bundle`, every codec
(the entropy codec and P-frames included) runs on a real cut's features instead (run/bench_codec_cut.py).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from splitcomp_core.bundle import MODES
from splitcomp_core.codec import CODEC_BY_NAME, DEFAULT_MAX_ELEMENTS, clip_params, decode, encode
from splitcomp_core.files import atomic_write_text
from splitcomp_tools.cli import ToolParser, check_outputs, int_in, run_cli
from splitcomp_tools.run.bench_codec_cut import CutBenchOptions, format_cut_report, run_cut_bench

SEED_CLIP_MIN = 0.0
SEED_CLIP_MAX = 32.0
DEFAULT_SHAPE = (1, 64, 56, 56)


def make_feature(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """A post-ReLU-like float32 tensor: about half zeros, the rest mostly within 0..32."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(8.0), 0)


def seed_bitstring_encode(x: np.ndarray, bits: int = 4) -> str:
    """The seed's encoder: clip to 0..32, quantize, then one '0'/'1' character per bit."""
    levels = 2**bits - 1
    scaled = (np.clip(x, SEED_CLIP_MIN, SEED_CLIP_MAX) - SEED_CLIP_MIN) / (SEED_CLIP_MAX - SEED_CLIP_MIN)
    codes = np.round(scaled * levels).astype(np.uint8).ravel()
    return "".join(format(int(c), f"0{bits}b") for c in codes)


def seed_bitstring_decode(text: str, bits: int, shape: Sequence[int]) -> np.ndarray:
    """The seed's decoder: parse the bit string back into codes, then `clip_min + code * step`."""
    codes = np.array([int(text[i : i + bits], 2) for i in range(0, len(text), bits)], dtype=np.float32)
    step = np.float32((SEED_CLIP_MAX - SEED_CLIP_MIN) / (2**bits - 1))
    return (codes * step + np.float32(SEED_CLIP_MIN)).reshape(tuple(shape))


def seed_json_encode(x: np.ndarray) -> str:
    """The seed's other format: the feature as a JSON list of floats."""
    return json.dumps(x.tolist())


def seed_json_decode(text: str) -> np.ndarray:
    return np.asarray(json.loads(text), dtype=np.float32)


def median_ms(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Median wall time of `fn` in milliseconds over `repeats` runs (perf_counter_ns)."""
    if warmup:
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def run_codec_bench(
    repeats: int = 200,
    shape: Sequence[int] = DEFAULT_SHAPE,
    bits: int = 4,
    seed: int = 0,
    seed_repeats: int = 3,
) -> dict:
    """Encode/decode medians and sizes for every codec and for the seed's two formats, plus ratios.

    Our path uses the seed's clip (0..32) at the same bits, so `matches_seed` can check that every
    codec decodes to exactly the values the seed's bit-string decoder produces.
    """
    shape = tuple(int(d) for d in shape)
    x = make_feature(shape, seed)
    params = clip_params(bits, SEED_CLIP_MIN, SEED_CLIP_MAX)

    bitstring = seed_bitstring_encode(x, bits)
    seed_values = seed_bitstring_decode(bitstring, bits, shape)
    seed_bitstring = {
        "encode_ms": median_ms(lambda: seed_bitstring_encode(x, bits), seed_repeats, warmup=False),
        "decode_ms": median_ms(lambda: seed_bitstring_decode(bitstring, bits, shape), seed_repeats, warmup=False),
        "bytes": len(bitstring.encode("ascii")),
    }
    json_text = seed_json_encode(x)
    seed_json = {
        "encode_ms": median_ms(lambda: seed_json_encode(x), seed_repeats, warmup=False),
        "decode_ms": median_ms(lambda: seed_json_decode(json_text), seed_repeats, warmup=False),
        "bytes": len(json_text.encode("utf-8")),
    }

    codecs = {}
    ratios = {}
    matches_seed = True
    for name, number in CODEC_BY_NAME.items():
        encoded = encode("feature", x, params, number)
        matches_seed = matches_seed and bool(np.array_equal(decode(encoded), seed_values))
        result = {
            "encode_ms": median_ms(functools.partial(encode, "feature", x, params, number), repeats),
            "decode_ms": median_ms(functools.partial(decode, encoded), repeats),
            "bytes": len(encoded.data),
        }
        codecs[name] = result
        ratios[name] = {
            "encode_speedup_vs_seed_bitstring": seed_bitstring["encode_ms"] / result["encode_ms"],
            "decode_speedup_vs_seed_bitstring": seed_bitstring["decode_ms"] / result["decode_ms"],
            "bytes_ratio_vs_seed_bitstring": result["bytes"] / seed_bitstring["bytes"],
            "bytes_ratio_vs_seed_json": result["bytes"] / seed_json["bytes"],
        }

    return {
        "shape": list(shape),
        "bits": bits,
        "elements": x.size,
        "float32_bytes": x.nbytes,
        "zero_fraction": float(np.mean(x == 0)),
        "repeats": repeats,
        "seed_repeats": seed_repeats,
        "codecs": codecs,
        "seed_bitstring": seed_bitstring,
        "seed_json": seed_json,
        "ratios": ratios,
        "matches_seed": matches_seed,
    }


CODEC_ROWS = {"none": "", "zstd": " + zstd", "lz4": " + LZ4"}


def format_report(report: dict) -> str:
    """The README's table: our codec and the seed's two formats side by side, then the ratios."""
    bits = report["bits"]
    rows = [(f"splitcomp, {bits}-bit packed{suffix}", report["codecs"][name]) for name, suffix in CODEC_ROWS.items()]
    rows += [
        ("seed: one `'0'`/`'1'` character per bit", report["seed_bitstring"]),
        ("seed: the feature as a JSON list of floats", report["seed_json"]),
    ]
    lines = ["| encoding | encode ms | decode ms | bytes |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['encode_ms']:.2f} | {r['decode_ms']:.2f} | {r['bytes']:,} |" for name, r in rows]
    ratios = report["ratios"]["none"]
    shape = "x".join(map(str, report["shape"]))
    lines += [
        "",
        f"{shape} post-ReLU-like features at {bits} bits, medians of {report['repeats']} runs (seed: "
        f"{report['seed_repeats']}). Encoding is {ratios['encode_speedup_vs_seed_bitstring']:.0f}x faster and "
        f"decoding {ratios['decode_speedup_vs_seed_bitstring']:.0f}x faster than the seed's bit string, at "
        f"{ratios['bytes_ratio_vs_seed_bitstring']:.3f} of its bytes; the codes are the seed's: "
        f"{'yes' if report['matches_seed'] else 'NO'}.",
    ]
    return "\n".join(lines)


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"shape must be comma-separated integers like 1,64,56,56, got {text!r}"
        ) from None
    if any(d < 1 for d in dims) or math.prod(dims) > DEFAULT_MAX_ELEMENTS:
        raise argparse.ArgumentTypeError(
            f"shape {text!r} must have dimensions >= 1 and at most {DEFAULT_MAX_ELEMENTS} elements"
        )
    return dims


def _build_parser() -> ToolParser:
    parser = ToolParser(
        prog="bench codec",
        description="Time the feature codec (none, zstd, lz4) against the seed's bit-string and JSON "
        "encodings on a post-ReLU-like tensor; or, with --bundle, every codec (entropy and P-frames included) "
        "on a real cut's features; prints a table (--json FILE: the measurements as JSON).",
    )
    parser.add_argument(
        "--repeats",
        type=int_in(1, 100_000),
        default=None,
        help="timed runs per codec for our codec (default 200; medians are reported); with --bundle, per frame "
        "(default 5)",
    )
    parser.add_argument(
        "--seed-repeats", type=int_in(1, 1000), default=3, help="timed runs for the slow seed encoders (default 3)"
    )
    parser.add_argument(
        "--bits",
        type=int,
        choices=range(1, 9),
        default=4,
        metavar="{1..8}",
        help="bits per code (default 4, the seed's)",
    )
    parser.add_argument(
        "--shape", type=_shape, default=DEFAULT_SHAPE, help="tensor shape, e.g. 1,64,56,56 (the default)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the test tensor")
    parser.add_argument("--json", metavar="FILE", help="also write the measurements to this file as JSON")
    real = parser.add_argument_group("a real cut (--bundle)")
    real.add_argument("--bundle", metavar="DIR", help="measure on this single-cut bundle's features instead")
    real.add_argument("--images", default="photos:train", help="frames the entropy tables are fitted on")
    real.add_argument("--count", type=int_in(2, 100_000), default=200, help="how many of them (default 200)")
    real.add_argument("--eval-images", default="photos:test", help="frames measured (in order: P-frames)")
    real.add_argument("--eval-count", type=int_in(2, 100_000), default=100, help="how many of them (default 100)")
    real.add_argument("--quantization", choices=MODES, help="range mode (default: the bundle's)")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = _build_parser().parse_args(argv)
    check_outputs([("--json", args.json)], [])
    if args.bundle:
        options = CutBenchOptions(
            args.bundle,
            args.images,
            args.count,
            args.eval_images,
            args.eval_count,
            args.bits,
            args.quantization,
            args.repeats or 5,
            args.seed,
        )
        result = run_cut_bench(options)
        text = format_cut_report(result)
    else:
        result = run_codec_bench(args.repeats or 200, args.shape, args.bits, args.seed, args.seed_repeats)
        text = format_report(result)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the table on stdout; bad arguments are one `error:` line (exit 2)."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
