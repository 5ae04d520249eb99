"""plan: where to cut a model, at how many bits, for which link: measured on the model, the frames and the devices.

A user's question is: with this model, robot, edge server and Wi-Fi, where do I cut, at how many
bits, and what latency will I get? The answer changes with the link. `plan` measures it:

1. Candidates: every single-tensor cut that is not dominated on bytes and head compute (another cut
   with fewer elements and at most the same FLOPs in the head, within 1 % of the model, is better
   everywhere), plus the two extremes: `input` (everything on the edge: the head only preprocesses
   and the robot sends the model input) and `output` (everything on the robot: the tail only
   post-processes and the robot sends the scores).
2. Per candidate, on the frames: the smallest encoding (bits x range method x codec) whose top-1
   agreement with the unsplit model reaches `--agreement` (calibrate's own measurement, through
   HeadPipeline and TailPipeline), and its bytes per frame on the wire (codes plus the
   quantization's scale and offset), then the head's and the tail's median times through the same
   pipelines the nodes run, all candidates frame by frame in turn so machine load hits them alike.
3. Per bandwidth B: predicted latency = robot head time + bytes x 8 / B + edge tail time + the fixed
   transport overhead measured on the test bed (`bench pipeline --link`). The robot's and the
   edge's times come from device profiles (`plan --profile-device`, run once on each machine);
   without them this machine's times stand for both, and the output says so.

`--out` writes a multi-cut bundle (format_version 2) of the cuts that win at some of the given
bandwidths, each with the planned encoding and the range of rates where it wins (between two
winners the boundary is where their predictions cross), for the head's `bandwidth_mbps`.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from matplotlib.figure import Figure
from onnx import helper

from splitcomp_core.bundle import (
    DYNAMIC,
    Bundle,
    CutChoice,
    QuantizationSpec,
    TensorSpec,
    load_bundle,
    update_quantization,
    write_bundle,
    write_multi_cut_bundle,
)
from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write, atomic_write_text
from splitcomp_core.head import HeadPipeline
from splitcomp_core.runtime import DEFAULT_PROVIDERS
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.cli import ToolParser, run_cli
from splitcomp_tools.cli_options import add_model_arguments, preprocessing_from
from splitcomp_tools.frames import open_source
from splitcomp_tools.model.analyze import Analysis, analyze_model
from splitcomp_tools.model.calibrate import Calibration, Result, calibrate
from splitcomp_tools.model.cut_choice import choose_cut
from splitcomp_tools.model.split import Preprocessing, split_model

DEFAULT_BANDWIDTHS = (1.1, 5.85, 18.88, 100.0)
DEFAULT_AGREEMENT = 0.99
DEFAULT_COUNT = 200
TIMING_FRAMES = 50
TIMING_RATE_HZ = 10.0  # the camera rate the times are measured at
WARMUP_FRAMES = 5
# Median of latency - head - tail - bytes*8/rate over `bench pipeline --link` runs on the demo model at
# 1.1, 5.85, 18.88 and 100 Mbit/s (README, "The split planner"): camera transport, image conversion, DDS.
DEFAULT_OVERHEAD_MS = 2.0
FLOPS_TOLERANCE = 0.01  # head FLOPs shares closer than this (of the whole model) count as equal compute
EDGE_ONLY, ROBOT_ONLY = "input", "output"
PROFILE_VERSION = 1


class PlanError(SplitcompError, ValueError):
    """A plan that cannot be made: bad options, a profile of another model, no candidate."""


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """How to split the model into bundles: split's options (labels, preprocessing, the output, --rebase-batch)."""

    preprocessing: Preprocessing | Mapping[str, Any] | None = None  # None or the fields given: what export recorded
    labels: str | None = None
    output: str | None = None
    output_kind: str = "auto"
    rebase_batch: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ModelOptions:
        return cls(preprocessing_from(args), args.labels, args.output, args.output_kind, args.rebase_batch)


