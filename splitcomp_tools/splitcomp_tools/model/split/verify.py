"""head∘tail against the full model in ONNX Runtime: the check a split must pass before it is written."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from splitcomp_core.bundle import InputSpec
from splitcomp_core.images import list_images, read_image
from splitcomp_core.preprocess import Preprocessor
from splitcomp_tools.model.split.spec import SplitError

TOLERANCE = 1e-4  # allowed max abs difference of head+tail against the full model, relative to the output range
MAX_SAMPLES = 256  # random inputs to verify on, each one model input


@dataclass(frozen=True)
class Verification:
    """head∘tail against the full model: worst abs difference and its share of each output's range."""

    max_abs_diff: float
    relative_diff: float
    random_samples: int
    image_samples: int
    nan_mismatch: tuple[str, ...] = ()  # outputs where one side gives NaN and the other does not
    cut_shapes: Mapping[str, list[int]] = dataclasses.field(default_factory=dict)  # what the head computed

    def to_manifest(self) -> dict[str, object]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "relative_diff": self.relative_diff,
            "samples": self.random_samples + self.image_samples,
            "random_samples": self.random_samples,
            "image_samples": self.image_samples,
            "tolerance": TOLERANCE,
            "onnxruntime": ort.__version__,
        }


def verify(
    model_path: str,
    head_bytes: bytes,
    tail_bytes: bytes,
    input_name: str,
    random_inputs: Sequence[np.ndarray],
    image_inputs: Sequence[np.ndarray],
) -> Verification:
    """Run the full model and head -> tail on every input; report the worst disagreement."""
    full, head, tail = (_session(m) for m in (model_path, head_bytes, tail_bytes))
    cut = [o.name for o in head.get_outputs()]
    outputs = [o.name for o in full.get_outputs()]
    worst: dict[str, float] = {}
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    nan_mismatch: list[str] = []
    cut_shapes: dict[str, list[int]] = {}
    for x in (*random_inputs, *image_inputs):
        expected = dict(zip(outputs, full.run(outputs, {input_name: x})))
        features = dict(zip(cut, head.run(cut, {input_name: x})))
        for name, value in features.items():
            if cut_shapes.setdefault(name, list(value.shape)) != list(value.shape):
                raise SplitError(f"the head gives cut tensor '{name}' different shapes for inputs of one size")
        got = dict(zip(outputs, tail.run(outputs, features)))
        for name in outputs:
            ref, actual = (np.asarray(v[name], dtype=np.float64) for v in (expected, got))
            worst[name] = max(worst.get(name, 0.0), float(_abs_diff(ref, actual).max(initial=0.0)))
            if name not in nan_mismatch and np.any(np.isnan(ref) != np.isnan(actual)):
                nan_mismatch.append(name)
            finite = ref[np.isfinite(ref)]
            if finite.size:
                lo[name] = min(lo.get(name, math.inf), float(finite.min()))
                hi[name] = max(hi.get(name, -math.inf), float(finite.max()))
    relative = [worst[n] / (hi[n] - lo[n]) if n in lo and hi[n] > lo[n] else worst[n] for n in worst]
    return Verification(
        max_abs_diff=max(worst.values(), default=0.0),
        relative_diff=max(relative, default=0.0),
        random_samples=len(random_inputs),
        image_samples=len(image_inputs),
        nan_mismatch=tuple(nan_mismatch),
        cut_shapes=cut_shapes,
    )


def _abs_diff(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Elementwise |ref - got|, where NaN in only one of them is an infinite difference.

    Equal values (the same infinity included) and NaN in both differ by 0, so a model that gives
    NaN for some inputs (a Log of a negative) is compared on the rest; NaN never hides a difference.
    """
    with np.errstate(invalid="ignore"):
        diff = np.abs(ref - got)
    diff[(ref == got) | (np.isnan(ref) & np.isnan(got))] = 0.0
    diff[np.isnan(diff)] = math.inf
    return diff


def _session(model: str | bytes) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types are not importable portably
        what = model if isinstance(model, str) else "an extracted part"
        raise SplitError(f"ONNX Runtime cannot load {what}: {exc}") from exc


def random_inputs(shape: Sequence[int], count: int) -> list[np.ndarray]:
    """`count` standard-normal float32 inputs, the same for every run (seed 0)."""
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]


def image_inputs(folder: Path, spec: InputSpec) -> list[np.ndarray]:
    """Every image in `folder`, preprocessed exactly as the head node will do it."""
    if not folder.is_dir():
        raise SplitError(f"{folder}: --images must be a directory of images")
    preprocess = Preprocessor(spec)
    return [preprocess(read_image(path)) for path in list_images(folder)]
