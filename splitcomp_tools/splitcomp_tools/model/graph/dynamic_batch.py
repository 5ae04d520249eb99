"""A static-batch model rewritten to take any batch: what `split --dynamic-batch` cuts instead of the model.

An export at batch 1 writes the batch into the graph as constants: reshape targets such as
`[1, -1]`, and batch-1 constants concatenated with the features (a ViT's cls token). The rewrite
declares every real input's dim 0 symbolic, turns the leading 1 of a constant Reshape target of
computed features into -1 (or 0, ONNX's "copy this dim from the input"), and expands a batch-1 constant
concatenated with features along another axis to the features' batch. What it does not cover
shows up when the rewritten model runs at a batch of 3 against three runs at batch 1
(`check_batch_rewrite`), which the split does before it cuts anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from splitcomp_tools.model.graph.structure import Graph, build_graph

BATCH_SYMBOL = "batch"
CHECK_BATCH = 3  # frames the rewritten model answers at once in `check_batch_rewrite`


def make_batch_dynamic(model: onnx.ModelProto) -> list[str]:
    """Rewrite `model` in place so its real inputs (and the outputs that follow them) take any batch.

    Returns one line per change made. A model whose inputs already have a symbolic dim 0 is left
    as it is and gives no lines.
    """
    g = build_graph(model)
    inputs = [v for v in model.graph.input if v.name in g.real_inputs]
    if not any(_static_batch(v) for v in inputs):
        return []
    ranks = _ranks(model)
    for v in (*inputs, *(o for o in model.graph.output if o.name in g.dependent)):
        if _static_batch(v) and v.type.tensor_type.shape.dim[0].dim_value == 1:
            v.type.tensor_type.shape.dim[0].dim_param = BATCH_SYMBOL
    del model.graph.value_info[:]  # shapes inferred at batch 1
    changes = [f"input '{v.name}' takes a dynamic batch" for v in inputs]
    replaced: list[str] = []
    changes += _reshape_targets(model, g, replaced)
    changes += _concatenated_constants(model, g, ranks)
    for name in replaced:  # last: removing nodes detaches the NodeProtos `g` holds
        _drop_unread_constant(model, name)
    return changes


def _static_batch(v: onnx.ValueInfoProto) -> bool:
    dims = v.type.tensor_type.shape.dim
    return len(dims) > 0 and dims[0].HasField("dim_value")


def _constant(model: onnx.ModelProto, g: Graph, name: str) -> np.ndarray | None:
    """The value of an initializer or a Constant node's `value`, else None."""
    if name in g.initializers:
        tensor = next(t for t in model.graph.initializer if t.name == name)
        return None if tensor.data_location == onnx.TensorProto.EXTERNAL else numpy_helper.to_array(tensor)
    node = g.nodes[g.producer[name]] if name in g.producer else None
    if node is None or node.op_type != "Constant":
        return None
    value = next((a.t for a in node.attribute if a.name == "value"), None)
    return None if value is None else numpy_helper.to_array(value)


def _reshape_targets(model: onnx.ModelProto, g: Graph, replaced: list[str]) -> list[str]:
    """Reshapes of features to a constant target `[1, ...]` take their batch from the data instead.

    The leading 1 becomes -1 (the size that keeps the element count) where no other dim is -1, else
    0 (the input's own dim 0; `allowzero` is cleared, which changes nothing for a target without 0).
    The old targets' names are added to `replaced`.
    """
    changes = []
    for node in g.nodes:
        if node.op_type != "Reshape" or node.domain not in ("", "ai.onnx") or node.input[0] not in g.dependent:
            continue
        target = _constant(model, g, node.input[1])
        if target is None or target.ndim != 1 or target.size == 0 or target[0] != 1:
            continue
        if -1 in target[1:] and 0 in target:
            continue
        for a in node.attribute:  # the same result for a target without zeros, and the 0 below copies dim 0
            if a.name == "allowzero":
                a.i = 0
        rebased = target.copy()
        rebased[0] = 0 if -1 in target[1:] else -1
        name = _fresh(model, f"{node.input[1]}_dynamic_batch")
        model.graph.initializer.append(numpy_helper.from_array(rebased, name))
        replaced.append(node.input[1])
        node.input[1] = name
        changes.append(f"Reshape '{node.name}' takes its batch from its input instead of {target.tolist()}")
    return changes