@dataclasses.dataclass
class Candidate:
    """One place to cut, what encoding it needs, what it costs, and what latency it gives per bandwidth."""

    cut_id: str
    tensors: list[str]
    head_flops_share: float
    elements: int
    position: float
    bundle: Path | None = None
    bits: int | None = None
    quantization: str | None = None  # calibrate's method name: clip, per_tensor_mse, ..., raw
    codec: str | None = None
    bytes: float | None = None  # on the wire per frame: the codes and the quantization's scale and offset
    agreement: float | None = None
    head_ms: float | None = None  # ONNX Runtime, on the robot
    tail_ms: float | None = None  # ONNX Runtime, on the edge
    head_total_ms: float | None = None  # preprocess + ONNX Runtime + encode, on the robot
    tail_total_ms: float | None = None  # decode + ONNX Runtime + top-k, on the edge
    predicted_ms: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["bundle"] = str(self.bundle) if self.bundle else None
        return data


@dataclasses.dataclass
class Plan:
    """What `plan` found: the candidates with their predictions, the best per bandwidth, and how it was measured."""

    model: str
    images: str
    frames: int
    agreement: float
    bandwidths: list[float]
    link: Link
    profiles: dict[str, str]
    candidates: list[Candidate]
    best: dict[str, str]
    heuristic: str | None
    ranges: list[tuple[str, float, float | None]]
    old_rule_bundle: str | None = None  # the heuristic's cut at calibrate's default encoding, for comparison

    def to_json(self, with_bundles: bool = True) -> dict[str, Any]:
        """The plan as JSON; `with_bundles` False leaves out the candidate bundles' paths (a removed temp folder)."""
        candidates = [c.to_json() for c in self.candidates]
        for c in candidates if not with_bundles else []:
            c["bundle"] = None
        return {
            "model": self.model,
            "images": self.images,
            "frames": self.frames,
            "agreement": self.agreement,
            "bandwidths_mbps": self.bandwidths,
            "transport_overhead_ms": self.link.overhead_ms,
            "link_burst_bytes": self.link.burst_bytes,
            "profiles": self.profiles,
            "candidates": candidates,
            "best": self.best,
            "heuristic": self.heuristic,
            "old_rule_bundle": self.old_rule_bundle if with_bundles else None,
            "bandwidth_ranges": [{"cut_id": c, "min": lo, "max": hi} for c, lo, hi in self.ranges],
        }


def key(mbps: float) -> str:
    """A bandwidth as the JSON and the tables name it: 1.1, 5.85, 18.88, 100."""
    return f"{mbps:g}"


# -- candidates ------------------------------------------------------------------------------------------------


def candidate_cuts(analysis: Analysis, output_shape: Sequence[int], prune: bool = True) -> list[Candidate]:
    """The single-tensor cuts not dominated on (elements, head FLOPs), and the two extremes, input first.

    `prune` False keeps every single-tensor cut.
    """
    (input_shape,) = analysis.input_shapes.values()
    cuts = [
        Candidate(f"cut{k}", list(c.tensors), c.head_flops_share, int(c.elements), float(c.position))
        for k, c in enumerate(analysis.cuts, 1)
        if len(c.tensors) == 1 and c.elements
    ]
    edge_only = Candidate(EDGE_ONLY, [], 0.0, math.prod(input_shape), -math.inf)
    robot_only = Candidate(ROBOT_ONLY, [], 1.0, math.prod(abs(d) for d in output_shape), math.inf)
    everything = [edge_only, *cuts, robot_only]
    kept = [c for c in cuts if not prune or not any(_dominates(b, c) for b in everything if b is not c)]
    return [edge_only, *sorted(kept, key=lambda c: c.position), robot_only]


def _dominates(b: Candidate, a: Candidate) -> bool:
    """b is at least as good as a on bytes and head compute (within FLOPS_TOLERANCE), and better in one."""
    if b.elements > a.elements or b.head_flops_share > a.head_flops_share + FLOPS_TOLERANCE:
        return False
    if b.elements < a.elements or b.head_flops_share < a.head_flops_share - FLOPS_TOLERANCE:
        return True
    return b.position > a.position  # the same: the later tensor (after the residual Add, its ReLU) wins


