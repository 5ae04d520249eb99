"""Where an ONNX model can be cut, and how to cut it: the one place cut logic lives.

Vocabulary. A *real input* is a graph input without an initializer (weights listed as inputs with an
initializer are constants). A tensor is *dependent* when it is computed, transitively, from a real
input; every other tensor is a *constant* (initializers, Constant/ConstantOfShape nodes, Shape of a
constant, ...) that the tail can recompute on its own. `Shape(x)` of a dependent `x` is dependent.
Names a subgraph (If/Loop/Scan body) reads from the enclosing graph count as inputs of its node.
A *cut* is a set of dependent tensors through which every path from the real inputs to the graph
outputs passes, so the tail can compute every output from the cut plus constants.

What `find_cuts` guarantees, on the DAG of *relevant* nodes (dependent nodes that feed an output):

* Single-tensor cuts: all of them. In any topological order, a tensor t is a cut iff right after
  its producer runs the live set (dependent tensors produced so far that a later node reads, and
  graph outputs) is exactly {t}: every relevant node is either an ancestor of t's producer, and
  then reaches the outputs only through t, or a descendant of it.
* Multi-tensor cuts of up to `max_tensors` (<= 3) tensors: all *minimal* ones (no proper subset is
  a cut). Consecutive single cuts split the graph into segments, and every path is a concatenation
  of one path per segment, so a minimal multi-tensor cut lies inside one segment (a graph output
  that later nodes still read is itself a single cut, and every cut after it would have to contain
  it, so none of those is minimal). Inside a segment, {a, b} is
  a cut iff b is a single cut of the segment once a is removed; {a, b, c} iff c is a single cut once
  a and b are removed. Removing every candidate (pair) and re-running the sweep therefore finds
  every minimal cut, including "non-convex" ones that no single topological order exposes.
  The cost is O(m^k) sweeps of a segment with m tensors, so k = 3 is slow for wide segments.
* Every cut is re-proved by the closure check (`cut_problem`: walk back from the outputs, stop at
  the cut and at constants, never reach a real input; drop any one tensor and the walk does reach
  one) before it is returned. Cuts that contain a real input, or hold only final outputs (the tail
  would compute nothing), are trivial and never returned.
"""

from __future__ import annotations

import functools
import heapq
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from splitcomp_core.bundle import DYNAMIC
from splitcomp_core.errors import SplitcompError

MAX_CUT_TENSORS = 3
Cut = tuple[str, ...]


class ModelError(SplitcompError, ValueError):
    """An ONNX model cannot be read, analysed or cut as asked; the message names the model or tensor."""


@dataclass(frozen=True)
class TensorType:
    """dtype (numpy name) and shape of a tensor at fixed input sizes; DYNAMIC (-1) only for a measured batch dim."""

    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class InputShapeRead:
    """A Shape node that reads a real input, and the node where the value it computes meets the features.

    The path input -> Shape -> ... -> `meets` bypasses every tensor computed before `meets`, so
    none of them is a cut. `source` is set when only the input's batch size is read and the value
    meets one feature tensor (the tensor `x.view(x.size(0), -1)` reshapes, or the tokens a cls token
    expanded to `x.shape[0]` is concatenated with): that tensor's own dim 0 gives the same size if
    it is the batch, which `rebase_batch_reads` measures before it rewrites anything.
    """

    position: int  # of the Shape node
    shape_node: str
    input: str
    meets: str
    source: str | None


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


def find_cuts(g: Graph, max_tensors: int = 1) -> list[Cut]:
    """Every valid cut of up to `max_tensors` tensors (see the module docstring), in topological order."""
    if not 1 <= max_tensors <= MAX_CUT_TENSORS:
        raise ModelError(f"max_tensors must be 1 to {MAX_CUT_TENSORS}, got {max_tensors}")
    sources = tuple(g.real_inputs)
    boundaries, _ = _lone_frontiers(g, g.relevant, sources, g.sinks, frozenset())
    found: list[Cut] = [(t,) for t in boundaries]
    if max_tensors > 1:
        for segment in _segments(g, boundaries):
            found.extend(_segment_cuts(g, segment, max_tensors))
    return sorted((c for c in found if cut_problem(g, c) is None), key=lambda c: (g.cut_position(c), c))


