"""Every cut of a bundle loaded at once: the head encodes with the cut it is told to, the tail answers any cut.

A multi-cut bundle is only useful if switching costs nothing at run time, so both sides create all
their ONNX Runtime sessions at start-up; a switch is then the choice of another dictionary entry
between two frames. A single-cut bundle is the case of one cut whose cut_id is "".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from splitcomp_core.bundle import Bundle
from splitcomp_core.codec import EncodedTensor, packed_size_for
from splitcomp_core.head import HeadPipeline, HeadResult
from splitcomp_core.interframe import Reference
from splitcomp_core.link import DEFAULT_OVERHEAD_MS, MESSAGE_FRAMING_BYTES, CutRange, CutSwitcher
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import Decoded, FeaturesRejected, Session, TailPipeline, TailResult

ENCODER_FIELDS = tuple(f.name for f in dataclasses.fields(EncoderConfig))


def switcher_for(bundle: Bundle) -> CutSwitcher:
    """A CutSwitcher over the bundle's cuts and bandwidth ranges (one open range for a single-cut bundle)."""
    if not bundle.cuts:
        return CutSwitcher([CutRange(bundle.cut_id, 0.0, None, _planned_bytes(bundle, {}))])
    ranges = [CutRange(c.cut_id, c.min_mbps, c.max_mbps, _planned_bytes(c.bundle, c.info)) for c in bundle.cuts]
    return CutSwitcher(
        ranges,
        overhead_ms=float(bundle.link.get("feedback_overhead_ms", DEFAULT_OVERHEAD_MS)),
        burst_bytes=float(bundle.link.get("burst_bytes", 0.0)),
        framing_bytes=float(bundle.link.get("framing_bytes", MESSAGE_FRAMING_BYTES)),
    )


def _planned_bytes(bundle: Bundle, info: Mapping[str, Any]) -> float:
    """Bytes per frame as `plan` measured them, else the packed size at the bundle's own bits."""
    if isinstance(info.get("bytes"), (int, float)):
        return float(info["bytes"])
    bits = bundle.manifest.quantization.bits
    sizes = [packed_size_for(int(abs(math.prod(t.shape))), bits) for t in bundle.manifest.cut]
    return float(sum(sizes))


class HeadCuts:
    """One HeadPipeline per cut, each with its own encoder defaults (what `plan` or `calibrate` chose for it).

    Encoder fields set by the user (`overrides`: EncoderConfig field names) apply over every cut's own defaults.
    """

    def __init__(self, bundle: Bundle, overrides: Mapping[str, Any] | None = None, **pipeline_options: Any) -> None:
        self.bundle = bundle
        self.pipelines = {b.cut_id: HeadPipeline(b, **pipeline_options) for b in bundle.all_cuts()}
        self.overrides: dict[str, Any] = {}
        self.warnings = self.configure(overrides or {})

    def configure(self, changes: Mapping[str, Any]) -> list[str]:
        """Apply encoder field changes to every cut, all or none (a value one cut refuses changes no cut)."""
        unknown = set(changes) - set(ENCODER_FIELDS)
        if unknown:
            raise ValueError(f"not encoder settings: {sorted(unknown)}")
        overrides = {**self.overrides, **changes}
        configs = {
            cut_id: dataclasses.replace(EncoderConfig.from_manifest(p.bundle.manifest.quantization), **overrides)
            for cut_id, p in self.pipelines.items()
        }
        for config in configs.values():
            config.validated()
        warnings = [w for cut_id, p in self.pipelines.items() for w in p.configure(configs[cut_id])]
        self.overrides = overrides
        return warnings

    def __call__(self, cut_id: str, image: Any, encoding: str = "rgb8") -> HeadResult:
        return self.pipelines[cut_id](image, encoding)


class TailCuts:
    """One TailPipeline per cut; a message is answered by the pipeline of the cut_id it names."""

    def __init__(self, bundle: Bundle, sessions: Mapping[str, Session] | None = None, **pipeline_options: Any) -> None:
        """`sessions` (by cut_id) replace the cuts' own ONNX Runtime sessions (a Triton model per cut)."""
        self.bundle = bundle
        self.pipelines = {
            b.cut_id: TailPipeline(b, session=(sessions or {}).get(b.cut_id), **pipeline_options)
            for b in bundle.all_cuts()
        }

    def set_top_k(self, top_k: int) -> None:
        for pipeline in self.pipelines.values():
            pipeline.top_k = top_k

    def pipeline(self, cut_id: str) -> TailPipeline:
        """The pipeline of the cut a message names; FeaturesRejected `cut_id` for any other."""
        pipeline = self.pipelines.get(cut_id)
        if pipeline is None:
            known = ", ".join(repr(c) for c in self.pipelines)
            raise FeaturesRejected(
                "cut_id", f"cut_id {cut_id[:64]!r} is not a cut of this bundle ({known}): head and tail bundles differ"
            )
        return pipeline

    def decode(
        self,
        cut_id: str,
        model_id: str,
        tensors: Sequence[EncodedTensor],
        reference_sequence: int = 0,
        reference: Reference | None = None,
    ) -> Decoded:
        return self.pipeline(cut_id).decode(model_id, tensors, reference_sequence, reference)

    def __call__(
        self,
        cut_id: str,
        model_id: str,
        tensors: Sequence[EncodedTensor],
        reference_sequence: int = 0,
        reference: Reference | None = None,
    ) -> TailResult:
        return self.pipeline(cut_id)(model_id, tensors, reference_sequence, reference)
