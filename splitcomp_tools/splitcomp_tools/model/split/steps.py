"""split_model: cut an ONNX model at named tensors into a verified bundle (head.onnx, tail.onnx, manifest).

The robot and the edge server only ever see the bundle, so it must be right by construction: the
cut is proved valid (the tail needs nothing but the cut tensors and constants), head and tail are
extracted from the model's own nodes and weights, and head followed by tail is compared with the
full model in ONNX Runtime on random inputs and on real images before anything is written. A split
that fails any step leaves no files behind. Each step below is one function, in the order they run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

import splitcomp_tools.model.split.parts as parts
import splitcomp_tools.model.split.spec as spec
from splitcomp_core.bundle import (
    DYNAMIC,
    FORMAT_VERSION,
    Bundle,
    InputSpec,
    Manifest,
    OutputSpec,
    QuantizationSpec,
    TensorSpec,
    write_bundle,
)
from splitcomp_core.detection import DecoderSettings
from splitcomp_core.detection.centerface import DEFAULTS as CENTERFACE_DEFAULTS
from splitcomp_core.detection.centerface import OUTPUTS as CENTERFACE_OUTPUTS
from splitcomp_core.postprocess import load_labels
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.metadata import recorded_labels, recorded_preprocessing, recorded_task
from splitcomp_tools.model.split.batchable import batchable_model, check_batchable
from splitcomp_tools.model.split.spec import OUTPUT_KINDS, Preprocessing, SplitError
from splitcomp_tools.model.split.verify import TOLERANCE, Verification, image_inputs, random_inputs, verify


@dataclass(frozen=True)
class _Source:
    """The model as the split sees it: structure (weights left on disk), graph, input spec, fixed input shape."""

    path: str | os.PathLike
    structure: onnx.ModelProto
    g: gr.Graph
    input: InputSpec
    fixed: Mapping[str, tuple[int, ...]]


def split_model(
    model_path: str | os.PathLike,
    cut: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    preprocessing: Preprocessing | Mapping[str, Any] | None = None,
    labels_path: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    random_samples: int = 4,
    output_name: str | None = None,
    output_kind: str = "auto",
    overwrite: bool = False,
    rebase_batch: bool = False,
    dynamic_batch: bool = False,
    task: str | None = None,
) -> tuple[Bundle, Verification]:
    """Split the model at `cut`, verify head∘tail against it, and write the bundle to `out_dir`.

    `output_kind` says whether the output is "logits" (the tail applies a softmax) or already
    "probabilities"; "auto" looks for a Softmax that produces it. Cut and output shapes are
    measured in ONNX Runtime and recorded concretely (only a batch dim of a dynamic-batch model
    stays DYNAMIC); the head must compute exactly those during verification. `rebase_batch`
    first lets reads of the input's batch size come from the feature tensor they meet
    (`graph.rebase_batch_reads`), so cuts before an `x.view(x.size(0), -1)` exist. A model that
    `export` gave class names and preprocessing (its metadata_props) uses them unless `labels_path`
    or `preprocessing` says otherwise; a mapping for `preprocessing` holds only the fields to change.
    `dynamic_batch` splits a static-batch model as if exported with a dynamic batch
    (`split.batchable`), so head and tail take any batch and the manifest records it as -1.
    `task` ("classification" or "detection") overrides what export recorded; a detection model without
    a recorded decoder gets CenterFace's, its four outputs read in the graph's order.
    """
    out = Path(out_dir)
    _check_request(model_path, out, overwrite, output_kind, random_samples)
    with batchable_model(model_path, dynamic_batch) as path:
        source = _load(path, preprocessing, rebase_batch)
        check_batchable(model_path, path, source.input.name, source.fixed[source.input.name])
        parts.check_cut(source.g, cut)
        detection = _detection(source, task)
        output = spec.output_name(source.g, output_name if detection is None else detection.outputs["heatmap"])
        types = _measure(source, cut)
        labels, output_shape = _labels(source, output, types, labels_path, channels=detection is not None)
        samples = random_inputs(source.fixed[source.input.name], random_samples)
        images = image_inputs(Path(images_dir), source.input) if images_dir is not None else []
        if not samples and not images:
            raise SplitError("nothing to verify on: give random samples > 0 or --images")
        head_bytes, tail_bytes = _extract(source, cut, types)
        verification = verify(str(model_path), head_bytes, tail_bytes, source.input.name, samples, images)
        _check_verification(verification, {t: [1 if d == DYNAMIC else d for d in types[t].shape] for t in cut}, out)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model_id="",
            source=str(model_path),
            cut=[TensorSpec(t, list(types[t].shape), types[t].dtype) for t in cut],
            input=source.input,
            output=OutputSpec(
                output,
                output_shape,
                "probabilities"
                if detection is not None and output_kind == "auto"
                else spec.output_kind(source.g, output)
                if output_kind == "auto"
                else output_kind,
            ),
            # zstd, not none: it was smaller on every measured set, and P-frames only pay through a compressing codec
            quantization=QuantizationSpec(codec="zstd"),
            verification=verification.to_manifest(),
            created_by="splitcomp_tools split",
            task="detection" if detection is not None else "classification",
            detection=detection,
        )
        bundle = write_bundle(out, head_bytes, tail_bytes, manifest, labels, overwrite=overwrite)
        return bundle, verification


def _check_request(
    model_path: str | os.PathLike, out: Path, overwrite: bool, output_kind: str, random_samples: int
) -> None:
    """Refuse, before reading the model, a destination or an option the split cannot honour."""
    if out.resolve() == Path.cwd().resolve():
        raise SplitError(f"{out}: is the current directory; name a directory for the bundle, e.g. --out bundle")
    if Path(model_path).resolve().is_relative_to(out.resolve()):
        raise SplitError(f"{out}: holds the model {model_path}, which writing the bundle there would delete")
    if out.exists() and not overwrite:
        raise SplitError(f"{out}: already exists; choose another --out or pass --overwrite")
    if output_kind not in OUTPUT_KINDS:
        raise SplitError(f"output kind must be one of {', '.join(OUTPUT_KINDS)}, got {output_kind!r}")
    if random_samples < 0:
        raise SplitError(f"random samples must be >= 0, got {random_samples}")


def _load(
    model_path: str | os.PathLike, preprocessing: Preprocessing | Mapping[str, Any] | None, rebase_batch: bool
) -> _Source:
    """The model's structure and graph, its input spec (given preprocessing over what export recorded)."""
    structure = gr.load_model(model_path)
    g = gr.build_graph(structure)
    if not isinstance(preprocessing, Preprocessing):
        preprocessing = Preprocessing(**{**recorded_preprocessing(structure), **(preprocessing or {})})
    input_spec = spec.input_spec(structure, g, preprocessing)
    fixed = {input_spec.name: (1, 3, input_spec.height, input_spec.width)}
    if rebase_batch and gr.rebase_batch_reads(model_path, structure, fixed):
        g = gr.build_graph(structure)
    return _Source(model_path, structure, g, input_spec, fixed)


