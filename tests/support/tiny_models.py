"""Small hand-built ONNX models for the tests, and the tiny bundle that the root conftest.py shares.

Every test file that needs a graph of a few nodes builds it with `onnx_model`, so the opset, IR
version and checking are the same everywhere; pytest.ini puts this folder on the import path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # what the oldest supported ONNX Runtime (system ROS pins) still loads

Shape = Sequence[int | str]
Values = Mapping[str, Shape] | Sequence[onnx.ValueInfoProto]


def values(spec: Values) -> list[onnx.ValueInfoProto]:
    """Value infos from a {name: shape} mapping of float32 tensors, or passed through as they are."""
    if isinstance(spec, Mapping):
        return [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)) for name, shape in spec.items()]
    return list(spec)


def onnx_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Values,
    outputs: Values,
    initializers: Mapping[str, np.ndarray] | Sequence[onnx.TensorProto] = (),
    *,
    opset: int = OPSET,
    ir_version: int | None = IR_VERSION,
    name: str = "g",
    check: bool = True,
) -> onnx.ModelProto:
    """A model of `nodes`; float32 inputs/outputs may be given as {name: shape}, initializers as {name: array}."""
    inits = (
        [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()]
        if isinstance(initializers, Mapping)
        else list(initializers)
    )
    graph = helper.make_graph(list(nodes), name, values(inputs), values(outputs), initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if ir_version is not None:
        model.ir_version = ir_version
    if check:
        onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    """Write `model` to `path` and return the path."""
    Path(path).write_bytes(model.SerializeToString())
    return Path(path)


TINY_LABELS = ["a", "b", "c", "d", "e"]
_RNG = np.random.default_rng(5)
TINY_CONV_W = _RNG.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32)
TINY_FC_W = _RNG.normal(0, 1.0, (4, 5)).astype(np.float32)


def tiny_head(batch: int | str = 1) -> bytes:
    """image [1,3,16,16] -> 3x3 Conv (4 channels) -> Relu -> feat [1,4,16,16] (`batch` "N": any batch)."""
    nodes = [
        helper.make_node("Conv", ["image", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["feat"]),
    ]
    return onnx_model(
        nodes, {"image": [batch, 3, 16, 16]}, {"feat": [batch, 4, 16, 16]}, {"w": TINY_CONV_W}
    ).SerializeToString()


def tiny_tail(batch: int | str = 1) -> bytes:
    """feat [1,4,16,16] -> GlobalAveragePool -> Flatten -> MatMul -> logits [1,5] (`batch` "N": any batch)."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["feat"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["logits"]),
    ]
    return onnx_model(
        nodes, {"feat": [batch, 4, 16, 16]}, {"logits": [batch, 5]}, {"fc": TINY_FC_W}
    ).SerializeToString()


def tiny_pooled_head() -> bytes:
    """The same network cut one step later: image [1,3,16,16] -> Conv -> Relu -> GlobalAveragePool -> p [1,4,1,1]."""
    nodes = [
        helper.make_node("Conv", ["image", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["feat"]),
        helper.make_node("GlobalAveragePool", ["feat"], ["p"]),
    ]
    return onnx_model(nodes, {"image": [1, 3, 16, 16]}, {"p": [1, 4, 1, 1]}, {"w": TINY_CONV_W}).SerializeToString()


def tiny_pooled_tail() -> bytes:
    """p [1,4,1,1] -> Flatten -> MatMul -> logits [1,5]: the rest of the network after `tiny_pooled_head`."""
    nodes = [helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("MatMul", ["f", "fc"], ["logits"])]
    return onnx_model(nodes, {"p": [1, 4, 1, 1]}, {"logits": [1, 5]}, {"fc": TINY_FC_W}).SerializeToString()


TINY_DETECTION_OUTPUTS = {"heatmap": "heat", "scale": "scale", "offset": "offset", "landmarks": "marks"}


def tiny_detection_tail(landmark_channels: int = 10) -> bytes:
    """feat [1,4,16,16] -> four stride-4 1x1 convolutions: CenterFace's outputs for a 16x16 input (heat a sigmoid).

    The heatmap is high where the first feature channel is, so a bright patch of the image makes a peak there.
    """
    rng = np.random.default_rng(7)
    nodes, inits = [], {}
    for role, channels in (("heat", 1), ("scale", 2), ("offset", 2), ("marks", landmark_channels)):
        weight = rng.normal(0, 0.1, (channels, 4, 1, 1)).astype(np.float32)
        if role == "heat":
            weight[0, 0, 0, 0] = 8.0
        inits[f"w_{role}"] = weight
        out = "heat_logit" if role == "heat" else role
        nodes.append(helper.make_node("Conv", ["feat", f"w_{role}"], [out], strides=[4, 4]))
    nodes.append(helper.make_node("Sigmoid", ["heat_logit"], ["heat"]))
    outputs = {
        "heat": [1, 1, 4, 4],
        "scale": [1, 2, 4, 4],
        "offset": [1, 2, 4, 4],
        "marks": [1, landmark_channels, 4, 4],
    }
    return onnx_model(nodes, {"feat": [1, 4, 16, 16]}, outputs, inits).SerializeToString()


def tiny_detection_manifest(**detection_changes):
    """The manifest of tiny_head + tiny_detection_tail as a CenterFace detection bundle (16x16 in, stride 4)."""
    import dataclasses

    from splitcomp_core.bundle import InputSpec, Manifest, OutputSpec, TensorSpec
    from splitcomp_core.detection import DecoderSettings

    settings = DecoderSettings("centerface", dict(TINY_DETECTION_OUTPUTS), 0.5, 4, 0.3, 100)
    return Manifest(
        format_version=1,
        model_id="",
        source="unit-test detector",
        cut=[TensorSpec("feat", [1, 4, 16, 16])],
        input=InputSpec("image", [1, 3, 16, 16], 16, 16, "RGB", [0.0] * 3, [1.0] * 3),
        output=OutputSpec("heat", [1, 1, 4, 4], "probabilities"),
        task="detection",
        detection=dataclasses.replace(settings, **detection_changes),
    )
