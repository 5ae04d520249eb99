"""dtype and shape of the tensors of an ONNX model at fixed input sizes: inferred, or measured in ONNX Runtime.

Every size that input controls is bounded (MAX_INPUT_ELEMENTS) before anything of that size exists.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError

from splitcomp_core.bundle import DYNAMIC
from splitcomp_tools.model.graph.structure import Graph, ModelError

# Largest model input measured or exported (elements; 256 MB of float32, e.g. 1x3x4096x4096 fits):
# shapes come from the command line or the file, so they are bounded before anything is allocated.
MAX_INPUT_ELEMENTS = 1 << 26


@dataclass(frozen=True)
class TensorType:
    """dtype (numpy name) and shape of a tensor at fixed input sizes; DYNAMIC (-1) only for a measured batch dim."""

    dtype: str
    shape: tuple[int, ...]


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
    for name, shape in shapes.items():
        check_input_size(shape, f"input '{name}'")
    return shapes


def check_input_size(shape: Sequence[int], what: str) -> None:
    """Refuse an input shape of more than MAX_INPUT_ELEMENTS elements before anything of that size exists."""
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise ModelError(
            f"{what} of shape {list(shape)} has {math.prod(shape):,} elements, more than the {MAX_INPUT_ELEMENTS:,} "
            f"this tool allocates; measure at a smaller size (e.g. batch 1)"
        )


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


def _np_name(elem_type: int) -> str:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
