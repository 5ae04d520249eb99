"""A bundle's tail.onnx as a frozen PyTorch module: the route gradients take from the tail's answer to the bottleneck.

onnx2torch 1.5.15 would do this, but it imports torchvision at import time (for its NMS and RoIAlign converters),
and no torchvision wheel imports beside the pinned CPU torch; so this small interpreter does it for the ops a
convolutional classifier's tail holds once ONNX Runtime has folded its shape arithmetic (ORT_ENABLE_BASIC:
constant folding and standard-op fusions only, no contrib ops). A tail with any other op has no route and is
refused by name; a route that does not reproduce tail.onnx within ROUTE_TOLERANCE on real features is refused too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from splitcomp_tools.model.distill.errors import DistillError

ROUTE_TOLERANCE = 1e-4  # max abs difference to tail.onnx, relative to max(1, largest |output|)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, a: dict[str, Any]) -> torch.Tensor:
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise DistillError("Conv with auto_pad is not supported")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    half = len(pads) // 2
    if pads[:half] != pads[half:]:
        x = F.pad(x, [p for i in reversed(range(half)) for p in (pads[i], pads[half + i])])
        pads = [0] * len(pads)
    return F.conv2d(
        x,
        w,
        b,
        tuple(a.get("strides", [1, 1])),
        tuple(pads[:half]),
        tuple(a.get("dilations", [1, 1])),
        a.get("group", 1),
    )


def _gemm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, a: dict[str, Any]) -> torch.Tensor:
    x = x.t() if a.get("transA", 0) else x
    w = w.t() if a.get("transB", 0) else w
    y = a.get("alpha", 1.0) * (x @ w)
    return y if b is None else y + a.get("beta", 1.0) * b


def _clip(x: torch.Tensor, lo: torch.Tensor | None = None, hi: torch.Tensor | None = None) -> torch.Tensor:
    return torch.clamp(x, None if lo is None else float(lo), None if hi is None else float(hi))


def _maxpool(x: torch.Tensor, a: dict[str, Any]) -> torch.Tensor:
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:] or a.get("ceil_mode", 0):
        raise DistillError("MaxPool with asymmetric pads or ceil_mode is not supported")
    return F.max_pool2d(x, tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1])), tuple(pads[:2]))


# op -> f(inputs, attributes): the ops of a folded convolutional tail (any other op: no route)
_OPS: dict[str, Callable[[list[Any], dict[str, Any]], torch.Tensor]] = {
    "Conv": lambda i, a: _conv(i[0], i[1], i[2] if len(i) > 2 else None, a),
    "Gemm": lambda i, a: _gemm(i[0], i[1], i[2] if len(i) > 2 else None, a),
    "MatMul": lambda i, a: i[0] @ i[1],
    "Add": lambda i, a: i[0] + i[1],
    "Sub": lambda i, a: i[0] - i[1],
    "Mul": lambda i, a: i[0] * i[1],
    "Div": lambda i, a: i[0] / i[1],
    "Relu": lambda i, a: F.relu(i[0]),
    "Sigmoid": lambda i, a: torch.sigmoid(i[0]),
    "Clip": lambda i, a: _clip(i[0], *i[1:]) if len(i) > 1 else _clip(i[0], a.get("min"), a.get("max")),
    "GlobalAveragePool": lambda i, a: i[0].mean(dim=(2, 3), keepdim=True),
    "MaxPool": lambda i, a: _maxpool(i[0], a),
    "Flatten": lambda i, a: torch.flatten(i[0], a.get("axis", 1)),
    "Reshape": lambda i, a: _reshape(i[0], i[1]),
    "Identity": lambda i, a: i[0],
}


def _reshape(x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """A batch-1 export's Reshape to [1, ...] keeps the batch of a training batch."""
    dims = [int(d) for d in shape.tolist()]
    if dims and dims[0] == 1:
        dims[0] = x.shape[0]
    return x.reshape([x.shape[k] if d == 0 else d for k, d in enumerate(dims)])


class TorchGraph(nn.Module):
    """An ONNX graph of the ops above, run node by node in PyTorch with its weights frozen (one input, one output)."""

    def __init__(self, model: onnx.ModelProto, output: str) -> None:
        super().__init__()
        graph = model.graph
        unsupported = sorted({n.op_type for n in graph.node} - set(_OPS))
        if unsupported:
            raise DistillError(f"the tail holds ops with no gradient route here: {', '.join(unsupported)}")
        weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":  # pragma: no cover - folded away by ONNX Runtime
                weights[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
        self._names = {name: f"w{k}" for k, name in enumerate(weights)}
        for name, array in weights.items():
            self.register_buffer(self._names[name], torch.from_numpy(np.array(array)))
        self.input_name = next(i.name for i in graph.input if i.name not in weights)
        self.output_name = output
        self._nodes = [(n.op_type, list(n.input), list(n.output), _attrs(n)) for n in graph.node]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, Any] = {self.input_name: x}
        for name, buffer in self._names.items():
            values[name] = getattr(self, buffer)
        for op, inputs, outputs, attrs in self._nodes:
            values[outputs[0]] = _OPS[op]([values[i] if i else None for i in inputs], attrs)
        return values[self.output_name]


def folded(path: str | os.PathLike) -> onnx.ModelProto:
    """The model after ONNX Runtime's basic, standard-op optimisations (constant folding, BN and pad fusions)."""
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(Path(tmp) / "folded.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return onnx.load(options.optimized_model_filepath)


def tail_route(tail_path: str | os.PathLike, output: str, samples: Sequence[Mapping[str, np.ndarray]]) -> TorchGraph:
    """tail.onnx as a frozen module, checked against ONNX Runtime on `samples` (real features); DistillError if not."""
    try:
        module = TorchGraph(folded(tail_path), output).eval()
    except DistillError as exc:
        raise DistillError(f"{tail_path}: {exc}; distill needs a tail of {', '.join(sorted(_OPS))}") from None
    for p in module.buffers():
        p.requires_grad_(False)
    session = ort.InferenceSession(str(tail_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for feeds in samples:
        want = session.run([output], dict(feeds))[0]
        with torch.no_grad():
            got = module(torch.from_numpy(feeds[module.input_name])).numpy()
        worst = max(worst, float(np.abs(want - got).max()) / max(1.0, float(np.abs(want).max())))
    if worst > ROUTE_TOLERANCE:
        raise DistillError(f"{tail_path}: its PyTorch route differs from ONNX Runtime by {worst:.2g} (relative)")
    return module
