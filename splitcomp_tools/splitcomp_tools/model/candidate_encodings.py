"""What each candidate of a plan needs on the wire: the smallest encoding (bits x range method x codec)
that meets calibrate's rule at the target (model.calibration.Calibration.meeting), measured by calibrate on the frames
through HeadPipeline and TailPipeline, and its bytes per frame (codes plus the quantization's scale
and offset); and the old rule's cut at calibrate's default encoding, for comparison.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from splitcomp_core.bundle import TensorSpec, load_bundle, update_quantization
from splitcomp_tools.model.agreement import describe_rule
from splitcomp_tools.model.calibrate import calibrate
from splitcomp_tools.model.calibration import Calibration, InsufficientFrames
from splitcomp_tools.model.candidates import Candidate, PlanError
from splitcomp_tools.model.encodings import Result
from splitcomp_tools.model.video import CODECS

Say = Callable[[str], None]  # told each step of a long run, for a progress line


def smallest_encoding(calibration: Calibration, agreement: float) -> Result:
    """The fewest bytes on the wire among the encodings (not JPEG) that meet calibrate's rule at `agreement`:
    the lower bound on confident frames reaches it, and all frames agree no less often than with JPEG-95."""
    try:
        options = calibration.meeting(agreement)
    except InsufficientFrames as exc:
        raise PlanError(f"{calibration.bundle.name}: {exc}") from None
    if not options:
        raise PlanError(
            f"{calibration.bundle}: no encoding meets the rule at {agreement:g} ({describe_rule(agreement)}), not even raw floats"
        )
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
    say: Say | None = None,
    calibration_images: str | None = None,
    confidence: float | None = None,
    video_codecs: Sequence[str] = CODECS,
) -> dict[str, Calibration]:
    """Calibrate every candidate and store its smallest sufficient encoding; the calibrations.

    Ranges come from `calibration_images` (default: `images`), agreement and bytes from `images`;
    `say` is told which candidate is being measured. JPEG's and the video codecs' rows are measured with the
    first candidate and shared: every cut answers them with the whole model, on the same frames.
    """
    calibrations: dict[str, Calibration] = {}
    for c in candidates:
        assert c.bundle is not None
        if say is not None:
            say(f"{c.cut_id}: measuring encodings on {count} frames from {images}")
        calibration = calibrate(
            c.bundle,
            calibration_images or images,
            count,
            seed=seed,
            eval_images=images if calibration_images else None,
            confidence=confidence,
            video_codecs=video_codecs,
            baselines=next(iter(calibrations.values())).baselines() if calibrations else None,
        )
        chosen = smallest_encoding(calibration, agreement)
        update_quantization(c.bundle, calibration.with_default(chosen).quantization)
        c.bits, c.quantization, c.codec = chosen.bits, chosen.method, chosen.codec
        c.bytes = wire_bytes(chosen, load_bundle(c.bundle).manifest.cut)
        c.agreement, c.stats, c.jpeg_stats = chosen.agreement, chosen.stats, calibration.jpeg_reference().stats
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
    """The old rule's deployment for comparison: its cut at calibrate's default encoding (4 bits, least error).
    No video rows: they only judge a target agreement, and the old rule has none (they cost minutes per plan)."""
    if heuristic is None or heuristic.bundle is None:
        return None
    out = work / "old_rule"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(heuristic.bundle, out)
    calibration = calibrations.get(heuristic.cut_id) or calibrate(
        out,
        calibration_images or images,
        count,
        seed=seed,
        eval_images=images if calibration_images else None,
        video_codecs=(),
    )
    update_quantization(out, calibration.quantization)
    return out
