"""The candidates of a plan: where a model may be cut, each split into its own verified bundle.

Every single-tensor cut that is not dominated on bytes and head compute (another cut with fewer
elements and at most the same FLOPs in the head, within 1 % of the model, is better everywhere),
plus the two extremes: `input` (everything on the edge: the head only preprocesses and the robot
sends the model input) and `output` (everything on the robot: the tail only post-processes and the
robot sends the scores).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
from onnx import helper

from splitcomp_core.bundle import DYNAMIC, Bundle, QuantizationSpec, TensorSpec, load_bundle, write_bundle
from splitcomp_core.errors import SplitcompError
from splitcomp_tools.model.analyze import Analysis
from splitcomp_tools.model.answers import Stats
from splitcomp_tools.model.graph.dynamic_batch import make_batch_dynamic
from splitcomp_tools.model.split import Preprocessing, split_model

FLOPS_TOLERANCE = 0.01  # head FLOPs shares closer than this (of the whole model) count as equal compute
EDGE_ONLY, ROBOT_ONLY = "input", "output"


class PlanError(SplitcompError, ValueError):
    """A plan that cannot be made: bad options, a profile of another model, no candidate."""


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """How to split the model into bundles: split's options (labels, preprocessing, the output, --rebase-batch, ...)."""

    preprocessing: Preprocessing | Mapping[str, Any] | None = None  # None or the fields given: what export recorded
    labels: str | None = None
    output: str | None = None
    output_kind: str = "auto"
    rebase_batch: bool = False
    dynamic_batch: bool = False


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
    agreement: float | None = None  # (a) of the chosen encoding: top-1 agreement on all frames
    stats: Stats | None = None  # the chosen encoding's (a), (b) confident frames, (c) top-5 overlap
    jpeg_stats: Stats | None = None  # the same for JPEG-95 of the full frame, on the same frames
    head_ms: float | None = None  # ONNX Runtime, on the robot
    tail_ms: float | None = None  # ONNX Runtime, on the edge
    head_total_ms: float | None = None  # preprocess + ONNX Runtime + encode, on the robot
    tail_total_ms: float | None = None  # decode + ONNX Runtime + top-k, on the edge
    predicted_ms: dict[str, float] = dataclasses.field(default_factory=dict)
    head_total_alone_ms: float | None = None  # the head's whole stage timed alone (no tail, camera or DDS running)
    tail_total_alone_ms: float | None = None  # the tail's, likewise
    failed: str | None = None  # why its deployed run gave no times (then it is reported, never picked)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["bundle"] = str(self.bundle) if self.bundle else None
        data["stats"] = self.stats.to_json() if self.stats else None
        data["jpeg_stats"] = self.jpeg_stats.to_json() if self.jpeg_stats else None
        return data


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
            dynamic_batch=options.dynamic_batch,
        )
        c.bundle, like = bundle.path, like or bundle
    if like is None and extremes:
        raise PlanError(f"{model}: no single-tensor cut to split at; `analyze {model}` lists the cuts")
    for c in extremes:
        assert like is not None
        c.bundle = _extreme_bundle(model, like, c.cut_id, work / c.cut_id, options.dynamic_batch).path
        c.tensors = [t.name for t in load_bundle(c.bundle).manifest.cut]


def _extreme_bundle(model: Path, like: Bundle, cut_id: str, out: Path, dynamic_batch: bool) -> Bundle:
    """`input`: head = identity, tail = the model; `output`: head = the model, tail = identity.

    With `dynamic_batch` the model is given a dynamic batch as the split of `like` gave it.
    """
    full = onnx.load(str(model))
    if dynamic_batch:
        make_batch_dynamic(full)
    m = like.manifest
    crossing = _extreme_tensors(full, like, cut_id)
    values = [
        helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["N" if d == DYNAMIC else d for d in shape])
        for name, shape in crossing
    ]
    graph = helper.make_graph([], f"{cut_id}_identity", values, values)
    identity = helper.make_model(graph, opset_imports=list(full.opset_import))
    identity.ir_version = full.ir_version
    parts = (identity, full) if cut_id == EDGE_ONLY else (full, identity)
    head, tail = (p.SerializeToString() for p in parts)
    what = "the head only preprocesses" if cut_id == EDGE_ONLY else "the tail only post-processes"
    manifest = dataclasses.replace(
        m,
        cut=[TensorSpec(name, list(shape), "float32") for name, shape in crossing],
        quantization=QuantizationSpec(),
        verification={"max_abs_diff": 0.0, "relative_diff": 0.0, "samples": 0, "exact": f"{what} (identity)"},
        created_by="splitcomp_tools plan",
    )
    return write_bundle(out, head, tail, manifest, like.labels, overwrite=True)


def _extreme_tensors(full: onnx.ModelProto, like: Bundle, cut_id: str) -> list[tuple[str, list[int]]]:
    """What crosses at an extreme: the model input, or the outputs the tail reads (a detector's every decoder
    output, with its shape as the full model declares it; else the score tensor)."""
    m = like.manifest
    if cut_id == EDGE_ONLY:
        return [(m.input.name, list(m.input.shape))]
    if m.detection is None:
        return [(m.output.name, list(m.output.shape))]
    declared = {
        o.name: [d.dim_value if d.HasField("dim_value") else DYNAMIC for d in o.type.tensor_type.shape.dim]
        for o in full.graph.output
    }
    return [(name, declared[name]) for name in m.detection.outputs.values()]


def prepare_candidates(model: Path, analysis: Analysis, work: Path, options: ModelOptions) -> list[Candidate]:
    """The candidates of `candidate_cuts`, each split into its own bundle in `work`."""
    graph_outputs = onnx.load(str(model), load_external_data=False).graph.output
    wanted = options.output or graph_outputs[0].name
    declared = next((o for o in graph_outputs if o.name == wanted), graph_outputs[0]).type.tensor_type.shape.dim
    output_shape = [d.dim_value if d.HasField("dim_value") else 1 for d in declared]
    candidates = candidate_cuts(analysis, output_shape)
    build_bundles(model, candidates, work, options)
    return candidates