def build_bundles(model: Path, candidates: Sequence[Candidate], work: Path, options: ModelOptions) -> None:
    """A verified single-cut bundle per candidate in work/<cut_id>; the extremes from the full model and an identity."""
    regular = [c for c in candidates if c.cut_id not in (EDGE_ONLY, ROBOT_ONLY)]
    like: Bundle | None = None
    extremes = [c for c in candidates if c.cut_id in (EDGE_ONLY, ROBOT_ONLY)]
    for c in regular:
        bundle, _ = split_model(
            model,
            c.tensors,
            work / c.cut_id,
            preprocessing=options.preprocessing,
            labels_path=options.labels,
            output_name=options.output,
            output_kind=options.output_kind,
            overwrite=True,
            rebase_batch=options.rebase_batch,
        )
        c.bundle, like = bundle.path, like or bundle
    if like is None and extremes:
        raise PlanError(f"{model}: no single-tensor cut to split at; `analyze {model}` lists the cuts")
    for c in extremes:
        assert like is not None
        c.bundle = _extreme_bundle(model, like, c.cut_id, work / c.cut_id).path
        c.tensors = [t.name for t in load_bundle(c.bundle).manifest.cut]


def _extreme_bundle(model: Path, like: Bundle, cut_id: str, out: Path) -> Bundle:
    """`input`: head = identity, tail = the model; `output`: head = the model, tail = identity."""
    full = onnx.load(str(model))
    m = like.manifest
    name, shape = (m.input.name, m.input.shape) if cut_id == EDGE_ONLY else (m.output.name, m.output.shape)
    dims: list[int | str] = ["N" if d == DYNAMIC else d for d in shape]
    value = helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims)
    graph = helper.make_graph([], f"{cut_id}_identity", [value], [value])
    identity = helper.make_model(graph, opset_imports=list(full.opset_import))
    identity.ir_version = full.ir_version
    parts = (identity, full) if cut_id == EDGE_ONLY else (full, identity)
    head, tail = (p.SerializeToString() for p in parts)
    what = "the head only preprocesses" if cut_id == EDGE_ONLY else "the tail only post-processes"
    manifest = dataclasses.replace(
        m,
        cut=[TensorSpec(name, list(shape), "float32")],
        quantization=QuantizationSpec(),
        verification={"max_abs_diff": 0.0, "relative_diff": 0.0, "samples": 0, "exact": f"{what} (identity)"},
        created_by="splitcomp_tools plan",
    )
    return write_bundle(out, head, tail, manifest, like.labels, overwrite=True)


# -- encoding -------------------------------------------------------------------------------------------------


def smallest_encoding(calibration: Calibration, agreement: float) -> Result:
    """The fewest bytes on the wire among the encodings (not JPEG) that agree with the unsplit model often enough."""
    options = [r for r in calibration.results if r.codec is not None and r.agreement >= agreement - 1e-12]
    if not options:
        raise PlanError(f"{calibration.bundle}: no encoding reaches {agreement:.1%} agreement, not even raw floats")
    manifest = load_bundle(calibration.bundle).manifest
    return min(options, key=lambda r: (wire_bytes(r, manifest.cut), r.bits or 0))


def wire_bytes(result: Result, cut: Sequence[TensorSpec]) -> float:
    """Codes plus the float32 scale and offset the message carries: one pair per tensor, or per channel."""
    if result.method == "raw":
        return result.bytes_per_frame
    pairs = sum(t.shape[1] if result.method.startswith("per_channel") and len(t.shape) > 1 else 1 for t in cut)
    return result.bytes_per_frame + 8.0 * pairs


def encode_candidates(
    candidates: Sequence[Candidate],
    images: str,
    count: int,
    agreement: float,
    seed: int,
    progress: bool,
    calibration_images: str | None = None,
) -> dict[str, Calibration]:
    """Calibrate every candidate and store its smallest sufficient encoding; the calibrations.

    Ranges come from `calibration_images` (default: `images`), agreement and bytes from `images`.
    """
    calibrations = {}
    for c in candidates:
        assert c.bundle is not None
        _say(progress, f"{c.cut_id}: measuring encodings on {count} frames from {images}")
        calibration = calibrate(
            c.bundle, calibration_images or images, count, seed=seed, eval_images=images if calibration_images else None
        )
        chosen = smallest_encoding(calibration, agreement)
        update_quantization(c.bundle, calibration.with_default(chosen).quantization)
        c.bits, c.quantization, c.codec = chosen.bits, chosen.method, chosen.codec
        c.bytes = wire_bytes(chosen, load_bundle(c.bundle).manifest.cut)
        c.agreement = chosen.agreement
        calibrations[c.cut_id] = calibration
    return calibrations


