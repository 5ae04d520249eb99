"""split: cut an ONNX model at named tensors into a verified bundle (head.onnx, tail.onnx, manifest).

The robot and the edge server only ever see the bundle, so it must be right by construction: the
cut is proved valid (the tail needs nothing but the cut tensors and constants), head and tail are
extracted from the model's own nodes and weights, and head followed by tail is compared with the
full model in ONNX Runtime on random inputs and on real images before anything is written. A split
that fails any step leaves no files behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from splitcomp_core.bundle import (
    DYNAMIC,
    FORMAT_VERSION,
    MAX_IMAGE_SIDE,
    Bundle,
    InputSpec,
    Manifest,
    OutputSpec,
    QuantizationSpec,
    TensorSpec,
    write_bundle,
)
from splitcomp_core.errors import SplitcompError
from splitcomp_core.images import list_images, read_image
from splitcomp_core.postprocess import KINDS, load_labels
from splitcomp_core.preprocess import Preprocessor
from splitcomp_tools.cli import ToolParser, int_in, run_cli
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.metadata import recorded_labels, recorded_preprocessing

TOLERANCE = 1e-4  # allowed max abs difference of head+tail against the full model, relative to the output range
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_SAMPLES = 256  # random inputs to verify on, each one model input
CROP_FRACTION = 0.875  # the usual ImageNet evaluation crop: 224 out of 256
CUT_DTYPES = ("float32", "float16")  # what the feature codec and the manifest carry
OUTPUT_KINDS = ("auto", *KINDS)  # auto: "probabilities" if a Softmax makes the output
# Ops that only move or retype a tensor's values: a Softmax before them still makes the output probabilities.
SHAPE_ONLY_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose", "Cast"})


class SplitError(SplitcompError):
    """The model cannot be split as asked, or the split does not verify; nothing was written."""


@dataclass(frozen=True)
class Preprocessing:
    """How camera frames are turned into model input (recorded in the manifest's input spec)."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    size: tuple[int, int] | None = None  # (height, width); None = the model's declared input size
    bgr: bool = False
    crop_resize: int | None = None  # resize the shorter side to this, then center-crop; None = stretch


@dataclass(frozen=True)
class Verification:
    """head∘tail against the full model: worst abs difference and its share of each output's range."""

    max_abs_diff: float
    relative_diff: float
    random_samples: int
    image_samples: int
    nan_mismatch: tuple[str, ...] = ()  # outputs where one side gives NaN and the other does not
    cut_shapes: Mapping[str, list[int]] = dataclasses.field(default_factory=dict)  # what the head computed

    def to_manifest(self) -> dict[str, object]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "relative_diff": self.relative_diff,
            "samples": self.random_samples + self.image_samples,
            "random_samples": self.random_samples,
            "image_samples": self.image_samples,
            "tolerance": TOLERANCE,
            "onnxruntime": ort.__version__,
        }


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
    """
    out = Path(out_dir)
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
    structure = gr.load_model(model_path)
    g = gr.build_graph(structure)
    if not isinstance(preprocessing, Preprocessing):
        preprocessing = Preprocessing(**{**recorded_preprocessing(structure), **(preprocessing or {})})
    input_spec = _input_spec(structure, g, preprocessing)
    dynamic = input_spec.shape[0] == DYNAMIC
    fixed = {input_spec.name: (1, 3, input_spec.height, input_spec.width)}
    if rebase_batch and gr.rebase_batch_reads(model_path, structure, fixed):
        g = gr.build_graph(structure)
    _check_cut(g, cut)
    output = _output_name(g, output_name)
    types = gr.measure_types(model_path, structure, [*cut, *g.outputs], fixed, dynamic_batch=dynamic)
    for t in cut:
        if t not in types or types[t].dtype not in CUT_DTYPES:
            found = types[t].dtype if t in types else "not a plain tensor"
            raise SplitError(
                f"cut tensor '{t}' is {found}; the feature codec sends {' or '.join(CUT_DTYPES)} "
                f"tensors only, so pick a cut through float features"
            )
    value_infos = _value_infos(structure, g, cut, types)
    expected = {t: [1 if d == DYNAMIC else d for d in types[t].shape] for t in cut}
    labels = load_labels(labels_path) if labels_path is not None else recorded_labels(structure)
    output_shape = _output_shape(structure, output, types)
    if labels is not None and output_shape[-1] != DYNAMIC and len(labels) != output_shape[-1]:
        given = labels_path if labels_path is not None else f"the class names recorded in {model_path}"
        raise SplitError(f"{given}: {len(labels)} labels, but the model outputs {output_shape[-1]} classes")
    samples = _random_inputs(fixed[input_spec.name], random_samples)
    images = _image_inputs(Path(images_dir), input_spec) if images_dir is not None else []
    if not samples and not images:
        raise SplitError("nothing to verify on: give random samples > 0 or --images")
    full = onnx.load(str(model_path))
    head, tail = make_parts(full, g, cut, value_infos)
    del full
    head_bytes, tail_bytes = _serialised(head, "head"), _serialised(tail, "tail")
    verification = verify(str(model_path), head_bytes, tail_bytes, input_spec.name, samples, images)
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
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        model_id="",
        source=str(model_path),
        cut=[TensorSpec(t, list(types[t].shape), types[t].dtype) for t in cut],
        input=input_spec,
        output=OutputSpec(
            output,
            output_shape,
            _output_kind(g, output) if output_kind == "auto" else output_kind,
        ),
        quantization=QuantizationSpec(),
        verification=verification.to_manifest(),
        created_by="splitcomp_tools split",
    )
    bundle = write_bundle(out, head_bytes, tail_bytes, manifest, labels, overwrite=overwrite)
    return bundle, verification


def make_parts(
    full: onnx.ModelProto, g: gr.Graph, cut: Sequence[str], value_infos: Mapping[str, onnx.ValueInfoProto]
) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Head (real input -> cut tensors) and tail (cut tensors -> all outputs), each checked by onnx.checker."""
    head = gr.extract(full, g, list(g.real_inputs), list(cut), value_infos)
    tail = gr.extract(full, g, list(cut), list(g.outputs), value_infos)
    for part, name in ((head, "head"), (tail, "tail")):
        if part.ByteSize() < onnx.checker.MAXIMUM_PROTOBUF:
            try:
                onnx.checker.check_model(part)
            except onnx.checker.ValidationError as exc:
                raise SplitError(f"the extracted {name} is not valid ONNX: {exc}") from exc
    return head, tail