def _drop_unread_constant(model: onnx.ModelProto, name: str) -> None:
    """Remove the initializer or Constant node `name` once nothing reads it (ONNX Runtime warns of it)."""
    read = {t for n in model.graph.node for t in n.input} | {o.name for o in model.graph.output}
    if name in read:
        return
    kept = [t for t in model.graph.initializer if t.name != name]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    nodes = [n for n in model.graph.node if not (n.op_type == "Constant" and list(n.output) == [name])]
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _concatenated_constants(model: onnx.ModelProto, g: Graph, ranks: dict[str, int]) -> list[str]:
    """A constant concatenated with features along another axis is expanded to their batch first.

    At batch 1 such a constant (a ViT's cls token, maybe expanded to a batch folded to 1) has dim 0
    of 1 like the features; `ranks` are the tensors' ranks inferred on the static model.
    """
    changes = []
    added: list[onnx.NodeProto] = []
    for node in g.nodes:
        if node.op_type != "Concat" or node.domain not in ("", "ai.onnx"):
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        features = next((t for t in node.input if t in g.dependent), None)
        rank = ranks.get(node.output[0], 0)
        if features is None or rank < 2 or axis in (0, -rank):
            continue
        for k, name in enumerate(node.input):
            if name in g.dependent:
                continue
            expanded, nodes = _expand_to_batch(model, name, features, rank)
            added.extend(nodes)
            node.input[k] = expanded
            changes.append(f"Concat '{node.name}' expands the constant '{name}' to the batch of '{features}'")
    if added:
        model.graph.node.extend(added)
        _sort(model)
    return changes


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """Ranks of the tensors ONNX shape inference types in the static model (none where it fails)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # a model shape inference cannot follow: no Concat is rewritten
        return {}
    values = (*inferred.value_info, *inferred.output, *inferred.input)
    return {v.name: len(v.type.tensor_type.shape.dim) for v in values if v.type.tensor_type.HasField("shape")}


def _expand_to_batch(model: onnx.ModelProto, name: str, features: str, rank: int) -> tuple[str, list[onnx.NodeProto]]:
    """Nodes computing `name` expanded along dim 0 to dim 0 of `features`: Expand(name, [batch, 1, ...])."""
    prefix = _fresh(model, f"{name}_batch")
    index, ones = f"{prefix}_index", f"{prefix}_ones"
    model.graph.initializer.append(numpy_helper.from_array(np.array([0], dtype=np.int64), index))
    model.graph.initializer.append(numpy_helper.from_array(np.ones(rank - 1, dtype=np.int64), ones))
    make = onnx.helper.make_node
    nodes = [
        make("Shape", [features], [f"{prefix}_shape"], name=f"{prefix}_Shape"),
        make("Gather", [f"{prefix}_shape", index], [f"{prefix}_size"], name=f"{prefix}_Gather", axis=0),
        make("Concat", [f"{prefix}_size", ones], [f"{prefix}_target"], name=f"{prefix}_Concat", axis=0),
        make("Expand", [name, f"{prefix}_target"], [prefix], name=f"{prefix}_Expand"),
    ]
    return prefix, nodes


def _fresh(model: onnx.ModelProto, base: str) -> str:
    """`base`, or `base` with a number, so that no tensor of the model has the name yet."""
    taken = {t.name for t in model.graph.initializer} | {o for n in model.graph.node for o in n.output}
    taken |= {v.name for v in model.graph.input}
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def _sort(model: onnx.ModelProto) -> None:
    """Put the graph's nodes back in topological order after nodes were appended."""
    ordered = [onnx.NodeProto() for _ in model.graph.node]
    for copy, node in zip(ordered, build_graph(model).nodes):
        copy.CopyFrom(node)
    del model.graph.node[:]
    model.graph.node.extend(ordered)


def check_batch_rewrite(
    original: str, rewritten: str, input_name: str, shape: Sequence[int], tolerance: float
) -> str | None:
    """Why the rewritten model does not answer a batch as the original answers each frame, or None.

    Both run in ONNX Runtime on `CHECK_BATCH` seeded random frames of `shape` (batch 1); every
    output must agree within `tolerance` of its range (of 1 where the range is smaller).
    """
    import onnxruntime as ort

    frames = np.random.default_rng(1).standard_normal((CHECK_BATCH, *shape[1:])).astype(np.float32)
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4  # the failure is returned, not logged
        single = ort.InferenceSession(original, options, providers=["CPUExecutionProvider"])
        batched = ort.InferenceSession(rewritten, options, providers=["CPUExecutionProvider"])
        alone = [single.run(None, {input_name: frames[k : k + 1]}) for k in range(CHECK_BATCH)]
        together = batched.run(None, {input_name: frames})
    except Exception as exc:  # onnxruntime's own exception types are not importable portably
        return f"ONNX Runtime cannot run it at a batch of {CHECK_BATCH}: {str(exc).splitlines()[0]}"
    for k, out in enumerate(together):
        expected = np.concatenate([a[k] for a in alone])
        if out.shape != expected.shape:
            return f"output {k} has shape {list(out.shape)} at a batch of {CHECK_BATCH}, not {list(expected.shape)}"
        scale = max(float(np.ptp(expected)), 1.0) if expected.size else 1.0
        diff = float(np.max(np.abs(out.astype(np.float64) - expected), initial=0.0))
        if not diff <= tolerance * scale:
            return f"output {k} differs by {diff:.3g} from answering each frame alone"
    return None