def old_rule_bundle(
    heuristic: Candidate | None,
    calibrations: Mapping[str, Calibration],
    work: Path,
    images: str,
    count: int,
    seed: int,
    calibration_images: str | None = None,
) -> Path | None:
    """The old rule's deployment for comparison: its cut at calibrate's default encoding (4 bits, least error)."""
    if heuristic is None or heuristic.bundle is None:
        return None
    out = work / "old_rule"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(heuristic.bundle, out)
    calibration = calibrations.get(heuristic.cut_id) or calibrate(
        out, calibration_images or images, count, seed=seed, eval_images=images if calibration_images else None
    )
    update_quantization(out, calibration.quantization)
    return out


# -- times ----------------------------------------------------------------------------------------------------


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
                answer = tail(model_id, encoded.tensors)
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


# -- prediction -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Link:
    """The link model of the predictions: a message's bytes beyond `burst_bytes` cross at the link rate, and
    `overhead_ms` is everything else (camera transport, serialization, DDS) as measured on the test bed.

    A serial link has no burst. A token-bucket shaper (the test bed's tbf: 1600 bytes, one full frame; many
    operators' policers) lets a full bucket through at once, so small messages cost nothing of the rate.
    """

    overhead_ms: float = DEFAULT_OVERHEAD_MS
    burst_bytes: float = 0.0

    def waiting_bytes(self, c: Candidate) -> float:
        assert c.bytes is not None
        return max(0.0, c.bytes - self.burst_bytes)

    def latency(self, c: Candidate, mbps: float) -> float:
        assert c.head_total_ms is not None and c.tail_total_ms is not None
        return c.head_total_ms + self.waiting_bytes(c) * 8e-3 / mbps + c.tail_total_ms + self.overhead_ms


def predict(candidates: Sequence[Candidate], bandwidths: Sequence[float], link: Link) -> dict[str, str]:
    """Fill in each candidate's predicted latency per bandwidth; the best cut per bandwidth."""
    best = {}
    for mbps in bandwidths:
        for c in candidates:
            c.predicted_ms[key(mbps)] = link.latency(c, mbps)
        best[key(mbps)] = min(candidates, key=lambda c: c.predicted_ms[key(mbps)]).cut_id
    return best


def bandwidth_ranges(
    candidates: Sequence[Candidate], bandwidths: Sequence[float], best: Mapping[str, str], link: Link
) -> list[tuple[str, float, float | None]]:
    """The winners in order of bandwidth, each with the rates where it wins: from 0, boundaries where two cross."""
    by_id = {c.cut_id: c for c in candidates}
    order: list[tuple[str, float]] = []
    for mbps in sorted(bandwidths):
        cut_id = best[key(mbps)]
        if not order or order[-1][0] != cut_id:
            order.append((cut_id, mbps))
    ranges: list[tuple[str, float, float | None]] = []
    low = 0.0
    for (a_id, a_at), (b_id, b_at) in itertools.pairwise(order):
        a, b = by_id[a_id], by_id[b_id]
        fixed_a, fixed_b = link.latency(a, math.inf), link.latency(b, math.inf)
        extra_bits = (link.waiting_bytes(b) - link.waiting_bytes(a)) * 8e-3
        cross = extra_bits / (fixed_a - fixed_b) if fixed_a > fixed_b else math.nan
        boundary = cross if a_at < cross <= b_at else math.sqrt(a_at * b_at)
        ranges.append((a_id, low, boundary))
        low = boundary
    ranges.append((order[-1][0], low, None))
    return ranges


# -- the whole plan -------------------------------------------------------------------------------------------


