"""Device times of a plan's candidates: the head's and the tail's median times through the pipelines the
nodes run, measured on this machine, or read from a device profile made on the robot or the edge
(`plan --profile-device`, run once on each machine).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from splitcomp_core.bundle import QuantizationSpec, load_bundle, update_quantization
from splitcomp_core.head import HeadPipeline
from splitcomp_core.runtime import DEFAULT_PROVIDERS
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.frames import open_source
from splitcomp_tools.model.analyze import analyze_model
from splitcomp_tools.model.candidates import Candidate, ModelOptions, PlanError, prepare_candidates

TIMING_FRAMES = 50
TIMING_RATE_HZ = 10.0  # the camera rate the times are measured at
WARMUP_FRAMES = 5
PROFILE_VERSION = 1


def measure_times(
    candidates: Sequence[Candidate],
    images: str,
    count: int = TIMING_FRAMES,
    providers: Sequence[str] = DEFAULT_PROVIDERS,
    threads: int | None = None,
    seed: int = 0,
    rate_hz: float = TIMING_RATE_HZ,
) -> tuple[dict[str, dict[str, float]], str]:
    """Median head and tail times per candidate (ONNX Runtime alone and the whole stage), frame by frame in turn;
    and the ONNX Runtime provider that ran them.

    Each run starts after an idle 1/rate_hz s, as a camera's frames do: back to back, ONNX Runtime's threads
    would stay awake and its caches warm, and the times would be those of no deployment.
    """
    pause_s = 1.0 / rate_hz if rate_hz > 0 else 0.0
    pipelines = {}
    for c in candidates:
        bundle = load_bundle(c.bundle) if c.bundle else None
        assert bundle is not None
        head = HeadPipeline(bundle, providers=providers, intra_op_threads=threads)
        tail = TailPipeline(bundle, providers=providers, intra_op_threads=threads)
        pipelines[c.cut_id] = (head, tail, bundle.manifest.model_id)
    samples: dict[str, dict[str, list[float]]] = {c: {k: [] for k in _TIME_KEYS} for c in pipelines}
    source = open_source(images, seed=seed)
    try:
        for i, frame in enumerate(source.frames(WARMUP_FRAMES + count)):
            for cut_id, (head, tail, model_id) in pipelines.items():
                time.sleep(pause_s if i >= WARMUP_FRAMES else 0.0)
                encoded = head(frame, "rgb8")
                answer = tail(model_id, encoded.tensors, image_size=(frame.shape[1], frame.shape[0]))  # a detector's
                if i < WARMUP_FRAMES:
                    continue
                s = samples[cut_id]
                s["head_ms"].append(encoded.head_ms)
                s["head_total_ms"].append(encoded.preprocess_ms + encoded.head_ms + encoded.encode_ms)
                s["tail_ms"].append(answer.tail_ms)
                s["tail_total_ms"].append(answer.total_ms)
    finally:
        source.close()
    if not any(samples[c]["head_ms"] for c in samples):
        raise PlanError(f"{images}: gave no frames to time the candidates on (need more than {WARMUP_FRAMES})")
    provider = ", ".join(sorted({p[0].session.provider for p in pipelines.values()}))
    return {c: {k: float(np.median(v)) for k, v in s.items()} for c, s in samples.items()}, provider


_TIME_KEYS = ("head_ms", "head_total_ms", "tail_ms", "tail_total_ms")


def read_profile(path: str, candidates: Sequence[Candidate]) -> dict[str, dict[str, float]]:
    """A device profile's times for exactly these candidates, or a PlanError saying why the profile does not fit."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise PlanError(f"{path}: not a readable device profile ({exc}); make one with plan --profile-device") from exc
    if not isinstance(data, dict) or data.get("profile_version") != PROFILE_VERSION:
        raise PlanError(f"{path}: not a device profile of this splitcomp (profile_version {PROFILE_VERSION})")
    found = data.get("candidates", {})
    for c in candidates:
        entry = found.get(c.cut_id)
        if not isinstance(entry, dict) or entry.get("tensors") != c.tensors:
            raise PlanError(
                f"{path}: has no times for candidate {c.cut_id} ({', '.join(c.tensors)}); it was made for another "
                f"model or other options: run plan --profile-device again with this model"
            )
        bad = [k for k in _TIME_KEYS if not isinstance(entry.get(k), (int, float)) or not 0 <= entry[k] < 1e6]
        if bad:
            raise PlanError(f"{path}: candidate {c.cut_id}: {', '.join(bad)} must be milliseconds")
    return {c.cut_id: found[c.cut_id] for c in candidates}


def profile_device(
    model: str | os.PathLike,
    work: Path,
    images: str = "generator",
    providers: Sequence[str] = DEFAULT_PROVIDERS,
    threads: int | None = None,
    timing_frames: int = TIMING_FRAMES,
    options: ModelOptions | None = None,
    timing_rate: float = TIMING_RATE_HZ,
) -> dict[str, Any]:
    """Every candidate's head and tail times on this machine, with its providers: one side of a plan."""
    model, options = Path(model), options or ModelOptions()
    analysis = analyze_model(model, rebase_batch=options.rebase_batch)
    candidates = prepare_candidates(model, analysis, work, options)
    for c in candidates:  # a profile times the stages, not an encoding: 8 bits, the fixed clip range
        assert c.bundle is not None
        update_quantization(c.bundle, QuantizationSpec(bits=8))
    times, provider = measure_times(candidates, images, timing_frames, providers, threads, rate_hz=timing_rate)
    return {
        "profile_version": PROFILE_VERSION,
        "model": str(model),
        "host": platform.node(),
        "machine": platform.machine(),
        "providers_requested": list(providers),
        "provider": provider,
        "intra_op_threads": threads,
        "frames": timing_frames,
        "timing_rate_hz": timing_rate,
        "candidates": {c.cut_id: {"tensors": c.tensors, **times[c.cut_id]} for c in candidates},
    }