def cut_problem(g: Graph, cut: Sequence[str]) -> str | None:
    """Why `cut` is not a valid, minimal, non-trivial cut, or None when it is (the closure check)."""
    if not cut:
        return "no tensor given"
    if len(set(cut)) != len(cut):
        return f"a tensor is listed twice in {list(cut)}"
    for t in cut:
        if t in g.real_inputs:
            return f"'{t}' is a model input: the tail would need the raw input and the head would do nothing"
        if t not in g.producer and t not in g.initializers:
            return f"there is no tensor named '{t}' in the model"
        if t not in g.dependent:
            return f"'{t}' is a constant (computed from weights alone), not a feature of the input"
    nodes, leak = _tail_walk(g, set(cut))
    if leak is not None:
        return (
            f"{_names(cut)} does not separate the input from the outputs: the path {_bypass(g, cut, leak)} bypasses it"
        )
    if len(cut) > 1:
        for t in cut:
            rest = [u for u in cut if u != t]
            if _tail_walk(g, set(rest))[1] is None:
                return f"'{t}' is redundant: {_names(rest)} alone is already a cut"
    if not nodes:
        return f"{_names(cut)} holds only final outputs: the tail would have nothing to compute"
    return None


def nearest_cuts(g: Graph, cuts: Sequence[Cut], near: str, count: int = 5) -> list[Cut]:
    """The `count` cuts closest to tensor `near` in topological order (for "did you mean" messages)."""
    where = g.position(near)
    return sorted(cuts, key=lambda c: (abs(g.cut_position(c) - where), g.cut_position(c)))[:count]


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
            raise ModelError(f"the part computing {_names(outputs)} from {_names(inputs)} would still need input '{t}'")
        kept.add(g.producer[t])
        stack.extend(g.reads[g.producer[t]])
    missing = [t for t in (*inputs, *outputs) if t not in value_infos]
    if missing:
        raise ModelError(f"no type is known for {_names(missing)}; run ONNX shape inference on the model first")
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


