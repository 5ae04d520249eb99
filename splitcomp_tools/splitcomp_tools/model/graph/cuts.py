"""Where an ONNX model can be cut: the one place cut logic lives (vocabulary in `structure`).

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

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from splitcomp_tools.model.graph.structure import Cut, Graph, ModelError, head_nodes, names

MAX_CUT_TENSORS = 3


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
            f"{names(cut)} does not separate the input from the outputs: the path {_bypass(g, cut, leak)} bypasses it"
        )
    if len(cut) > 1:
        for t in cut:
            rest = [u for u in cut if u != t]
            if _tail_walk(g, set(rest))[1] is None:
                return f"'{t}' is redundant: {names(rest)} alone is already a cut"
    if not nodes:
        return f"{names(cut)} holds only final outputs: the tail would have nothing to compute"
    return None


def nearest_cuts(g: Graph, cuts: Sequence[Cut], near: str, count: int = 5) -> list[Cut]:
    """The `count` cuts closest to tensor `near` in topological order (for "did you mean" messages)."""
    where = g.position(near)
    return sorted(cuts, key=lambda c: (abs(g.cut_position(c) - where), g.cut_position(c)))[:count]


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