def verify(
    model_path: str,
    head_bytes: bytes,
    tail_bytes: bytes,
    input_name: str,
    random_inputs: Sequence[np.ndarray],
    image_inputs: Sequence[np.ndarray],
) -> Verification:
    """Run the full model and head -> tail on every input; report the worst disagreement."""
    full, head, tail = (_session(m) for m in (model_path, head_bytes, tail_bytes))
    cut = [o.name for o in head.get_outputs()]
    outputs = [o.name for o in full.get_outputs()]
    worst: dict[str, float] = {}
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    nan_mismatch: list[str] = []
    cut_shapes: dict[str, list[int]] = {}
    for x in (*random_inputs, *image_inputs):
        expected = dict(zip(outputs, full.run(outputs, {input_name: x})))
        features = dict(zip(cut, head.run(cut, {input_name: x})))
        for name, value in features.items():
            if cut_shapes.setdefault(name, list(value.shape)) != list(value.shape):
                raise SplitError(f"the head gives cut tensor '{name}' different shapes for inputs of one size")
        got = dict(zip(outputs, tail.run(outputs, features)))
        for name in outputs:
            ref, actual = (np.asarray(v[name], dtype=np.float64) for v in (expected, got))
            worst[name] = max(worst.get(name, 0.0), float(_abs_diff(ref, actual).max(initial=0.0)))
            if name not in nan_mismatch and np.any(np.isnan(ref) != np.isnan(actual)):
                nan_mismatch.append(name)
            finite = ref[np.isfinite(ref)]
            if finite.size:
                lo[name] = min(lo.get(name, math.inf), float(finite.min()))
                hi[name] = max(hi.get(name, -math.inf), float(finite.max()))
    relative = [worst[n] / (hi[n] - lo[n]) if n in lo and hi[n] > lo[n] else worst[n] for n in worst]
    return Verification(
        max_abs_diff=max(worst.values(), default=0.0),
        relative_diff=max(relative, default=0.0),
        random_samples=len(random_inputs),
        image_samples=len(image_inputs),
        nan_mismatch=tuple(nan_mismatch),
        cut_shapes=cut_shapes,
    )