def fixed_input_shapes(
    model: onnx.ModelProto, g: Graph, given: Mapping[str, Sequence[int]] | None = None
) -> dict[str, tuple[int, ...]]:
    """One concrete shape per real input: `given`, else the declared one with a dynamic batch (dim 0) as 1."""
    given = dict(given or {})
    unknown = set(given) - set(g.real_inputs)
    if unknown:
        raise ModelError(f"--input-shape names {sorted(unknown)}, but the model's inputs are {list(g.real_inputs)}")
    declared = {v.name: v for v in model.graph.input}
    shapes = {}
    for name in g.real_inputs:
        tensor = declared[name].type.tensor_type
        if name in given:
            shape = tuple(int(d) for d in given[name])
            if tensor.HasField("shape") and len(tensor.shape.dim) != len(shape):
                raise ModelError(
                    f"input '{name}' has rank {len(tensor.shape.dim)}, but the given shape is {list(shape)}"
                )
            if any(d < 1 for d in shape):
                raise ModelError(f"input shape {list(shape)} for '{name}' must be positive integers")
            shapes[name] = shape
            continue
        if not tensor.HasField("shape"):
            raise ModelError(f"input '{name}' declares no shape; give one with --input-shape {name}=1,3,224,224")
        dims = []
        for k, d in enumerate(tensor.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            elif k == 0:
                dims.append(1)
            else:
                raise ModelError(
                    f"input '{name}' has a dynamic dimension {k} ({d.dim_param or '?'}); "
                    f"give its size with --input-shape {name}=..."
                )
        shapes[name] = tuple(dims)
    return shapes


def infer_tensor_types(
    path: str | os.PathLike,
    model: onnx.ModelProto,
    names: Iterable[str],
    input_shapes: Mapping[str, Sequence[int]],
) -> dict[str, TensorType]:
    """Concrete dtype and shape of each tensor in `names` when the real inputs have `input_shapes`.

    ONNX shape inference runs on the file (infer_shapes_path), never on an in-memory copy of the
    weights, so models over 2 GB with external data work; what it leaves unknown is measured by
    one ONNX Runtime run that exposes those tensors as extra outputs. Tensors that are not plain
    tensors (sequences, maps) are left out of the result.
    """
    wanted = list(dict.fromkeys(names))
    work = _with_inputs(model, input_shapes, symbolic_batch=False)
    with tempfile.TemporaryDirectory(prefix="splitcomp-shapes-") as tmp:
        staged, inferred = Path(tmp) / "model.onnx", Path(tmp) / "inferred.onnx"  # weights stay where they are
        onnx.save(work, str(staged))
        try:
            onnx.shape_inference.infer_shapes_path(str(staged), str(inferred), data_prop=True)
            result = onnx.load(str(inferred), load_external_data=False)
        except (onnx.shape_inference.InferenceError, ValueError, DecodeError):
            result = work
    types = _static_types(result)
    missing = [t for t in wanted if t not in types]
    if missing:
        types.update(_measured_types(work, Path(path).resolve().parent, missing, input_shapes))
    return {t: types[t] for t in wanted if t in types}


def measure_types(
    path: str | os.PathLike,
    model: onnx.ModelProto,
    names: Iterable[str],
    input_shapes: Mapping[str, Sequence[int]],
    dynamic_batch: bool = False,
) -> dict[str, TensorType]:
    """dtype and shape of each tensor in `names` as ONNX Runtime computes them at `input_shapes`.

    Shape inference is not trusted for what goes into a bundle: exporters leave sizes symbolic
    after computed pads and shape arithmetic. With `dynamic_batch` the model runs a second time
    with every real input's dim 0 one larger; a tensor's dim 0 that equals the inputs' batch in
    both runs is the batch and becomes DYNAMIC. Every other dim keeps its measured size, also one
    that grows with the batch without being it (`[batch * tokens, dim]`): the head sends batch 1.
    A model that cannot run at the larger batch gets no dynamic dim.
    """
    wanted = list(dict.fromkeys(names))
    model_dir = Path(path).resolve().parent
    first = _measured_types(_with_inputs(model, input_shapes, dynamic_batch), model_dir, wanted, input_shapes)
    batches = {tuple(s[:1]) for s in input_shapes.values()}
    if not dynamic_batch or len(batches) != 1 or batches == {()}:
        return first
    ((batch,),) = batches
    grown = {n: (batch + 1, *s[1:]) for n, s in input_shapes.items()}
    try:
        second = _measured_types(_with_inputs(model, grown, True), model_dir, wanted, grown)
    except ModelError:
        return first
    types = {}
    for name, t in first.items():
        follows = name in second and t.shape[:1] == (batch,) and second[name].shape[:1] == (batch + 1,)
        types[name] = TensorType(t.dtype, (DYNAMIC, *t.shape[1:])) if follows else t
    return types


def input_shape_reads(model: onnx.ModelProto, g: Graph) -> list[InputShapeRead]:
    """Shape nodes reading a real input whose value reaches the outputs around computed features.

    The value is followed through shape arithmetic (nodes whose inputs are all computed from
    input shapes and constants, such as the pads of TensorFlow "same" padding, which may combine
    several Shape nodes) to the nodes where it meets a feature tensor. A Shape whose value only
    meets the input itself again (a stem's computed padding) bypasses nothing and is not listed.
    """
    derived: set[str] = set()  # computed from the shapes of real inputs and constants alone
    for i in range(len(g.nodes)):
        if _reads_input_shape(g, i) or (
            not derived.isdisjoint(g.reads[i]) and all(t in derived for t in g.reads[i] if t in g.dependent)
        ):
            derived.update(g.writes[i])
    found = []
    for s in g.relevant:
        if not _reads_input_shape(g, s):
            continue
        node = g.nodes[s]
        start, end = _int_attr(node, "start", 0), _int_attr(node, "end", None)
        # `vector`: the whole shape from dim 0, whose element 0 is the batch; `other`: values that
        # depend on other dims. The rest of the chain holds nothing but the batch size.
        vector = set(g.writes[s]) if start == 0 and end != 1 else set()
        other = set(g.writes[s]) if start != 0 else set()
        chain = set(g.writes[s])
        meets: list[int] = []
        batch_only = True
        for i in range(s + 1, len(g.nodes)):
            read = [t for t in g.reads[i] if t in chain]
            if not read:
                continue
            mixed = any(t in vector or t in other for t in read)
            if not all(t in derived for t in g.reads[i] if t in g.dependent):
                meets.append(i)
                batch_only = batch_only and not mixed
                continue
            takes_batch = read == [g.nodes[i].input[0]] and read[0] in vector and _takes_first(model, g, i)
            if mixed and not takes_batch:
                other.update(g.writes[i])
            chain.update(g.writes[i])
        batch_only = batch_only and (vector | other).isdisjoint(g.outputs)
        bypassing = [  # meeting nodes that read a computed feature, not only the input again
            i
            for i in meets
            if i in g.relevant
            and any(t not in g.real_inputs and t not in derived for t in g.reads[i] if t in g.dependent)
        ]
        if not bypassing:
            continue
        found.append(
            InputShapeRead(
                s,
                _node_label(g, s),
                node.input[0],
                _node_label(g, bypassing[0]),
                _batch_source(g, meets, derived) if batch_only else None,
            )
        )
    return found


def rebase_batch_reads(
    path: str | os.PathLike, model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]]
) -> list[InputShapeRead]:
    """Point every batch-only input Shape at the feature tensor its value meets, where that has the same dim 0.

    `x.view(x.size(0), -1)` in a dynamic-batch export reads the batch from the input, and that
    path bypasses every tensor before the view. Reading dim 0 of the reshaped tensor instead gives
    the same value exactly when that dim is the batch, which is measured first (in ONNX Runtime at
    two batch sizes, or at the one fixed batch). `model` is changed in place and re-sorted; the
    rewritten reads are returned.
    """
    g = build_graph(model)
    candidates = [r for r in input_shape_reads(model, g) if r.source is not None]
    if not candidates:
        return []
    declared = {v.name: v.type.tensor_type.shape.dim for v in model.graph.input}
    dynamic = any(not declared[n][0].HasField("dim_value") for n in g.real_inputs if declared[n])
    sources = sorted({r.source for r in candidates if r.source is not None})
    types = measure_types(path, model, sources, input_shapes, dynamic_batch=dynamic)
    done = []
    for r in candidates:
        assert r.source is not None
        dims = types[r.source].shape if r.source in types else ()
        if dims[:1] == ((DYNAMIC,) if dynamic else tuple(input_shapes[r.input][:1])):
            g.nodes[r.position].input[0] = r.source
            done.append(r)
    if done:
        ordered = [onnx.NodeProto() for _ in g.nodes]
        for copy, node in zip(ordered, build_graph(model).nodes):
            copy.CopyFrom(node)
        del model.graph.node[:]
        model.graph.node.extend(ordered)
    return done


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


