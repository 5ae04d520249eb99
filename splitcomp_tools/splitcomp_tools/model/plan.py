"""plan: where to cut a model, at how many bits, for which link: measured on the model, the frames and the devices.

A user's question is: with this model, robot, edge server and Wi-Fi, where do I cut, at how many
bits, and what latency will I get? The answer changes with the link. `plan` measures it:

1. Candidates: every single-tensor cut that is not dominated on bytes and head compute (another cut
   with fewer elements and at most the same FLOPs in the head, within 1 % of the model, is better
   everywhere), plus the two extremes: `input` (everything on the edge: the head only preprocesses
   and the robot sends the model input) and `output` (everything on the robot: the tail only
   post-processes and the robot sends the scores).
2. Per candidate, on the frames: the smallest encoding (bits x range method x codec) that meets
   calibrate's rule at `--agreement`: the 95 % Wilson lower bound of its top-1 agreement with the
   unsplit model on confident frames (unsplit top-1 probability >= `--confidence`) reaches it, and its
   top-1 agreement on all frames is no worse than the highest of JPEG-95 of the full frame's and that of
   every H.264 of the camera frame sending at least as many bytes (point estimates; JPEG's and the video
   codecs' rows are measured once, on the same frames, and printed beside the candidates); too
   few confident frames for the target (0.99 needs 381) is an error, never a choice on a point
   estimate. Measured by calibrate through HeadPipeline and TailPipeline; its bytes per frame on the wire (codes plus the
   quantization's scale and offset), then the head's and the tail's median times through the same
   pipelines the nodes run, all candidates frame by frame in turn so machine load hits them alike.
3. Per bandwidth B: predicted latency = robot head time + bytes x 8 / B + edge tail time + the
   transport overhead. The robot's and the edge's times come from device profiles (`plan
   --profile-device`, run once on each machine); without them this machine's times, measured alone,
   stand for both, and the output says so; the overhead is fixed (measured on the test bed by
   `bench pipeline --link`). With `--deployed` the stage times come from the candidates run as deployed
   (model/deployed.py) and the overhead is fitted to those runs' bytes (model/overhead.py); `--refine`
   then picks by measurement where the prediction is too close to call (model/refine.py).

`--out` writes a multi-cut bundle (format_version 2) of the cuts that win at some of the given
bandwidths, each with the planned encoding and the range of rates where it wins (between two
winners the boundary is where their predictions cross), for the head's `bandwidth_mbps`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from splitcomp_core.bundle import Bundle, CutChoice, load_bundle, write_multi_cut_bundle
from splitcomp_core.errors import SplitcompError
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE, DEPENDENCE_NOTE, check_enough_frames
from splitcomp_tools.model.analyze import Analysis, analyze_model
from splitcomp_tools.model.candidate_encodings import Say, encode_candidates, old_rule_bundle
from splitcomp_tools.model.candidates import (
    Candidate,
    ModelOptions,
    PlanError,
    build_bundles,
    candidate_cuts,
    prepare_candidates,
)
from splitcomp_tools.model.cut_choice import choose_cut
from splitcomp_tools.model.deployed import MeasureDeployed, apply_deployed
from splitcomp_tools.model.devices import TIMING_FRAMES, TIMING_RATE_HZ, measure_times, read_profile
from splitcomp_tools.model.encodings import Result
from splitcomp_tools.model.latency import Link, bandwidth_ranges, key, predict
from splitcomp_tools.model.overhead import OverheadFit
from splitcomp_tools.model.refine import REFINE_TOP, MeasureAtRate, refine
from splitcomp_tools.model.video import CODECS

DEFAULT_BANDWIDTHS = (1.1, 5.85, 18.88, 100.0)
DEFAULT_AGREEMENT = 0.99
DEFAULT_COUNT = 200
Times = dict[str, dict[str, float]]  # per cut_id: head_ms, head_total_ms, tail_ms, tail_total_ms
ALONE = "measured alone (each stage in turn, nothing else running; --deployed measures them with both sides at work)"


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
    confidence: float = DEFAULT_CONFIDENCE
    baselines: list[Result] = dataclasses.field(default_factory=list)  # JPEG, H.264, H.265 of the same frames
    stage_times: str = ALONE  # ALONE, or where they were measured as deployed
    refined: dict[str, dict[str, Any]] | None = None  # plan --refine: what was measured per rate

    def to_json(self, with_bundles: bool = True) -> dict[str, Any]:
        """The plan as JSON; `with_bundles` False leaves out the candidate bundles' paths (a removed temp folder)."""
        candidates = [c.to_json() for c in self.candidates]
        for c in candidates:
            c["link_bytes"] = None if c["bytes"] is None else self.link.on_link(c["bytes"])
        for c in candidates if not with_bundles else []:
            c["bundle"] = None
        return {
            "model": self.model,
            "images": self.images,
            "frames": self.frames,
            "agreement": self.agreement,
            "confidence": self.confidence,
            "dependence_note": DEPENDENCE_NOTE,
            "bandwidths_mbps": self.bandwidths,
            "transport_overhead_ms": self.link.overhead_ms,
            "transport_overhead": overhead_json(self.link),
            "stage_times": self.stage_times,
            "refined": self.refined,
            "link_burst_bytes": self.link.burst_bytes,
            "link_framing_bytes": self.link.framing_bytes,
            "profiles": self.profiles,
            "candidates": candidates,
            "best": self.best,
            "heuristic": self.heuristic,
            "old_rule_bundle": self.old_rule_bundle if with_bundles else None,
            "bandwidth_ranges": [{"cut_id": c, "min": lo, "max": hi} for c, lo, hi in self.ranges],
            "baselines": [r.to_json() for r in self.baselines],
        }


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
    say: Say | None = None,
    calibration_images: str | None = None,
    robot_slowdown: float = 1.0,
    confidence: float | None = None,
    video_codecs: Sequence[str] = CODECS,
    deployed: MeasureDeployed | None = None,
) -> Plan:
    """Candidates, their encodings, times and predictions (bundles stay in `work`); `say` is told each long step.
    With `deployed`, stage times and overhead come from the candidates run as deployed (times alone kept beside)."""
    link = link or Link()
    _check_options(count, agreement, bandwidths, link, timing_frames, timing_rate)
    too_few = check_enough_frames(images, count, agreement)
    if too_few is not None:
        raise PlanError(too_few)
    _check_sides(robot_slowdown, deployed is not None and bool(robot_profile or edge_profile or robot_slowdown != 1))
    model, options = Path(model), options or ModelOptions()
    analysis = analyze_model(model, rebase_batch=options.rebase_batch)
    candidates = prepare_candidates(model, analysis, work, options)
    given = {
        side: read_profile(path, candidates)
        for side, path in (("robot", robot_profile), ("edge", edge_profile))
        if path
    }
    calibrations = encode_candidates(
        candidates, images, count, agreement, seed, say, calibration_images, confidence, video_codecs
    )
    first = next(iter(calibrations.values()))
    if len(given) < 2 and say is not None:  # this machine's times stand for a side without a profile
        say(f"timing {len(candidates)} candidates on {timing_frames} frames")
    here = measure_times(candidates, images, timing_frames, seed=seed, rate_hz=timing_rate)[0] if len(given) < 2 else {}
    _times_alone(candidates, given.get("robot", here), given.get("edge", here), robot_slowdown)
    stage_times = ALONE
    if deployed is not None:
        if say is not None:
            say(f"running {len(candidates)} candidates as deployed")
        measured = deployed(candidates)
        link = Link.from_fit(apply_deployed(candidates, measured, link), link)
        stage_times = f"measured as deployed, on {measured.where}"
    best = predict_usable(candidates, bandwidths, link)
    heuristic = _heuristic(analysis, candidates)
    old_cut = _old_rule_cut(heuristic, analysis, candidates, model, work, options)
    old_rule = old_rule_bundle(old_cut, calibrations, work, images, count, seed, calibration_images)
    this_machine = f"this machine ({platform.node()}, measured now)"
    return Plan(
        model=str(model),
        images=images,
        frames=first.frames,
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
        confidence=first.confidence,
        baselines=first.baselines(),
        stage_times=stage_times,
    )