def make_plan(
    model: str | os.PathLike,
    images: str,
    work: Path,
    options: ModelOptions | None = None,
    count: int = DEFAULT_COUNT,
    agreement: float = DEFAULT_AGREEMENT,
    bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
    robot_profile: str | None = None,
    edge_profile: str | None = None,
    link: Link | None = None,
    timing_frames: int = TIMING_FRAMES,
    timing_rate: float = TIMING_RATE_HZ,
    seed: int = 0,
    progress: bool = False,
    calibration_images: str | None = None,
    robot_slowdown: float = 1.0,
) -> Plan:
    """Candidates, their encodings, times and predictions; the candidate bundles stay in `work`."""
    link = link or Link()
    _check_options(count, agreement, bandwidths, link, timing_frames, timing_rate)
    if not 0.01 <= robot_slowdown <= 1000:
        raise PlanError(f"--robot-slowdown must be between 0.01 and 1000, got {robot_slowdown}")
    model, options = Path(model), options or ModelOptions()
    analysis = analyze_model(model, rebase_batch=options.rebase_batch)
    candidates = prepare_candidates(model, analysis, work, options)
    given = {
        side: read_profile(path, candidates)
        for side, path in (("robot", robot_profile), ("edge", edge_profile))
        if path
    }
    calibrations = encode_candidates(candidates, images, count, agreement, seed, progress, calibration_images)
    frames = next(iter(calibrations.values())).frames
    here: dict[str, dict[str, float]] = {}
    if len(given) < 2:  # this machine's times stand for a side without a profile
        _say(progress, f"timing {len(candidates)} candidates on {timing_frames} frames")
        here, _provider = measure_times(candidates, images, timing_frames, seed=seed, rate_hz=timing_rate)
    robot, edge = given.get("robot", here), given.get("edge", here)
    for c in candidates:
        c.head_ms = robot[c.cut_id]["head_ms"] * robot_slowdown
        c.head_total_ms = robot[c.cut_id]["head_total_ms"] * robot_slowdown
        c.tail_ms, c.tail_total_ms = edge[c.cut_id]["tail_ms"], edge[c.cut_id]["tail_total_ms"]
    best = predict(candidates, bandwidths, link)
    heuristic = _heuristic(analysis, candidates)
    old_cut = next((c for c in candidates if c.cut_id == heuristic), None)
    if old_cut is None and heuristic is not None:  # dominated, so not a candidate: split it on its own
        old_cut = next(c for c in candidate_cuts(analysis, [1], prune=False) if c.cut_id == heuristic)
        build_bundles(model, [old_cut], work / "dominated", options)
    old_rule = old_rule_bundle(old_cut, calibrations, work, images, count, seed, calibration_images)
    this_machine = f"this machine ({platform.node()}, measured now)"
    return Plan(
        model=str(model),
        images=images,
        frames=frames,
        agreement=agreement,
        bandwidths=list(bandwidths),
        link=link,
        profiles={
            "robot": (robot_profile or this_machine)
            + (f", times x {robot_slowdown:g} (an emulated slower robot)" if robot_slowdown != 1.0 else ""),
            "edge": edge_profile or this_machine,
        },
        candidates=candidates,
        best=best,
        heuristic=heuristic,
        ranges=bandwidth_ranges(candidates, bandwidths, best, link),
        old_rule_bundle=str(old_rule) if old_rule else None,
    )


def prepare_candidates(model: Path, analysis: Analysis, work: Path, options: ModelOptions) -> list[Candidate]:
    """The candidates of `candidate_cuts`, each split into its own bundle in `work`."""
    graph_outputs = onnx.load(str(model), load_external_data=False).graph.output
    wanted = options.output or graph_outputs[0].name
    declared = next((o for o in graph_outputs if o.name == wanted), graph_outputs[0]).type.tensor_type.shape.dim
    output_shape = [d.dim_value if d.HasField("dim_value") else 1 for d in declared]
    candidates = candidate_cuts(analysis, output_shape)
    build_bundles(model, candidates, work, options)
    return candidates


def _heuristic(analysis: Analysis, candidates: Sequence[Candidate]) -> str | None:
    """The cut the old rule (`choose_cut`: fewest 4-bit bytes with at most half the FLOPs in the head) picks."""
    try:
        old = choose_cut(analysis)
    except SplitcompError:
        return None
    return next((c.cut_id for c in candidates if c.tensors == old.tensors), f"cut{analysis.cuts.index(old) + 1}")


