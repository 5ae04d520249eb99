"""What a bundle records about the model besides its graph: the image input and its preprocessing, the output.

The input spec is what the head node's Preprocessor follows, so it is checked here against the
model's declared input (one float image input, [1 or dynamic, 3, H, W]) before anything is split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import onnx

from splitcomp_core.bundle import DYNAMIC, MAX_IMAGE_SIDE, InputSpec
from splitcomp_core.errors import SplitcompError
from splitcomp_core.postprocess import KINDS
from splitcomp_tools.model import graph as gr

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_FRACTION = 0.875  # the usual ImageNet evaluation crop: 224 out of 256
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


def input_spec(model: onnx.ModelProto, g: gr.Graph, prep: Preprocessing) -> InputSpec:
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


def output_name(g: gr.Graph, wanted: str | None) -> str:
    """The class-score output: the one asked for, which must be a graph output, else the first."""
    if wanted is None:
        return g.outputs[0]
    if wanted not in g.outputs:
        raise SplitError(f"--output '{wanted}' is not a graph output; the outputs are {list(g.outputs)}")
    return wanted


def output_kind(g: gr.Graph, name: str) -> str:
    """ "probabilities" when a Softmax makes the output, directly or through shape-only ops, else "logits"."""
    i = g.producer.get(name)
    while i is not None and g.nodes[i].op_type in SHAPE_ONLY_OPS and g.nodes[i].domain in ("", "ai.onnx"):
        i = g.producer.get(g.nodes[i].input[0])
    return "probabilities" if i is not None and g.nodes[i].op_type == "Softmax" else "logits"


def output_shape(model: onnx.ModelProto, name: str, types: Mapping[str, gr.TensorType]) -> list[int]:
    """The measured shape; the declared one for an output ONNX Runtime gives as no plain tensor."""
    if name in types:
        return list(types[name].shape)
    declared = next(v for v in model.graph.output if v.name == name).type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else DYNAMIC for d in declared.shape.dim]