def _old_rule_cut(
    heuristic: str | None,
    analysis: Any,
    candidates: Sequence[Candidate],
    model: Path,
    work: Path,
    options: ModelOptions,
) -> Candidate | None:
    """The old rule's cut; split on its own when it is dominated, so not a candidate."""
    old_cut = next((c for c in candidates if c.cut_id == heuristic), None)
    if old_cut is None and heuristic is not None:
        old_cut = next(c for c in candidate_cuts(analysis, [1], prune=False) if c.cut_id == heuristic)
        build_bundles(model, [old_cut], work / "dominated", options)
    return old_cut


def _times_alone(candidates: Sequence[Candidate], robot: Times, edge: Times, robot_slowdown: float) -> None:
    """Each candidate's times from the robot's and the edge's (profiles or this machine), also kept as alone."""
    for c in candidates:
        c.head_ms = robot[c.cut_id]["head_ms"] * robot_slowdown
        c.head_total_ms = c.head_total_alone_ms = robot[c.cut_id]["head_total_ms"] * robot_slowdown
        c.tail_ms, c.tail_total_ms = edge[c.cut_id]["tail_ms"], edge[c.cut_id]["tail_total_ms"]
        c.tail_total_alone_ms = c.tail_total_ms


def predict_usable(candidates: Sequence[Candidate], bandwidths: Sequence[float], link: Link) -> dict[str, str]:
    """Every candidate's predictions; the best per bandwidth among those that did not fail (all, if all failed)."""
    predict(candidates, bandwidths, link)
    return predict([c for c in candidates if c.failed is None] or list(candidates), bandwidths, link)