def _measure(source: _Source, cut: Sequence[str]) -> dict[str, gr.TensorType]:
    """Types of the cut and the outputs as ONNX Runtime computes them; the cut must be float features."""
    dynamic = source.input.shape[0] == DYNAMIC
    g = source.g
    types = gr.measure_types(source.path, source.structure, [*cut, *g.outputs], source.fixed, dynamic_batch=dynamic)
    for t in cut:
        if t not in types or types[t].dtype not in parts.CUT_DTYPES:
            found = types[t].dtype if t in types else "not a plain tensor"
            raise SplitError(
                f"cut tensor '{t}' is {found}; the feature codec sends {' or '.join(parts.CUT_DTYPES)} "
                f"tensors only, so pick a cut through float features"
            )
    return types


def _detection(source: _Source, task: str | None) -> DecoderSettings | None:
    """The detection section: `task` (else what export recorded); None for a classification."""
    recorded, section = recorded_task(source.structure)
    if (task or recorded) != "detection":
        return None
    if section is None:
        outputs = list(source.g.outputs)
        if len(outputs) != len(CENTERFACE_OUTPUTS):
            raise SplitError(
                f"--task detection: the model records no decoder, and CenterFace's needs {len(CENTERFACE_OUTPUTS)} "
                f"outputs ({', '.join(CENTERFACE_OUTPUTS)}); the model has {len(outputs)}"
            )
        section = {"decoder": "centerface", "outputs": dict(zip(CENTERFACE_OUTPUTS, outputs)), **CENTERFACE_DEFAULTS}
    try:
        return DecoderSettings(**section)
    except TypeError as exc:
        raise SplitError(f"{source.path}: the recorded detection section is not one split knows ({exc})") from None


def _labels(
    source: _Source,
    output: str,
    types: Mapping[str, gr.TensorType],
    labels_path: str | os.PathLike | None,
    channels: bool = False,
) -> tuple[list[str] | None, list[int]]:
    """The class names (given, else recorded by export) and the output shape; their counts must agree.

    A detection heatmap (`channels`) holds a class per channel, a class-score output one per last element.
    """
    labels = load_labels(labels_path) if labels_path is not None else recorded_labels(source.structure)
    output_shape = spec.output_shape(source.structure, output, types)
    classes = output_shape[1 if channels else -1]
    if labels is not None and classes != DYNAMIC and len(labels) != classes:
        given = labels_path if labels_path is not None else f"the class names recorded in {source.path}"
        raise SplitError(f"{given}: {len(labels)} labels, but the model outputs {classes} classes")
    return labels, output_shape


def _extract(source: _Source, cut: Sequence[str], types: Mapping[str, gr.TensorType]) -> tuple[bytes, bytes]:
    """head.onnx and tail.onnx as bytes, typed with the measured shapes; the full weights are loaded only here."""
    infos = parts.value_infos(source.structure, source.g, cut, types)
    full = onnx.load(str(source.path))
    head, tail = parts.make_parts(full, source.g, cut, infos)
    del full
    return parts.serialised(head, "head"), parts.serialised(tail, "tail")


def _check_verification(verification: Verification, expected: Mapping[str, list[int]], out: Path) -> None:
    """Refuse a split whose head computes other cut shapes than measured, or whose outputs differ from the model's."""
    for name, shape in verification.cut_shapes.items():
        if shape != expected[name]:
            raise SplitError(
                f"the head computes cut tensor '{name}' as {shape}, but its measured shape is {expected[name]}; "
                f"refusing to write {out}"
            )
    if verification.nan_mismatch:
        raise SplitError(
            f"the full model or head + tail produce NaN where the other does not (output "
            f"{', '.join(verification.nan_mismatch)}), so the split does not compute what the model does; "
            f"refusing to write {out}"
        )
    if not verification.relative_diff <= TOLERANCE:  # also refuses NaN
        raise SplitError(
            f"head + tail differ from the full model by {verification.max_abs_diff:.3g} "
            f"({verification.relative_diff:.3g} of the output range, allowed {TOLERANCE}); refusing to write "
            f"{out} (is a node non-deterministic or does the model depend on its batch?)"
        )