def write_bundle_of_winners(plan: Plan, out: str | os.PathLike, overwrite: bool = False) -> Bundle:
    """The multi-cut bundle of the cuts that win at some bandwidth, with their ranges and predictions."""
    by_id = {c.cut_id: c for c in plan.candidates}
    choices = []
    for cut_id, low, high in plan.ranges:
        c = by_id[cut_id]
        assert c.bundle is not None
        info = {
            k: getattr(c, k)
            for k in ("tensors", "bits", "quantization", "codec", "bytes", "head_total_ms", "tail_total_ms")
        }
        info["predicted_ms"] = c.predicted_ms
        choices.append(CutChoice(cut_id, load_bundle(c.bundle), low, high, info))
    default = plan.best[key(max(plan.bandwidths))]
    link = {"transport_overhead_ms": plan.link.overhead_ms, "burst_bytes": plan.link.burst_bytes}
    summary = {"agreement": plan.agreement, "images": plan.images, "frames": plan.frames, "profiles": plan.profiles}
    return write_multi_cut_bundle(out, choices, default, link, plan.model, summary, overwrite=overwrite)


# -- device profiles ------------------------------------------------------------------------------------------


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


# -- output ---------------------------------------------------------------------------------------------------


def format_table(plan: Plan) -> str:
    """One row per candidate; the predicted latency per bandwidth with the best marked by *."""
    bandwidths = [key(b) for b in plan.bandwidths]
    header = ["cut", "tensor", "head FLOPs", "bits/method/codec", "bytes", "head ms", "tail ms"]
    header += [f"@{b} Mbit/s" for b in bandwidths]
    rows = []
    for c in plan.candidates:
        tensor = {EDGE_ONLY: "(the model input)", ROBOT_ONLY: "(the scores)"}.get(c.cut_id, c.tensors[0])
        rows.append(
            [
                c.cut_id + (" (old rule)" if c.cut_id == plan.heuristic else ""),
                tensor if len(tensor) <= 40 else "..." + tensor[-37:],
                f"{100 * c.head_flops_share:.1f} %",
                f"{c.bits}/{c.quantization}/{c.codec}",
                f"{c.bytes:,.0f}",
                f"{c.head_total_ms:.2f} ({c.head_ms:.2f})",
                f"{c.tail_total_ms:.2f} ({c.tail_ms:.2f})",
                *(f"{c.predicted_ms[b]:.1f}" + ("*" if plan.best[b] == c.cut_id else " ") for b in bandwidths),
            ]
        )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
        for r in (header, *rows)
    ]
    same = plan.profiles["robot"] == plan.profiles["edge"]
    notes = [
        f"{plan.model}: {len(plan.candidates)} candidates; encodings reach {plan.agreement:.1%} top-1 agreement with "
        f"the unsplit model on {plan.frames} frames from {plan.images}",
        f"head/tail ms: the whole stage (ONNX Runtime alone in brackets); robot times: {plan.profiles['robot']}; "
        f"edge times: {plan.profiles['edge']}" + (" (one machine's times stand for both sides)" if same else ""),
        f"predicted ms = head + bytes x 8 / bandwidth + tail + {plan.link.overhead_ms:.2f} ms fixed transport overhead"
        + (
            f"; the link lets {plan.link.burst_bytes:g} bytes of a message through at once"
            if plan.link.burst_bytes
            else ""
        ),
        "",
        *lines,
        "",
        "best cut: " + ", ".join(f"{b} Mbit/s -> {plan.best[b]}" for b in bandwidths),
        "ranges:   " + ", ".join(f"{c} {_range(lo, hi)}" for c, lo, hi in plan.ranges),
    ]
    return "\n".join(notes)


def _range(low: float, high: float | None) -> str:
    return f"from {low:.3g} Mbit/s" if high is None else f"{low:.3g} to {high:.3g} Mbit/s"