def _abs_diff(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Elementwise |ref - got|, where NaN in only one of them is an infinite difference.

    Equal values (the same infinity included) and NaN in both differ by 0, so a model that gives
    NaN for some inputs (a Log of a negative) is compared on the rest; NaN never hides a difference.
    """
    with np.errstate(invalid="ignore"):
        diff = np.abs(ref - got)
    diff[(ref == got) | (np.isnan(ref) & np.isnan(got))] = 0.0
    diff[np.isnan(diff)] = math.inf
    return diff


def build_parser() -> ToolParser:
    parser = ToolParser(
        prog="split",
        description="Split an ONNX model at the named cut tensors into a bundle directory (manifest.json, "
        "head.onnx, tail.onnx, labels.json). The split is verified against the full model in ONNX Runtime "
        "before anything is written; list valid cuts with `analyze MODEL.onnx`.",
    )
    parser.add_argument("model", help="the .onnx file to split")
    parser.add_argument(
        "--at",
        required=True,
        action="append",
        metavar="NAME[,NAME...]",
        help="cut tensor name(s), comma-separated; may be repeated (see `analyze MODEL.onnx` for valid cuts)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="bundle directory to write")
    parser.add_argument(
        "--images", metavar="DIR", help="also verify on the images in DIR (preprocessed as the bundle says)"
    )
    parser.add_argument(
        "--samples", type=int_in(0, MAX_SAMPLES), default=4, help="random inputs to verify on (default 4)"
    )
    add_model_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    return parser


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """What a bundle needs to know about the model besides its graph: labels, preprocessing, the output (split, plan)."""
    parser.add_argument(
        "--labels",
        metavar="FILE",
        help="class names: a JSON list or ImageNet class_index.json (default: those the model's export recorded)",
    )
    parser.add_argument(
        "--mean",
        metavar="R,G,B",
        help="per-channel mean in 0..1 units, in the model's colour order (default: recorded by export, or ImageNet)",
    )
    parser.add_argument(
        "--std",
        metavar="R,G,B",
        help="per-channel std in 0..1 units (default: recorded by export, or ImageNet)",
    )
    parser.add_argument("--size", metavar="H[,W]", help="input height and width (default: the model's input shape)")
    parser.add_argument(
        "--bgr",
        action="store_true",
        default=None,
        help="the model expects BGR channel order (default: recorded by export, or RGB)",
    )
    parser.add_argument(
        "--crop",
        nargs="?",
        type=int_in(0, MAX_IMAGE_SIDE),
        const=0,
        metavar="RESIZE",
        help="resize the shorter side to RESIZE (default size/0.875, e.g. 256 for 224) and center-crop; "
        "without --crop frames are stretched to the input size, unless export recorded a crop",
    )
    parser.add_argument("--output", metavar="NAME", help="the class-score output (default: the first graph output)")
    parser.add_argument(
        "--output-kind",
        choices=OUTPUT_KINDS,
        default="auto",
        help="whether the output is logits (the tail applies a softmax) or already probabilities; auto (default) "
        "says probabilities when a Softmax produces it, possibly through reshapes, transposes or casts",
    )
    parser.add_argument(
        "--rebase-batch",
        action="store_true",
        help="when the model reads its batch size from the input (x.view(x.size(0), -1)), which bypasses every "
        "tensor before that view, read it from the tensor the view reshapes instead, once measured to have the same "
        "dim 0 (analyze says when this applies)",
    )


def preprocessing_from(args: argparse.Namespace) -> dict[str, Any]:
    """The preprocessing fields the options of `add_model_arguments` set (the rest: what export recorded)."""
    size = _ints(args.size, "--size", (1, 2)) if args.size else None
    if size is not None and not all(1 <= d <= MAX_IMAGE_SIDE for d in size):
        raise SplitError(f"--size {args.size!r}: height and width must be from 1 to {MAX_IMAGE_SIDE}")
    given = {
        "mean": None if args.mean is None else _floats(args.mean, "--mean"),
        "std": None if args.std is None else _floats(args.std, "--std"),
        "size": None if size is None else (size[0], size[-1]),
        "bgr": args.bgr,
        "crop_resize": args.crop,
    }
    return {key: value for key, value in given.items() if value is not None}


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if not args.out.strip():
        raise SplitError("--out is empty; name the bundle directory to write, e.g. --out out/bundle")
    cut = [name for value in args.at for name in value.split(",") if name]
    bundle, check = split_model(
        args.model,
        cut,
        args.out,
        preprocessing=preprocessing_from(args),
        labels_path=args.labels,
        images_dir=args.images,
        random_samples=args.samples,
        output_name=args.output,
        output_kind=args.output_kind,
        overwrite=args.overwrite,
        rebase_batch=args.rebase_batch,
    )
    spec = bundle.manifest.input
    print(
        f"wrote {bundle.path}: cut {', '.join(cut)}; input {spec.name} {spec.height}x{spec.width} "
        f"{spec.color_order} ({spec.resize}); {len(bundle.labels) if bundle.labels else 'no'} class names"
    )
    print(
        f"verified on {check.random_samples} random inputs and {check.image_samples} images: max abs "
        f"difference {check.max_abs_diff:.3g} ({check.relative_diff:.3g} of the output range)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run splitcomp_tools split`."""
    return run_cli(_main, argv)


def _check_cut(g: gr.Graph, cut: Sequence[str]) -> None:
    """Refuse an invalid cut with the reason and the nearest valid cuts."""
    if len(cut) > gr.MAX_CUT_TENSORS:
        raise SplitError(f"a cut of {len(cut)} tensors is more than the {gr.MAX_CUT_TENSORS} this tool handles")
    problem = gr.cut_problem(g, cut)
    if problem is None:
        return
    valid = gr.find_cuts(g, max(len(cut), 1))
    known = [t for t in cut if t in g.producer]
    if known:
        suggestions = gr.nearest_cuts(g, valid, max(known, key=g.position))
    else:
        by_name = {c[0]: c for c in valid if len(c) == 1}
        close = difflib.get_close_matches(cut[0], list(by_name), n=5, cutoff=0.3) if cut else []
        suggestions = [by_name[n] for n in close] or valid[:5]
    listed = "\n  ".join(", ".join(c) for c in suggestions) or "(none: the model has no valid cut of this size)"
    raise SplitError(f"not a valid cut: {problem}.\nNearest valid cuts:\n  {listed}")


def _input_spec(model: onnx.ModelProto, g: gr.Graph, prep: Preprocessing) -> InputSpec:
    """The single image input, its size (given or declared) and the preprocessing options."""
    if len(g.real_inputs) != 1:
        raise SplitError(f"a bundle needs a model with exactly one image input; this one has {list(g.real_inputs)}")
    name = g.real_inputs[0]
    tensor = next(v for v in model.graph.input if v.name == name).type.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT:
        raise SplitError(
            f"input '{name}' is {onnx.TensorProto.DataType.Name(tensor.elem_type)}; a bundle needs a "
            f"float32 image input"
        )
    dims = [d.dim_value if d.HasField("dim_value") else DYNAMIC for d in tensor.shape.dim]
    if len(dims) != 4 or dims[1] not in (3, DYNAMIC) or dims[0] not in (1, DYNAMIC):
        raise SplitError(
            f"input '{name}' has shape {dims}; a bundle needs an image input of shape [1 or dynamic, 3, H, W]"
        )
    if prep.size is not None:
        for declared, wanted, what in ((dims[2], prep.size[0], "height"), (dims[3], prep.size[1], "width")):
            if declared not in (DYNAMIC, wanted):
                raise SplitError(f"--size {what} {wanted} differs from the model's fixed input {what} {declared}")
        height, width = prep.size
    elif DYNAMIC in dims[2:]:
        raise SplitError(f"input '{name}' has a dynamic size {dims}; give --size H,W")
    else:
        height, width = dims[2], dims[3]
    if min(height, width) < 1 or max(height, width) > MAX_IMAGE_SIDE:
        raise SplitError(f"input size must be from 1 to {MAX_IMAGE_SIDE} a side, got {height}x{width}")
    for what, values in (("mean", prep.mean), ("std", prep.std)):
        if len(values) != 3:
            raise SplitError(f"--{what} needs 3 values (one per channel), got {list(values)}")
    if min(prep.std) <= 0:
        raise SplitError(f"--std values must be > 0, got {list(prep.std)}")
    resize_size = None
    if prep.crop_resize is not None:
        resize_size = prep.crop_resize or round(max(height, width) / CROP_FRACTION)
        if resize_size < max(height, width):
            raise SplitError(f"--crop {resize_size} is smaller than the input size {height}x{width}")
        if resize_size > MAX_IMAGE_SIDE:
            raise SplitError(
                f"--crop {resize_size} is more than {MAX_IMAGE_SIDE}, the largest side a frame is resized to"
            )
    return InputSpec(
        name=name,
        shape=[dims[0], 3, height, width],
        height=height,
        width=width,
        color_order="BGR" if prep.bgr else "RGB",
        mean=list(prep.mean),
        std=list(prep.std),
        resize="stretch" if resize_size is None else "center_crop",
        resize_size=resize_size,
    )


def _output_name(g: gr.Graph, wanted: str | None) -> str:
    if wanted is None:
        return g.outputs[0]
    if wanted not in g.outputs:
        raise SplitError(f"--output '{wanted}' is not a graph output; the outputs are {list(g.outputs)}")
    return wanted


def _output_kind(g: gr.Graph, name: str) -> str:
    """ "probabilities" when a Softmax makes the output, directly or through shape-only ops, else "logits"."""
    i = g.producer.get(name)
    while i is not None and g.nodes[i].op_type in SHAPE_ONLY_OPS and g.nodes[i].domain in ("", "ai.onnx"):
        i = g.producer.get(g.nodes[i].input[0])
    return "probabilities" if i is not None and g.nodes[i].op_type == "Softmax" else "logits"


def _output_shape(model: onnx.ModelProto, name: str, types: Mapping[str, gr.TensorType]) -> list[int]:
    """The measured shape; the declared one for an output ONNX Runtime gives as no plain tensor."""
    if name in types:
        return list(types[name].shape)
    declared = next(v for v in model.graph.output if v.name == name).type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else DYNAMIC for d in declared.shape.dim]


