"""An ONNX graph reduced to what cutting needs: who produces and reads each tensor, in topological order.

Vocabulary. A *real input* is a graph input without an initializer (weights listed as inputs with an
initializer are constants). A tensor is *dependent* when it is computed, transitively, from a real
input; every other tensor is a *constant* (initializers, Constant/ConstantOfShape nodes, Shape of a
constant, ...) that the tail can recompute on its own. `Shape(x)` of a dependent `x` is dependent.
Names a subgraph (If/Loop/Scan body) reads from the enclosing graph count as inputs of its node.
A *cut* is a set of dependent tensors through which every path from the real inputs to the graph
outputs passes, so the tail can compute every output from the cut plus constants.
"""

from __future__ import annotations

import functools
import heapq
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from splitcomp_core.errors import SplitcompError

Cut = tuple[str, ...]


class ModelError(SplitcompError, ValueError):
    """An ONNX model cannot be read, analysed or cut as asked; the message names the model or tensor."""


@dataclass(frozen=True)
class Graph:
    """Dependency structure of an ONNX graph, nodes in topological order, reduced to what cutting needs."""

    nodes: tuple[onnx.NodeProto, ...]
    reads: tuple[tuple[str, ...], ...]  # per node: distinct tensors read, including subgraphs' outer-scope names
    writes: tuple[tuple[str, ...], ...]  # per node: non-empty outputs
    real_inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    initializers: frozenset[str]
    producer: Mapping[str, int]
    dependent: frozenset[str]
    relevant: tuple[int, ...]  # dependent nodes on a path to an output, topological positions

    @functools.cached_property
    def sinks(self) -> frozenset[str]:
        """Graph outputs that depend on a real input (constant outputs the tail recomputes)."""
        return frozenset(o for o in self.outputs if o in self.dependent)

    def position(self, tensor: str) -> int:
        """Topological position of the tensor's producer; -1 for real inputs and initializers."""
        return self.producer.get(tensor, -1)

    def cut_position(self, cut: Cut) -> int:
        """Where a cut sits in the topological order: the position of its last-computed tensor."""
        return max(self.position(t) for t in cut)


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
    """The model's structure, checked to be valid ONNX; weights stored as external data stay on disk."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file; pass the path of an .onnx model")
    if not path.is_file():
        raise ModelError(f"{path}: not a file; pass the path of an .onnx model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not an ONNX model ({exc})") from exc
    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"{path}: not a valid ONNX model: {str(exc).strip().splitlines()[0]}") from exc
    if not model.graph.output:
        raise ModelError(
            f"{path}: the model has no outputs, so no part of it can be a tail; export it with its outputs"
        )
    return model


def build_graph(model: onnx.ModelProto) -> Graph:
    """Index the main graph: producers, topological order, dependent tensors and relevant nodes."""
    g = model.graph
    initializers = frozenset(t.name for t in g.initializer) | {s.values.name for s in g.sparse_initializer}
    real_inputs = tuple(v.name for v in g.input if v.name not in initializers)
    raw_reads = [_node_reads(n) for n in g.node]
    raw_writes = [tuple(o for o in n.output if o) for n in g.node]
    producer: dict[str, int] = {}
    for i, outs in enumerate(raw_writes):
        for t in outs:
            if t in producer or t in initializers or t in real_inputs:
                raise ModelError(
                    f"tensor '{t}' is defined twice (node '{g.node[i].name}'); the graph is not valid ONNX"
                )
            producer[t] = i
    known = producer.keys() | initializers | set(real_inputs)
    for i, node_reads in enumerate(raw_reads):
        for t in node_reads:
            if t not in known:
                raise ModelError(f"node '{g.node[i].name}' ({g.node[i].op_type}) reads '{t}', which nothing defines")
    outputs = tuple(v.name for v in g.output)
    for t in outputs:
        if t not in known:
            raise ModelError(f"graph output '{t}' is never computed")
    order = _topological_order(raw_reads, producer, g.node)
    at = {old: new for new, old in enumerate(order)}
    reads = tuple(raw_reads[i] for i in order)
    writes = tuple(raw_writes[i] for i in order)
    dependent = set(real_inputs)
    for i, r in enumerate(reads):
        if not dependent.isdisjoint(r):
            dependent.update(writes[i])
    needed = {o for o in outputs if o in dependent}
    relevant = []
    for i in range(len(reads) - 1, -1, -1):
        if not needed.isdisjoint(writes[i]) and not dependent.isdisjoint(reads[i]):
            relevant.append(i)
            needed.update(t for t in reads[i] if t in dependent)
    return Graph(
        nodes=tuple(g.node[i] for i in order),
        reads=reads,
        writes=writes,
        real_inputs=real_inputs,
        outputs=outputs,
        initializers=initializers,
        producer={t: at[i] for t, i in producer.items()},
        dependent=frozenset(dependent),
        relevant=tuple(reversed(relevant)),
    )


def head_nodes(g: Graph, cut: Iterable[str]) -> set[int]:
    """Positions of the dependent nodes the head runs to produce `cut`."""
    seen: set[str] = set()
    nodes: set[int] = set()
    stack = [t for t in cut if t in g.dependent]
    while stack:
        t = stack.pop()
        if t in seen or t not in g.producer:
            continue
        seen.add(t)
        nodes.add(g.producer[t])
        stack.extend(r for r in g.reads[g.producer[t]] if r in g.dependent)
    return nodes


def extract(
    model: onnx.ModelProto,
    g: Graph,
    inputs: Sequence[str],
    outputs: Sequence[str],
    value_infos: Mapping[str, onnx.ValueInfoProto],
) -> onnx.ModelProto:
    """A standalone model computing `outputs` from `inputs` plus constants.

    Like onnx.utils.Extractor, but it follows the outer-scope names that If/Loop/Scan bodies read,
    refuses a part that would still need a real input, keeps only the initializers and local
    functions the kept nodes use, and turns weights listed as inputs (IR < 4) into plain
    initializers, so a part's only inputs are the ones asked for. `value_infos` types the new
    inputs and outputs.
    """
    stop = set(inputs)
    kept: set[int] = set()
    used: set[str] = set()
    stack = list(outputs)
    while stack:
        t = stack.pop()
        if t in used:
            continue
        used.add(t)
        if t in stop or t in g.initializers:
            continue
        if t in g.real_inputs:
            raise ModelError(f"the part computing {names(outputs)} from {names(inputs)} would still need input '{t}'")
        kept.add(g.producer[t])
        stack.extend(g.reads[g.producer[t]])
    missing = [t for t in (*inputs, *outputs) if t not in value_infos]
    if missing:
        raise ModelError(f"no type is known for {names(missing)}; run ONNX shape inference on the model first")
    nodes = [g.nodes[i] for i in sorted(kept)]
    graph = onnx.helper.make_graph(
        nodes,
        model.graph.name or "part",
        [value_infos[t] for t in inputs],
        [value_infos[t] for t in outputs],
        initializer=[t for t in model.graph.initializer if t.name in used and t.name not in stop],
        sparse_initializer=[s for s in model.graph.sparse_initializer if s.values.name in used],
        value_info=[
            v for v in model.graph.value_info if v.name in used and v.name not in stop and v.name not in outputs
        ],
    )
    part = onnx.helper.make_model(
        graph,
        ir_version=max(model.ir_version, 4),
        opset_imports=list(model.opset_import),
        functions=_local_functions(model, nodes),
        producer_name="splitcomp split",
    )
    part.metadata_props.extend(model.metadata_props)
    return part


def _node_reads(node: onnx.NodeProto) -> tuple[str, ...]:
    """Distinct tensors a node reads, including names its subgraphs take from the enclosing scope."""
    names = [t for t in node.input if t]
    for sub in _subgraphs(node):
        names.extend(sorted(_outer_names(sub)))
    return tuple(dict.fromkeys(names))


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def _outer_names(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads without defining them: values of the enclosing graph."""
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    defined |= {s.values.name for s in graph.sparse_initializer}
    used = {v.name for v in graph.output}
    for node in graph.node:
        used.update(t for t in node.input if t)
        for sub in _subgraphs(node):
            used |= _outer_names(sub)
        defined.update(node.output)
    return used - defined