def write_plot(plan: Plan, out: str | os.PathLike) -> None:
    """PNG: predicted latency against bandwidth (one line per cut), and bytes against head compute."""
    fig = Figure(figsize=(12, 5), layout="constrained")
    latency, cost = fig.subplots(1, 2)
    rates = np.geomspace(min(plan.bandwidths) / 2, max(plan.bandwidths) * 2, 200)
    for c in plan.candidates:
        assert c.head_total_ms is not None and c.tail_total_ms is not None and c.bytes is not None
        curve = plan.link.latency(c, math.inf) + plan.link.waiting_bytes(c) * 8e-3 / rates
        winner = c.cut_id in plan.best.values()
        latency.plot(rates, curve, "-" if winner else ":", lw=2 if winner else 1, label=c.cut_id)
        latency.plot(plan.bandwidths, [c.predicted_ms[key(b)] for b in plan.bandwidths], "o", ms=3, color="k")
        cost.scatter(100 * c.head_flops_share, c.bytes, s=30)
        cost.annotate(c.cut_id, (100 * c.head_flops_share, c.bytes), textcoords="offset points", xytext=(4, 4))
    for b in plan.bandwidths:
        latency.axvline(b, color="grey", lw=0.5)
    latency.set(xscale="log", yscale="log", xlabel="link rate (Mbit/s)", ylabel="predicted end-to-end latency (ms)")
    latency.set_title("predicted latency per cut (solid: best at some rate)")
    latency.legend(fontsize=7, ncol=2)
    latency.grid(True, which="both", alpha=0.3)
    cost.set(yscale="log", xlabel="share of the model's FLOPs in the head (%)", ylabel="bytes per frame on the wire")
    cost.set_title(f"bytes at {plan.agreement:.0%} agreement against head compute")
    cost.grid(True, which="both", alpha=0.3)
    atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


# -- command line ---------------------------------------------------------------------------------------------


def _check_options(
    count: int,
    agreement: float,
    bandwidths: Sequence[float],
    link: Link,
    timing_frames: int,
    timing_rate: float,
) -> None:
    if count < 1:
        raise PlanError(f"--count must be at least 1, got {count}")
    if not 0.0 < agreement <= 1.0:
        raise PlanError(f"--agreement must be a fraction in (0, 1], e.g. 0.99; got {agreement}")
    if not bandwidths or any(not (0 < b < 1e6) or not math.isfinite(b) for b in bandwidths):
        raise PlanError(f"--bandwidths must be positive Mbit/s values, e.g. 1.1,5.85,18.88,100; got {list(bandwidths)}")
    if not 0 <= link.overhead_ms < 1e4:
        raise PlanError(f"--overhead-ms must be >= 0, got {link.overhead_ms}")
    if not 0 <= link.burst_bytes < 1e9:
        raise PlanError(f"--link-burst must be >= 0 bytes, got {link.burst_bytes}")
    if timing_frames < 1:
        raise PlanError(f"--timing-frames must be at least 1, got {timing_frames}")
    if not 0 <= timing_rate <= 1000:
        raise PlanError(f"--timing-rate must be 0 (back to back) to 1000 frames per second, got {timing_rate}")


def _bandwidths(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise PlanError(
            f"--bandwidths must be numbers separated by commas, e.g. 1.1,5.85,18.88,100; got {text!r}"
        ) from None
    return sorted(set(values))


def _check_output(path: str | None, option: str) -> None:
    if path is not None and (Path(path).is_dir() or not Path(path).absolute().parent.is_dir()):
        raise PlanError(f"{option} {path}: give a file name in an existing folder")


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"[plan] {text}", file=sys.stderr, flush=True)