def _lone_frontiers(
    g: Graph, nodes: Sequence[int], sources: Sequence[str], sinks: frozenset[str], removed: frozenset[str]
) -> tuple[list[str], set[str]]:
    """Single cuts of the sub-DAG of `nodes` between `sources` and `sinks`, with `removed` tensors cut away.

    Keeps the nodes reachable from a source and reaching a sink without passing a removed tensor,
    then sweeps them in order: a tensor is a single cut iff it is the only live value right after
    its producer. Also returns the tensors on some source-to-sink path.
    """
    reach = {s for s in sources if s not in removed}
    forward = []
    for i in nodes:
        if not reach.isdisjoint(g.reads[i]):
            forward.append(i)
            reach.update(t for t in g.writes[i] if t not in removed)
    need = {s for s in sinks if s in reach}
    kept = []
    for i in reversed(forward):
        if not need.isdisjoint(g.writes[i]):
            kept.append(i)
            need.update(t for t in g.reads[i] if t in reach)
    kept.reverse()
    uses = Counter(t for i in kept for t in g.reads[i] if t in need)
    live = {s for s in sources if s in need}
    found: list[str] = []
    for i in kept:
        for t in g.reads[i]:
            if t in need:
                uses[t] -= 1
                if uses[t] == 0 and t not in sinks:
                    live.discard(t)
        live.update(t for t in g.writes[i] if t in need)
        if len(live) == 1:
            found.extend(live)
    return found, need


@dataclass(frozen=True)
class _Segment:
    """Relevant nodes between two consecutive single cuts (or the inputs / the outputs)."""

    nodes: tuple[int, ...]
    sources: tuple[str, ...]
    sinks: frozenset[str]