def _value_infos(
    model: onnx.ModelProto, g: gr.Graph, cut: Sequence[str], types: Mapping[str, gr.TensorType]
) -> dict[str, onnx.ValueInfoProto]:
    """Types for the parts' inputs and outputs: the measured shapes, a DYNAMIC batch as the input's symbol.

    head.onnx and tail.onnx then declare for the cut what the manifest records, so the bundle's
    checks and the tail's warm-up see the same shapes.
    """
    infos = {v.name: v for v in (*model.graph.input, *model.graph.output)}
    batch = next(v for v in model.graph.input if v.name == g.real_inputs[0]).type.tensor_type.shape.dim[0]
    symbol = batch.dim_param or "batch"
    for t in (*cut, *g.outputs):
        if t in types:
            dims = [symbol if d == DYNAMIC else d for d in types[t].shape]
            elem_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(types[t].dtype))
            infos[t] = onnx.helper.make_tensor_value_info(t, elem_type, dims)
    return infos


def _serialised(part: onnx.ModelProto, name: str) -> bytes:
    if part.ByteSize() >= onnx.checker.MAXIMUM_PROTOBUF:
        raise SplitError(
            f"the {name} is {part.ByteSize() / 2**30:.1f} GiB; a bundle stores each half as one ONNX "
            f"file, which protobuf limits to 2 GiB (cut elsewhere)"
        )
    return part.SerializeToString()