def refine_plan(plan: Plan, measure: MeasureAtRate, top: int = REFINE_TOP) -> None:
    """`plan --refine`: the picks too close to call measured per rate (model/refine.py); the ranges follow."""
    plan.refined = refine(plan.candidates, plan.bandwidths, plan.best, plan.link, measure, top)
    plan.ranges = bandwidth_ranges(plan.candidates, plan.bandwidths, plan.best, plan.link)


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
    link: dict[str, Any] = {"transport_overhead_ms": plan.link.overhead_ms, "burst_bytes": plan.link.burst_bytes}
    link["framing_bytes"] = plan.link.framing_bytes  # the head's rate estimate counts what the plan counted
    if plan.link.fit is not None:
        fit = plan.link.fit
        link["transport_overhead_per_kb_ms"] = fit.per_kb_ms
        link["transport_overhead_fit"] = {k: getattr(fit, k) for k in ("samples", "rms_ms", "max_residual_ms")}
    summary = {"agreement": plan.agreement, "images": plan.images, "frames": plan.frames, "profiles": plan.profiles}
    summary["stage_times"] = plan.stage_times
    return write_multi_cut_bundle(out, choices, default, link, plan.model, summary, overwrite=overwrite)


def overhead_json(link: Link) -> dict[str, Any]:
    """The plan's transport overhead: the fit and its error, or the fixed value (`samples` 0)."""
    if link.fit is not None:
        return {**link.fit.to_json(), "fitted": True}
    return {**OverheadFit(link.overhead_ms).to_json(), "fitted": False}


def _check_sides(robot_slowdown: float, deployed_and_profiled: bool) -> None:
    if not 0.01 <= robot_slowdown <= 1000:
        raise PlanError(f"--robot-slowdown must be between 0.01 and 1000, got {robot_slowdown}")
    if deployed_and_profiled:
        raise PlanError(
            "--deployed measures both sides here: leave out --robot-profile, --edge-profile, --robot-slowdown"
        )


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
    if not 0.0 < agreement < 1.0:
        raise PlanError(f"--agreement must be a fraction above 0 and below 1, e.g. 0.99; got {agreement}")
    if not bandwidths or any(not (0 < b < 1e6) or not math.isfinite(b) for b in bandwidths):
        raise PlanError(f"--bandwidths must be positive Mbit/s values, e.g. 1.1,5.85,18.88,100; got {list(bandwidths)}")
    if not 0 <= link.overhead_ms < 1e4:
        raise PlanError(f"--overhead-ms must be >= 0, got {link.overhead_ms}")
    if not 0 <= link.burst_bytes < 1e9:
        raise PlanError(f"--link-burst must be >= 0 bytes, got {link.burst_bytes}")
    if not 0 <= link.framing_bytes <= 65_536:
        raise PlanError(f"--link-framing must be 0 to 65536 bytes per message, got {link.framing_bytes}")
    if timing_frames < 1:
        raise PlanError(f"--timing-frames must be at least 1, got {timing_frames}")
    if not 0 <= timing_rate <= 1000:
        raise PlanError(f"--timing-rate must be 0 (back to back) to 1000 frames per second, got {timing_rate}")
