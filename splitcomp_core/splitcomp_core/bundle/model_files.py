"""The two ONNX files of a cut: their model_id digest, and checks that they fit the manifest and each other.

`model_id` is a digest of head then tail, so the robot and the edge server can prove they run halves of
the same split. The checks read only the graphs' declared inputs and outputs, never the weights, and
refuse weights kept in external files, which the digest would not cover.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx.external_data_helper import uses_external_data

from splitcomp_core.bundle.manifest import Manifest
from splitcomp_core.bundle.schema import DYNAMIC, HEAD_FILE, MANIFEST_FILE, TAIL_FILE
from splitcomp_core.errors import BundleError

_HASH_CHUNK = 1 << 20


def compute_model_id(head_bytes: bytes, tail_bytes: bytes) -> str:
    """Digest of head then tail, each length-prefixed so moving the split point changes the id."""
    digest = hashlib.sha256()
    for part in (head_bytes, tail_bytes):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return "sha256:" + digest.hexdigest()


def model_id_of_files(head_path: str | os.PathLike, tail_path: str | os.PathLike) -> str:
    """`compute_model_id` of two files, streamed so large models are never held in memory twice."""
    digest = hashlib.sha256()
    for path in (Path(head_path), Path(tail_path)):
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@dataclass
class GraphIO:
    """Declared graph inputs and outputs of an ONNX file: name -> (numpy dtype name, dims with DYNAMIC)."""

    inputs: dict[str, tuple[str, list[int]]]
    outputs: dict[str, tuple[str, list[int]]]

    @classmethod
    def read(cls, path: Path) -> GraphIO:
        """Read only what validation needs, refusing weights kept outside the file (model_id would not cover them)."""
        try:
            model = onnx.load(str(path), load_external_data=False)
        except (DecodeError, OSError, ValueError) as exc:
            raise BundleError(f"{path}: not a readable ONNX model ({exc}); re-run split") from exc
        external = next((t for t in _stored_tensors(model) if uses_external_data(t)), None)
        if external is not None:
            raise BundleError(
                f"{path}: tensor '{external.name}' keeps its data in an external file; a bundle must be "
                f"self-contained (model_id covers only {HEAD_FILE} and {TAIL_FILE}, and split writes every weight "
                f"into them): re-run split"
            )
        graph = model.graph
        initialised = {t.name for t in graph.initializer}
        inputs = {v.name: _value_info(v, path) for v in graph.input if v.name not in initialised}
        return cls(inputs=inputs, outputs={v.name: _value_info(v, path) for v in graph.output})


def _stored_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a model carries: initializers and node attributes, in subgraphs and functions too."""

    def in_graph(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
        yield from graph.initializer
        yield from (sparse.values for sparse in graph.sparse_initializer)
        yield from in_nodes(graph.node)

    def in_nodes(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
        for attribute in (a for node in nodes for a in node.attribute):
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            for graph in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                yield from in_graph(graph)

    yield from in_graph(model.graph)
    for function in model.functions:
        yield from in_nodes(function.node)


def _value_info(value: onnx.ValueInfoProto, path: Path) -> tuple[str, list[int]]:
    tensor = value.type.tensor_type
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name if tensor.elem_type else "?"
    except KeyError:
        raise BundleError(
            f"{path}: tensor '{value.name}' has unknown element type {tensor.elem_type}; re-run split"
        ) from None
    dims = [d.dim_value if d.HasField("dim_value") else DYNAMIC for d in tensor.shape.dim]
    return dtype, dims


def _shapes_agree(a: Sequence[int], b: Sequence[int]) -> bool:
    return len(a) == len(b) and all(x == y or DYNAMIC in (x, y) for x, y in zip(a, b))


def check_head(m: Manifest, head: GraphIO, path: Path) -> None:
    """The head takes exactly the image the preprocessor makes and outputs every cut tensor as the manifest says."""
    if list(head.inputs) != [m.input.name]:
        raise BundleError(
            f"{path}: inputs are {list(head.inputs)}; the head must take exactly the image input "
            f"'{m.input.name}' named in {MANIFEST_FILE} input.name"
        )
    dtype, dims = head.inputs[m.input.name]
    image = [m.input.shape[0], 3, m.input.height, m.input.width]  # what the preprocessor hands the head
    if dtype != "float32" or not _shapes_agree(dims, image):
        raise BundleError(
            f"{path}: image input '{m.input.name}' is {dtype} {dims} in {HEAD_FILE} but {MANIFEST_FILE} input "
            f"describes float32 {image} (shape [N, 3, height, width]); re-run split"
        )
    for cut in m.cut:
        if cut.name not in head.outputs:
            raise BundleError(
                f"{path}: cut tensor '{cut.name}' is not an output of {HEAD_FILE} (its outputs: {list(head.outputs)})"
            )
        dtype, dims = head.outputs[cut.name]
        if dtype != cut.dtype or not _shapes_agree(dims, cut.shape):
            raise BundleError(
                f"{path}: cut tensor '{cut.name}' is {dtype} {dims} in {HEAD_FILE} but {cut.dtype} {cut.shape} "
                f"in {MANIFEST_FILE}"
            )


def check_tail(m: Manifest, tail: GraphIO, path: Path) -> None:
    """The tail takes only the cut tensors, as the manifest types them, and gives the manifest's output."""
    cut_names = [c.name for c in m.cut]
    for name in cut_names:
        if name not in tail.inputs:
            raise BundleError(
                f"{path}: cut tensor '{name}' is not an input of {TAIL_FILE} (its inputs: {list(tail.inputs)})"
            )
    extra = [name for name in tail.inputs if name not in cut_names]
    if extra:
        raise BundleError(
            f"{path}: inputs {extra} are not cut tensors; the tail may take only the cut tensors {cut_names} "
            f"(re-split so that everything else comes through the cut)"
        )
    for cut in m.cut:
        dtype, dims = tail.inputs[cut.name]
        if dtype != cut.dtype or not _shapes_agree(dims, cut.shape):
            raise BundleError(
                f"{path}: cut tensor '{cut.name}' is {dtype} {dims} in {TAIL_FILE} but {cut.dtype} {cut.shape} "
                f"in {MANIFEST_FILE}"
            )
    if m.output.name not in tail.outputs:
        raise BundleError(
            f"{path}: output '{m.output.name}' named in {MANIFEST_FILE} output.name is not an output of "
            f"{TAIL_FILE} (its outputs: {list(tail.outputs)})"
        )
    dims = tail.outputs[m.output.name][1]
    if dims and not _shapes_agree(dims, m.output.shape):
        raise BundleError(
            f"{path}: output '{m.output.name}' has shape {dims} in {TAIL_FILE} but {m.output.shape} in {MANIFEST_FILE}"
        )