def build_parser() -> ToolParser:
    parser = ToolParser(prog="plan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the .onnx file to plan for")
    parser.add_argument(
        "--images", help="frames the agreement is measured on: photos:test, generator, a folder, a video, a rosbag2"
    )
    parser.add_argument(
        "--calibration-images", help="frames the ranges are found on, e.g. photos:train (default: --images)"
    )
    parser.add_argument(
        "--count", type=int, default=DEFAULT_COUNT, help=f"frames per candidate (default {DEFAULT_COUNT})"
    )
    parser.add_argument("--agreement", type=float, default=DEFAULT_AGREEMENT, help="top-1 agreement to reach (0.99)")
    parser.add_argument(
        "--bandwidths",
        default=",".join(key(b) for b in DEFAULT_BANDWIDTHS),
        help="link rates in Mbit/s to predict for (default 1.1,5.85,18.88,100)",
    )
    parser.add_argument("--robot-profile", metavar="F", help="robot times from `plan --profile-device F` run there")
    parser.add_argument("--edge-profile", metavar="F", help="edge times from `plan --profile-device F` run there")
    parser.add_argument(
        "--robot-slowdown",
        type=float,
        default=1.0,
        metavar="K",
        help="multiply the robot's times by K: a robot K times slower than its profile (or this machine), when no "
        "profile measured on the real robot exists yet; the output says so (default 1)",
    )
    parser.add_argument(
        "--overhead-ms",
        type=float,
        default=DEFAULT_OVERHEAD_MS,
        help=f"fixed transport overhead (default {DEFAULT_OVERHEAD_MS}: measured by bench pipeline --link)",
    )
    parser.add_argument(
        "--link-burst",
        type=float,
        default=0.0,
        metavar="BYTES",
        help="bytes of a message a token-bucket link lets through at once (the test bed's tbf: 1600; a serial "
        "link: 0, the default)",
    )
    parser.add_argument("--json", metavar="F", help="write the plan as JSON")
    parser.add_argument("--plot", metavar="F", help="write a PNG of predicted latency against bandwidth")
    parser.add_argument("--out", metavar="BUNDLE", help="write a multi-cut bundle of the cuts that win")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    parser.add_argument("--work", metavar="DIR", help="keep each candidate's bundle here (default: a temporary folder)")
    parser.add_argument(
        "--profile-device",
        metavar="OUT",
        help="instead of planning: time every candidate's head and tail on this machine and write a device profile",
    )
    parser.add_argument("--providers", default="cuda,cpu", help="--profile-device: ONNX Runtime providers (cuda,cpu)")
    parser.add_argument("--threads", type=int, default=0, help="--profile-device: intra-op threads (0: default)")
    parser.add_argument(
        "--timing-frames", type=int, default=TIMING_FRAMES, help=f"frames to time on (default {TIMING_FRAMES})"
    )
    parser.add_argument(
        "--timing-rate",
        type=float,
        default=TIMING_RATE_HZ,
        help=f"frames per second while timing, as the camera sends them (default {TIMING_RATE_HZ:g}; 0: back to back)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    add_model_arguments(parser)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    for option in ("json", "plot", "profile_device"):
        _check_output(getattr(args, option), "--" + option.replace("_", "-"))
    if args.out and Path(args.out).exists() and not args.overwrite:
        raise PlanError(f"--out {args.out}: already exists; choose another folder or pass --overwrite")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="splitcomp-plan-"))
    work.mkdir(parents=True, exist_ok=True)
    progress = not args.quiet
    options = ModelOptions.from_args(args)
    try:
        if args.profile_device:
            profile = profile_device(
                args.model,
                work,
                args.images or "generator",
                [p for p in args.providers.split(",") if p],
                args.threads or None,
                args.timing_frames,
                options,
                args.timing_rate,
            )
            atomic_write_text(args.profile_device, json.dumps(profile, indent=1) + "\n")
            print(f"wrote {args.profile_device}: {len(profile['candidates'])} candidates timed on {profile['host']}")
            return 0
        if not args.images:
            raise PlanError("--images is required to plan (frames like the robot's camera sends)")
        plan = make_plan(
            args.model,
            args.images,
            work,
            options,
            count=args.count,
            agreement=args.agreement,
            bandwidths=_bandwidths(args.bandwidths),
            robot_profile=args.robot_profile,
            edge_profile=args.edge_profile,
            link=Link(args.overhead_ms, args.link_burst),
            timing_frames=args.timing_frames,
            timing_rate=args.timing_rate,
            seed=args.seed,
            calibration_images=args.calibration_images,
            robot_slowdown=args.robot_slowdown,
            progress=progress,
        )
        if args.out:
            written = write_bundle_of_winners(plan, args.out, overwrite=args.overwrite)
            print(f"wrote {written.path}: cuts {', '.join(c.cut_id for c in written.cuts)}", file=sys.stderr)
        if args.json:
            atomic_write_text(args.json, json.dumps(plan.to_json(with_bundles=bool(args.work)), indent=1) + "\n")
        if args.plot:
            write_plot(plan, args.plot)
        print(format_table(plan))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools plan`."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