def _topological_order(
    reads: Sequence[tuple[str, ...]], producer: Mapping[str, int], nodes: Sequence[onnx.NodeProto]
) -> list[int]:
    """Kahn's algorithm, preferring the file's own order, so an already sorted graph keeps its order."""
    waiting = [0] * len(reads)
    users: list[list[int]] = [[] for _ in reads]
    for i, r in enumerate(reads):
        for t in r:
            if t in producer:
                waiting[i] += 1
                users[producer[t]].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in users[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(reads):
        stuck = next(i for i, w in enumerate(waiting) if w > 0)
        raise ModelError(f"the graph has a cycle through node '{nodes[stuck].name}' ({nodes[stuck].op_type})")
    return order


def names(tensors: Iterable[str]) -> str:
    """Tensor names as messages quote them: {'a', 'b'}."""
    return "{" + ", ".join(f"'{t}'" for t in tensors) + "}"


def _local_functions(model: onnx.ModelProto, nodes: Sequence[onnx.NodeProto]) -> list[onnx.FunctionProto]:
    """The model-local functions the nodes call, directly, from subgraphs or from other functions."""
    available = {(f.domain, f.name): f for f in model.functions}
    chosen: dict[tuple[str, str], onnx.FunctionProto] = {}
    queue = list(nodes)
    while queue:
        node = queue.pop()
        key = (node.domain, node.op_type)
        if key in available and key not in chosen:
            chosen[key] = available[key]
            queue.extend(available[key].node)
        for sub in _subgraphs(node):
            queue.extend(sub.node)
    return [f for key, f in available.items() if key in chosen]
