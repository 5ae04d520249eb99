"""The config.pbtxt of a tail: its tensors as Triton declares them, the batcher and where the model runs.

With `max_batch_size` above 0 Triton's dims leave out the batch axis, which every input and output of
the tail must then lead with; a static-batch tail (batch fixed at 1) serves with `max_batch_size: 0` and
its full shapes, the only way Triton's onnxruntime and TensorRT backends take a fixed first dim.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from splitcomp_core.errors import SplitcompError

PLATFORMS = ("python", "onnxruntime_onnx", "tensorrt_plan")
DEFAULT_QUEUE_DELAY_US = 2000  # how long Triton holds a request for others to batch with
MAX_QUEUE_DELAY_US = 10_000_000
MAX_BATCH_LIMIT = 4096
TRITON_TYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}


class TritonRepoError(SplitcompError):
    """A repository that cannot be written as asked; nothing was written."""


@dataclass(frozen=True)
class Tensor:
    """One input or output of the tail: its name, Triton data type and full shape (-1: symbolic)."""

    name: str
    data_type: str
    shape: tuple[int, ...]


def tail_tensors(tail_path: Path) -> tuple[list[Tensor], list[Tensor]]:
    """The tail's inputs (its cut tensors) and outputs as declared in its ONNX file."""
    graph = onnx.load(str(tail_path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}

    def tensor(v: onnx.ValueInfoProto) -> Tensor:
        kind = v.type.tensor_type
        if kind.elem_type not in TRITON_TYPES:
            raise TritonRepoError(
                f"{tail_path}: tensor '{v.name}' is {onnx.TensorProto.DataType.Name(kind.elem_type)}, which this "
                f"tool does not map to a Triton type ({', '.join(TRITON_TYPES.values())})"
            )
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim)
        return Tensor(v.name, TRITON_TYPES[kind.elem_type], dims)

    return [tensor(v) for v in graph.input if v.name not in weights], [tensor(v) for v in graph.output]


def model_dims(tensors: Sequence[Tensor], max_batch: int, where: str) -> list[tuple[Tensor, tuple[int, ...]]]:
    """Each tensor with the dims config.pbtxt declares: without the batch axis when Triton batches."""
    if max_batch == 0:
        return [(t, t.shape) for t in tensors]
    for t in tensors:
        if not t.shape or t.shape[0] not in (-1, 1):
            raise TritonRepoError(
                f"{where}: tensor '{t.name}' has shape {list(t.shape)}, which does not lead with a batch axis; "
                f"Triton's batching needs every input and output to"
            )
    return [(t, t.shape[1:]) for t in tensors]


def config_text(
    name: str,
    platform: str,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    max_batch: int,
    queue_delay_us: int,
    where: str,
) -> str:
    """config.pbtxt: the python backend on CPU instances, onnxruntime_onnx and tensorrt_plan on a GPU."""
    engine = 'backend: "python"' if platform == "python" else f'platform: "{platform}"'
    lines = [f"name: {_quoted(name)}", engine, f"max_batch_size: {max_batch}"]
    for key, tensors in (("input", inputs), ("output", outputs)):
        entries = [
            f"  {{ name: {_quoted(t.name)} data_type: {t.data_type} dims: [ {', '.join(map(str, dims))} ] }}"
            for t, dims in model_dims(tensors, max_batch, where)
        ]
        lines += [f"{key} [", ",\n".join(entries), "]"]
    if max_batch > 1:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}")
    kind = "KIND_CPU" if platform == "python" else "KIND_GPU"
    lines.append(f"instance_group [ {{ kind: {kind} count: 1 }} ]")
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    """A protobuf text-format string: JSON's escapes of quotes, backslashes and control characters."""
    return json.dumps(text, ensure_ascii=False)
