"""What each node of an ONNX graph costs the side that runs it: FLOPs, parameters, and the PyTorch module it came from.

`analyze` sums these over a cut's head to give the head's share of the model's compute and weights.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping

import onnx

from splitcomp_tools.model import graph as gr

_MODULE_WALK_LIMIT = 32  # ancestors to try before giving up on finding a recorded PyTorch module


def node_flops(node: onnx.NodeProto, types: Mapping[str, gr.TensorType]) -> int:
    """Estimated floating-point operations of one node (a multiply-add counts 2).

    Convolutions and matrix products are counted exactly from their shapes; every other node
    counts one operation per output element.
    """

    def shape(k: int) -> tuple[int, ...] | None:
        if k >= len(node.input) or not node.input[k] or node.input[k] not in types:
            return None
        return types[node.input[k]].shape

    out = sum(math.prod(types[t].shape) for t in node.output if t in types)
    has_bias = len(node.input) > 2 and bool(node.input[2])
    op = node.op_type
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        weight = shape(3 if op == "QLinearConv" else 1)
        return 2 * out * math.prod(weight[1:]) + (out if has_bias and op == "Conv" else 0) if weight else out
    if op == "ConvTranspose":
        x, weight = shape(0), shape(1)
        return 2 * math.prod(x) * math.prod(weight[1:]) + (out if has_bias else 0) if x and weight else out
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        a = shape(0)
        return 2 * out * a[-1] if a else out
    if op == "Gemm":
        a = shape(0)
        if not a:
            return out
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        return 2 * out * (a[0] if trans_a else a[1]) + (out if has_bias else 0)
    return out


def module_name(node: onnx.NodeProto) -> str | None:
    """The PyTorch module a node was exported from, if the exporter recorded one.

    The dynamo exporter stores the scope list in metadata_props["pkg.torch.onnx.name_scopes"]
    (last entry: the op itself); the TorchScript exporter names nodes "/layer1/layer1.0/conv1/Conv",
    where a scope is either a full dotted path or a child of the previous one.
    """
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = [s for s in ast.literal_eval(prop.value)[:-1] if s]
            except (ValueError, SyntaxError):
                return None
            return scopes[-1] if scopes else None
    parts = node.name.split("/")
    if not node.name.startswith("/") or len(parts) < 3:
        return None
    path = ""
    for scope in parts[1:-1]:
        path = scope if not path or scope.startswith(path + ".") else f"{path}.{scope}"
    return path or None


def nearest_module(g: gr.Graph, tensor: str) -> str | None:
    """Module of the tensor's producer, else of the closest ancestor along first dependent inputs."""
    for _ in range(_MODULE_WALK_LIMIT):
        if tensor not in g.producer:
            return None
        i = g.producer[tensor]
        name = module_name(g.nodes[i])
        if name:
            return name
        tensor = next((t for t in g.reads[i] if t in g.dependent), "")
    return None


def parameter_sizes(model: onnx.ModelProto) -> dict[str, int]:
    """Element count of every weight: initializers and the values of Constant nodes."""
    sizes = {t.name: math.prod(t.dims) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    sizes[node.output[0]] = math.prod(attr.t.dims)
                elif attr.type in (onnx.AttributeProto.FLOATS, onnx.AttributeProto.INTS):
                    sizes[node.output[0]] = len(attr.floats) + len(attr.ints)
                else:
                    sizes[node.output[0]] = 1
    return sizes


def parameters_by_node(model: onnx.ModelProto, g: gr.Graph) -> dict[int, frozenset[str]]:
    """For each relevant node, the weights it uses directly or through a constant subgraph."""
    sizes = parameter_sizes(model)
    origin: dict[str, frozenset[str]] = {t: frozenset({t}) for t in sizes}
    for i, reads in enumerate(g.reads):
        if g.dependent.isdisjoint(g.writes[i]):
            found = frozenset().union(*(origin.get(t, frozenset()) for t in reads))
            for t in g.writes[i]:
                origin[t] = origin.get(t, frozenset()) | found
    return {
        i: frozenset().union(*(origin.get(t, frozenset()) for t in g.reads[i] if t not in g.dependent))
        for i in g.relevant
    }