def _segments(g: Graph, boundaries: Sequence[str]) -> list[_Segment]:
    segments = []
    ends = iter(boundaries)
    end = next(ends, None)
    sources: tuple[str, ...] = g.real_inputs
    nodes: list[int] = []
    for i in g.relevant:
        nodes.append(i)
        if end is not None and i == g.producer[end]:
            segments.append(_Segment(tuple(nodes), sources, frozenset({end})))
            sources, nodes, end = (end,), [], next(ends, None)
    if nodes:
        segments.append(_Segment(tuple(nodes), sources, g.sinks))
    return segments


def _segment_cuts(g: Graph, seg: _Segment, max_tensors: int) -> list[Cut]:
    """Minimal cuts of 2 to `max_tensors` tensors inside one segment.

    Neither the segment's sources nor its single cuts (at most its end: any other would be a
    single cut of the whole graph) can be part of a minimal multi-tensor cut.
    """
    singles, need = _lone_frontiers(g, seg.nodes, seg.sources, seg.sinks, frozenset())
    skip = set(singles) | set(seg.sources)
    members = [t for i in seg.nodes for t in g.writes[i] if t in need and t not in skip]
    rank = {t: k for k, t in enumerate(members)}
    pairs: set[tuple[str, str]] = set()
    for a in members:
        for b in _lone_frontiers(g, seg.nodes, seg.sources, seg.sinks, frozenset({a}))[0]:
            if rank.get(b, -1) > rank[a]:
                pairs.add((a, b))
    cuts: list[Cut] = list(pairs)
    if max_tensors < 3:
        return cuts
    for x, a in enumerate(members):
        for y in range(x + 1, len(members)):
            b = members[y]
            if (a, b) in pairs:
                continue
            for c in _lone_frontiers(g, seg.nodes, seg.sources, seg.sinks, frozenset({a, b}))[0]:
                if rank.get(c, -1) > y and (a, c) not in pairs and (b, c) not in pairs:
                    cuts.append((a, b, c))
    return cuts


def _tail_walk(g: Graph, cut: set[str]) -> tuple[set[int], list[str] | None]:
    """Dependent nodes the tail runs to compute the outputs from `cut`, and a real-input path that
    bypasses the cut (input first), or None when there is none."""
    via: dict[str, str | None] = {}
    stack: list[tuple[str, str | None]] = [(o, None) for o in g.sinks]
    nodes: set[int] = set()
    while stack:
        t, toward = stack.pop()
        if t in via or t in cut:
            continue
        via[t] = toward
        if t in g.real_inputs:
            path = [t]
            step = via[t]
            while step is not None:
                path.append(step)
                step = via[step]
            return nodes, path
        i = g.producer[t]
        nodes.add(i)
        stack.extend((r, t) for r in g.reads[i] if r in g.dependent)
    return nodes, None


def _bypass(g: Graph, cut: Sequence[str], path: Sequence[str]) -> str:
    """The leaking path up to the first tensor past the head, where it goes around the cut."""
    head = head_nodes(g, cut)
    before = [k for k, t in enumerate(path) if t in g.real_inputs or g.producer.get(t) in head]
    end = before[-1] + 2 if before else len(path)
    return " -> ".join([*path[:end], "..."] if end < len(path) else path)


def _names(tensors: Iterable[str]) -> str:
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


def _static_types(model: onnx.ModelProto) -> dict[str, TensorType]:
    """Fully known tensor types declared in the model (inputs, outputs, value_info, initializers)."""
    graph = model.graph
    types = {t.name: TensorType(_np_name(t.data_type), tuple(int(d) for d in t.dims)) for t in graph.initializer}
    for v in (*graph.value_info, *graph.input, *graph.output):
        tensor = v.type.tensor_type
        if not v.type.HasField("tensor_type") or not tensor.elem_type or not tensor.HasField("shape"):
            continue
        dims = tensor.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            types[v.name] = TensorType(_np_name(tensor.elem_type), tuple(d.dim_value for d in dims))
    return types


