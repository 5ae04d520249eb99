"""`bench codec --bundle DIR`: every codec on a real cut's features, as key frames and as P-frames.

Frames go through HeadPipeline (the head's encode: quantize and code) and TailPipeline (the tail's decode:
validate, decode, dequantize), so what is timed is what the nodes run. Entropy tables are fitted on
`--images` (in their order, so a video also gives the P-frames' delta tables) and measured on
`--eval-images`; none, zstd and LZ4 need no model. Each P-frame is coded against the frame before it, and
its decoded codes are checked against intra coding of the same frame.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.codec import CODE_BITS, HEAD_CODECS
from splitcomp_core.entropy import EntropyModels
from splitcomp_core.entropy_fit import fit_head_tables
from splitcomp_core.head import HeadPipeline
from splitcomp_core.interframe import Reference
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.cli import UsageError, format_table
from splitcomp_tools.run.video_measure import source_features

Features = Mapping[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class CutBenchOptions:
    bundle: Path
    images: str
    count: int
    eval_images: str
    eval_count: int
    bits: int
    mode: str | None = None  # None: the bundle's range mode
    repeats: int = 5
    seed: int = 0


def run_cut_bench(options: CutBenchOptions) -> dict:
    """Bytes per frame and median encode/decode milliseconds of every codec, key frames and P-frames."""
    bundle = load_bundle(options.bundle)
    if bundle.cuts:
        raise UsageError(f"{options.bundle} is a multi-cut bundle; pass one of its cuts: {bundle.cuts[0].bundle.path}")
    if options.bits not in CODE_BITS:
        raise UsageError(f"--bits must be 1..8 with --bundle (codes), got {options.bits}")
    own = EncoderConfig.from_manifest(bundle.manifest.quantization)
    config = dataclasses.replace(own, bits=options.bits, mode=options.mode or own.mode).validated()
    head = HeadPipeline(bundle, config, providers=["cpu"])
    fit = source_features(head, options.images, options.count, options.seed)
    evaluated = source_features(head, options.eval_images, options.eval_count, options.seed)
    head.entropy_models = EntropyModels(fit_head_tables(head, fit, [config]))
    tail = TailPipeline(bundle, ["cpu"], entropy_models=head.entropy_models)
    codecs = {
        c: _measure(head, tail, evaluated, dataclasses.replace(config, codec=c), options.repeats) for c in HEAD_CODECS
    }
    return {
        "bundle": str(options.bundle),
        "tensors": {t.name: t.shape for t in bundle.manifest.cut},
        "bits": config.bits,
        "quantization": config.mode,
        "fit": {"images": options.images, "frames": len(fit)},
        "eval": {"images": options.eval_images, "frames": len(evaluated)},
        "repeats": options.repeats,
        "codecs": codecs,
    }


def _measure(head: HeadPipeline, tail: TailPipeline, frames: Sequence[Features], config: EncoderConfig, repeats: int):
    """Encode and decode every frame `repeats` times as a key frame, and against the frame before as a P-frame."""
    head.configure(config)
    model_id = tail.model_id
    times: dict[str, list[float]] = {"encode": [], "decode": [], "p_encode": [], "p_decode": []}
    sizes: dict[str, list[int]] = {"key": [], "p": []}
    identical = True
    previous = None
    for features in frames:
        tensors, codes = _timed(times["encode"], repeats, lambda f=features: head.encode_codes(f))
        _timed(times["decode"], repeats, lambda t=tensors: tail.decode(model_id, t))
        sizes["key"].append(sum(len(t.data) for t in tensors))
        if previous is not None and codes is not None:
            tensors, _ = _timed(times["p_encode"], repeats, lambda f=features, r=previous: head.encode_codes(f, r))
            reference = Reference(1, model_id, previous)
            decoded = _timed(times["p_decode"], repeats, lambda t=tensors, r=reference: tail.decode(model_id, t, 1, r))
            identical = identical and all(np.array_equal(decoded.codes[n], codes[n]) for n in codes)
            sizes["p"].append(sum(len(t.data) for t in tensors))
        previous = codes
    result = {f"{k}_ms": statistics.median(v) for k, v in times.items()}
    result.update(key_bytes=float(np.mean(sizes["key"])), p_bytes=float(np.mean(sizes["p"])), p_identical=identical)
    return result


def _timed(samples: list[float], repeats: int, fn):
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return out


def format_cut_report(report: dict) -> str:
    header = ["codec", "key B/frame", "encode ms", "decode ms", "P B/frame", "P encode ms", "P decode ms"]
    rows = [
        [
            name,
            f"{r['key_bytes']:,.0f}",
            f"{r['encode_ms']:.3f}",
            f"{r['decode_ms']:.3f}",
            f"{r['p_bytes']:,.0f}",
            f"{r['p_encode_ms']:.3f}",
            f"{r['p_decode_ms']:.3f}",
        ]
        for name, r in report["codecs"].items()
    ]
    shapes = ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in report["tensors"].items())
    identical = all(r["p_identical"] for r in report["codecs"].values())
    return "\n".join(
        [
            format_table(header, rows),
            "",
            f"{shapes} at {report['bits']} bits ({report['quantization']}); entropy tables fitted on "
            f"{report['fit']['frames']} frames of {report['fit']['images']}, measured on {report['eval']['frames']} "
            f"frames of {report['eval']['images']} (medians of {report['repeats']} runs per frame; bytes: mean per "
            f"frame). P-frames are coded against the frame before; their codes equal intra coding's: "
            f"{'yes' if identical else 'NO'}.",
        ]
    )