def _session(model: str | bytes) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types are not importable portably
        what = model if isinstance(model, str) else "an extracted part"
        raise SplitError(f"ONNX Runtime cannot load {what}: {exc}") from exc


def _random_inputs(shape: Sequence[int], count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]


def _image_inputs(folder: Path, spec: InputSpec) -> list[np.ndarray]:
    """Every image in `folder`, preprocessed exactly as the head node will do it."""
    if not folder.is_dir():
        raise SplitError(f"{folder}: --images must be a directory of images")
    preprocess = Preprocessor(spec)
    return [preprocess(read_image(path)) for path in list_images(folder)]


def _ints(text: str, option: str, counts: Sequence[int]) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise SplitError(f"{option} {text!r}: expected comma-separated integers") from None
    if len(values) not in counts:
        raise SplitError(f"{option} {text!r}: expected {' or '.join(map(str, counts))} values")
    return values


def _floats(text: str, option: str) -> tuple[float, float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise SplitError(f"{option} {text!r}: expected comma-separated numbers") from None
    if len(values) != 3 or not all(map(math.isfinite, values)):
        raise SplitError(f"{option} {text!r}: expected 3 finite numbers, one per channel")
    first, second, third = values
    return first, second, third


if __name__ == "__main__":
    sys.exit(main())
