"""ONNX Runtime session wrapper: pick the best available execution provider and say which one runs.

ONNX Runtime quietly falls back to CPU when a GPU provider is missing or fails to load, which on a
robot turns a 5 ms head into a 100 ms one without any error. This wrapper resolves the requested
providers against what the installed build offers, logs the provider that actually runs, can refuse
to run on CPU instead, and warms the session up once so the first real frame is not the slow one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from splitcomp_core.errors import InferenceError, RuntimeSetupError

CPU = "CPUExecutionProvider"
DEFAULT_PROVIDERS = ("CUDAExecutionProvider", CPU)
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": CPU,
    "openvino": "OpenVINOExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}

# Every status ONNX Runtime raises (Fail, InvalidArgument, NotImplemented, EPFail, ...): none may escape
# as a traceback from a node.
_ORT_ERRORS = tuple(
    v for v in vars(ort_state).values() if isinstance(v, type) and issubclass(v, Exception) and v is not Exception
)
_WARMUP_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}

logger = logging.getLogger("splitcomp")


def provider_name(name: str) -> str:
    """Full ONNX Runtime provider name for a short name ("cuda") or a full one ("CUDAExecutionProvider")."""
    key = name.strip()
    if key.lower() in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[key.lower()]
    if key.endswith("ExecutionProvider"):
        return key
    raise RuntimeSetupError(
        f"unknown execution provider {name!r}; use a full ONNX Runtime name such as CUDAExecutionProvider "
        f"or one of: {', '.join(sorted(PROVIDER_ALIASES))}"
    )


def resolve_providers(
    requested: Sequence[str] | str, available: Sequence[str], allow_cpu_fallback: bool = True
) -> list[str]:
    """The requested providers that `available` offers, in the requested order, plus CPU if fallback is allowed.

    `requested` may also be one comma-separated string ("tensorrt,cuda"), as a command line gives it.
    Raises RuntimeSetupError when an accelerator was asked for, none is available and CPU is not allowed.
    """
    names = [n for n in requested.split(",") if n.strip()] if isinstance(requested, str) else requested
    wanted = list(dict.fromkeys(provider_name(n) for n in names))
    if not wanted:
        raise RuntimeSetupError("no execution provider requested; name at least one, e.g. cuda or cpu")
    chosen = [p for p in wanted if p in available]
    accelerators = [p for p in wanted if p != CPU]
    if accelerators and not any(p in chosen for p in accelerators) and not allow_cpu_fallback:
        raise RuntimeSetupError(
            f"none of the requested execution providers {accelerators} is in this onnxruntime build "
            f"(available: {list(available)}); install the matching build (onnxruntime-gpu for CUDA/TensorRT, "
            f"onnxruntime-openvino for OpenVINO) or allow CPU fallback"
        )
    if allow_cpu_fallback and CPU not in chosen:
        chosen.append(CPU)
    return chosen


class InferenceSession:
    """One ONNX Runtime session, created and warmed up once; `run` is the hot path."""

    def __init__(
        self,
        model_path: str | os.PathLike,
        providers: Sequence[str] | str = DEFAULT_PROVIDERS,
        allow_cpu_fallback: bool = True,
        warmup_runs: int = 2,
        intra_op_threads: int | None = None,
        warmup_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        self.path = Path(model_path)
        if not self.path.is_file():
            raise RuntimeSetupError(f"{self.path}: model file not found")
        if intra_op_threads is not None and intra_op_threads < 0:
            raise RuntimeSetupError(
                f"intra_op_threads must be >= 0 (0 = ONNX Runtime's default), got {intra_op_threads}"
            )
        chosen = resolve_providers(providers, ort.get_available_providers(), allow_cpu_fallback)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=options, providers=chosen)
        except _ORT_ERRORS as exc:
            raise RuntimeSetupError(f"{self.path}: ONNX Runtime cannot load this model: {exc}") from exc
        self.providers: list[str] = self._session.get_providers()
        self.provider: str = self.providers[0]
        wanted_accelerator = any(p != CPU for p in chosen)
        if wanted_accelerator and self.provider == CPU and not allow_cpu_fallback:
            raise RuntimeSetupError(
                f"{self.path}: ONNX Runtime could not start {[p for p in chosen if p != CPU]} and fell back to CPU "
                f"(its log above says why, usually missing CUDA, cuDNN or TensorRT libraries); install them or "
                f"allow CPU fallback"
            )
        requested = providers if isinstance(providers, str) else ",".join(providers)
        logger.info("%s runs on %s (requested %s)", self.path.name, self.provider, requested)
        self.input_names: list[str] = [i.name for i in self._session.get_inputs()]
        self.output_names: list[str] = [o.name for o in self._session.get_outputs()]
        self._warmup_shapes = dict(warmup_shapes or {})
        self.warmup(warmup_runs)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model; returns every output by name."""
        try:
            outputs = self._session.run(self.output_names, feeds)
        except _ORT_ERRORS as exc:
            raise InferenceError(f"{self.path.name}: {exc}") from exc
        return dict(zip(self.output_names, outputs))

    def warmup(self, runs: int = 1) -> None:
        """Run the model on random inputs to build kernels and caches.

        Inputs take their `warmup_shapes` entry (the sizes real data will have, so an accelerator
        builds its engine for those), else their declared shape with dynamic sizes as 1.
        """
        if runs <= 0:
            return
        rng = np.random.default_rng(0)
        feeds: dict[str, np.ndarray] = {}
        for arg in self._session.get_inputs():
            dtype = _WARMUP_DTYPES.get(arg.type)
            if dtype is None:
                raise RuntimeSetupError(
                    f"{self.path}: cannot make a warm-up value for input '{arg.name}' of type {arg.type}; "
                    f"use warmup_runs=0"
                )
            shape = self._warmup_shapes.get(arg.name) or [d if isinstance(d, int) and d > 0 else 1 for d in arg.shape]
            if np.issubdtype(dtype, np.floating):
                feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
            else:
                feeds[arg.name] = np.zeros(shape, dtype)
        try:
            for _ in range(runs):
                self._session.run(self.output_names, feeds)
        except _ORT_ERRORS as exc:
            raise RuntimeSetupError(
                f"{self.path}: warm-up run failed on inputs of shapes "
                f"{ {n: list(v.shape) for n, v in feeds.items()} }: {exc}; use warmup_runs=0 if the model "
                f"needs specific input sizes"
            ) from exc