def _measured_types(
    probe: onnx.ModelProto, model_dir: Path, names: Sequence[str], input_shapes: Mapping[str, Sequence[int]]
) -> dict[str, TensorType]:
    """Run the model once in ONNX Runtime with `names` exposed as outputs and read their types.

    `probe` (structure only, a copy this changes) is passed as bytes and ONNX Runtime reads the
    external weights from the model's own directory, as it refuses external data reached through
    links. The exporter's own value_info is dropped, so a wrong or batch-1 annotation cannot stop the run.
    """
    del probe.graph.value_info[:]
    present = {v.name for v in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=t) for t in names if t not in present)
    rng = np.random.default_rng(0)
    declared = {v.name: v.type.tensor_type.elem_type for v in probe.graph.input}
    feeds = {}
    for name, shape in input_shapes.items():
        dtype = np.dtype(_np_name(declared[name]))
        feeds[name] = rng.standard_normal(shape).astype(dtype) if dtype.kind == "f" else np.zeros(shape, dtype)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(model_dir))
    try:
        session = ort.InferenceSession(
            probe.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
        values = session.run(list(names), feeds)
    except Exception as exc:  # onnxruntime raises its own untyped errors for models it cannot run
        raise ModelError(
            f"ONNX Runtime could not run the model on inputs {dict(input_shapes)} to measure tensor shapes: {exc}"
        ) from exc
    return {t: TensorType(v.dtype.name, tuple(v.shape)) for t, v in zip(names, values) if isinstance(v, np.ndarray)}


def _with_inputs(
    model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]], symbolic_batch: bool
) -> onnx.ModelProto:
    """A structural copy whose real inputs declare `input_shapes` (dim 0 symbolic with `symbolic_batch`)."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    for v in work.graph.input:
        if v.name in input_shapes:
            shape = v.type.tensor_type.shape
            del shape.dim[:]
            for k, d in enumerate(input_shapes[v.name]):
                if k == 0 and symbolic_batch:
                    shape.dim.add().dim_param = "batch"
                else:
                    shape.dim.add().dim_value = int(d)
    return work


def _reads_input_shape(g: Graph, i: int) -> bool:
    node = g.nodes[i]
    return node.op_type == "Shape" and node.domain in ("", "ai.onnx") and node.input[0] in g.real_inputs


def _int_attr(node: onnx.NodeProto, name: str, default: int | None) -> int | None:
    return next((a.i for a in node.attribute if a.name == name), default)


def _constant_ints(g: Graph, model: onnx.ModelProto, name: str) -> list[int] | None:
    """The integer values of a Constant node's output or an inline initializer, else None."""
    if not name:
        return None
    if name in g.producer:
        node = g.nodes[g.producer[name]]
        if node.op_type != "Constant":
            return None
        for attr in node.attribute:
            if attr.name == "value":
                return [int(v) for v in numpy_helper.to_array(attr.t).reshape(-1)]
            if attr.name in ("value_int", "value_ints"):
                return [attr.i] if attr.name == "value_int" else list(attr.ints)
        return None
    tensor = next((t for t in model.graph.initializer if t.name == name), None)
    if tensor is None or tensor.data_location == onnx.TensorProto.EXTERNAL:
        return None
    return [int(v) for v in numpy_helper.to_array(tensor).reshape(-1)]


def _takes_first(model: onnx.ModelProto, g: Graph, i: int) -> bool:
    """Whether node `i` keeps only element 0 of the shape vector it reads (Gather 0 or Slice 0:1)."""
    node = g.nodes[i]
    if node.op_type == "Gather" and _int_attr(node, "axis", 0) == 0:
        return _constant_ints(g, model, node.input[1]) == [0]
    if node.op_type == "Slice" and len(node.input) >= 3:  # opset >= 10: starts, ends, axes, steps as inputs
        given = [_constant_ints(g, model, t) if t else None for t in node.input[1:5]]
        given += [None] * (4 - len(given))
        starts, ends, axes, steps = given
        return starts == [0] and ends == [1] and axes in (None, [0]) and steps in (None, [1])
    return False


def _batch_source(g: Graph, meets: Sequence[int], derived: set[str]) -> str | None:
    """The one feature tensor that all the nodes where the value meets the features read, if there is one.

    Reading the batch from it instead cannot make a cycle: a path from the value to it would run
    through a meeting node, which reads it.
    """
    sources = {t for i in meets for t in g.reads[i] if t in g.dependent and t not in derived}
    if len(sources) != 1:
        return None
    (source,) = sources
    return None if source in g.real_inputs else source


def _node_label(g: Graph, i: int) -> str:
    node = g.nodes[i]
    return f"'{node.name}' ({node.op_type})" if node.name else f"{node.op_type} node #{i}"


def _np_name(elem_type: int) -> str:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
