"""`distill`: a bundle whose head ends in a trained encoder and whose tail begins with its decoder.

The result is a bundle like any other, so neither node needs PyTorch or a code path of its own: head.onnx emits
integer symbols (as float32) in 0 .. 2**bits - 1, the manifest quantizes with mode clip over exactly that range
(the codes are the symbols), codec entropy, and the bundle's entropy.json holds the per-channel tables fitted on
the training frames' symbols, which the nodes code with constriction as they code any entropy-coded cut.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from splitcomp_core.bundle import load_bundle
from splitcomp_core.bundle.manifest import Bundle, QuantizationSpec, TensorSpec
from splitcomp_core.bundle.write import write_bundle
from splitcomp_core.entropy import ENTROPY_FILE, entropy_document, fit_table
from splitcomp_core.files import fsync_dir, replace_dir, write_durably
from splitcomp_core.head import HeadPipeline
from splitcomp_tools.model import graph as gr
from splitcomp_tools.model.costs import node_flops
from splitcomp_tools.model.distill.bottleneck import SYMBOLS_NAME, Bottleneck, head_with_encoder, tail_with_decoder
from splitcomp_tools.model.distill.errors import DistillError
from splitcomp_tools.model.distill.torch_graph import tail_route
from splitcomp_tools.model.distill.training import Data, Settings, Trained, log_probabilities, stack, train

MIN_FRAMES = 16
MAX_FEATURE_BYTES = 4 << 30  # the training frames' cut tensors, held in memory at once
ROUTE_SAMPLES = 4
TIMING_RUNS = 20
CURVE_FILE = "curve.json"


@dataclass(frozen=True)
class Distilled:
    """One trained bottleneck, written as a bundle."""

    settings: Settings
    path: Path
    seconds: float
    cpu_seconds: float
    history: list[dict[str, float]]
    encoder_flops: int
    head_flops: int  # the distilled head's, encoder included
    symbols: list[int]

    @property
    def encoder_share(self) -> float:
        return self.encoder_flops / self.head_flops if self.head_flops else 0.0


def check_bundle(bundle: Bundle) -> TensorSpec:
    """The one 4-d cut tensor a bottleneck can be trained at; DistillError otherwise."""
    if bundle.cuts:
        raise DistillError(
            f"{bundle.path} is a multi-cut bundle; distill one of its cut folders ({bundle.path}/cuts/<cut_id>)"
        )
    if len(bundle.manifest.cut) != 1:
        names = ", ".join(t.name for t in bundle.manifest.cut)
        raise DistillError(f"{bundle.path} has {len(bundle.manifest.cut)} cut tensors ({names}); distill needs one")
    spec = bundle.manifest.cut[0]
    if len(spec.shape) != 4 or spec.dtype != "float32":
        raise DistillError(f"the cut '{spec.name}' is {spec.dtype} {spec.shape}; distill needs a float32 N x C x H x W")
    return spec


def training_data(bundle: Bundle, frames: Sequence[np.ndarray], threads: int) -> tuple[Data, torch.nn.Module]:
    """The frozen head's cut tensors of `frames` (every second one mirrored), the tail's route, its answers."""
    spec = check_bundle(bundle)
    if len(frames) < MIN_FRAMES:
        raise DistillError(f"{len(frames)} training frames; distill needs at least {MIN_FRAMES} (--train-count)")
    per_frame = 4 * int(np.prod([max(1, d) for d in spec.shape]))
    if per_frame * len(frames) > MAX_FEATURE_BYTES:
        raise DistillError(f"{len(frames)} frames of {per_frame} bytes at the cut exceed {MAX_FEATURE_BYTES} bytes")
    head = HeadPipeline(bundle, intra_op_threads=threads)
    features = [
        head.features(np.ascontiguousarray(f[:, ::-1]) if k % 2 else f)[0][spec.name] for k, f in enumerate(frames)
    ]
    output = bundle.manifest.output
    route = tail_route(bundle.tail_path, output.name, [{spec.name: f} for f in features[:ROUTE_SAMPLES]])
    x = stack(features)
    with torch.no_grad():
        teacher = torch.cat([log_probabilities(route(x[k : k + 64]), output.kind) for k in range(0, len(x), 64)])
    return Data(x, teacher), route


def distill(
    bundle: Bundle,
    data: Data,
    route: torch.nn.Module,
    settings: Sequence[Settings],
    out: Path,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    judge: Callable[[Path], Any] | None = None,
    curve: Callable[[list[tuple[Distilled, Any]]], str] | None = None,
    training_images: str = "",
) -> list[tuple[Distilled, Any]]:
    """Train one bottleneck per setting; one setting writes the bundle `out`, several write `out/<name>/` each
    and `out/CURVE_FILE` (the text `curve` makes of them). `judge(path)` measures each written bundle.
    `training_images` (the frames' source) is recorded in each manifest, so nothing is judged on them later.

    Either everything is written or nothing: several bundles are built in a temp folder renamed onto `out`.
    """
    if out.exists() and not overwrite:
        raise DistillError(f"{out} already exists; choose another --out or pass --overwrite")
    if len(settings) == 1:
        made = _one(bundle, data, route, settings[0], out, overwrite, progress, training_images)
        return [(made, judge(made.path) if judge else None)]
    tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        results = []
        for s in settings:
            made = _one(bundle, data, route, s, tmp / s.name, False, progress, training_images)
            results.append((made, judge(made.path) if judge else None))
        if curve is not None:
            write_durably(tmp / CURVE_FILE, curve(results).encode("utf-8"))
        fsync_dir(tmp)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [(dataclasses.replace(d, path=out / d.settings.name), point) for d, point in results]


def _one(
    bundle: Bundle,
    data: Data,
    route: torch.nn.Module,
    settings: Settings,
    out: Path,
    overwrite: bool,
    progress: Callable[[str, int, int], None] | None,
    training_images: str,
) -> Distilled:
    trained = train(data, route, bundle.manifest.output.kind, settings, progress)
    spec = bundle.manifest.cut[0]
    shape = [spec.shape[0], settings.channels, *spec.shape[2:]]
    head = head_with_encoder(onnx.load(str(bundle.head_path)), spec.name, trained.model, shape)
    tail = tail_with_decoder(onnx.load(str(bundle.tail_path)), spec.name, trained.model, shape)
    with torch.no_grad():
        symbols = torch.cat(
            [trained.model.symbols(data.features[k : k + 256]) for k in range(0, len(data.features), 256)]
        )
    codes = symbols.numpy().astype(np.uint8)
    table = fit_table(SYMBOLS_NAME, settings.bits, "clip", [c[None] for c in codes])
    levels = (1 << settings.bits) - 1
    manifest = dataclasses.replace(
        bundle.manifest,
        source=str(bundle.path),
        cut=[TensorSpec(SYMBOLS_NAME, shape, "float32")],
        quantization=QuantizationSpec(settings.bits, "clip", 0.0, float(levels), "entropy"),
        verification={
            **_verification(trained, data, route, bundle.manifest.output.kind),
            "training_images": training_images or "unnamed",
        },
        created_by="splitcomp_tools distill",
    )
    labels = bundle.labels if bundle.manifest.labels_file else None
    written = write_bundle(
        out,
        head.SerializeToString(),
        tail.SerializeToString(),
        manifest,
        labels,
        overwrite=overwrite,
        extra_files={ENTROPY_FILE: entropy_document([table]).encode("utf-8")},
    )
    encoder, total = encoder_flops(head)
    return Distilled(
        settings,
        written.path,
        trained.seconds,
        trained.cpu_seconds,
        trained.history,
        encoder,
        total,
        np.bincount(codes.ravel()).tolist(),
    )


def _verification(trained: Trained, data: Data, route: torch.nn.Module, kind: str) -> dict[str, Any]:
    """What stands in for split's head∘tail check: the bottleneck's agreement with the unsplit model on its
    training frames (the judged, held-out figures come from calibrate and bench video)."""
    with torch.no_grad():
        agree, worst = 0, 0.0
        for k in range(0, len(data.features), 64):
            x = data.features[k : k + 64]
            decoded, _ = trained.model(x)
            student = log_probabilities(route(decoded), kind)
            teacher = data.teacher[k : k + 64]
            agree += int((student.argmax(1) == teacher.argmax(1)).sum())
            worst = max(worst, float((student.exp() - teacher.exp()).abs().max()))
    frames = len(data.features)
    return {"kind": "distillation", "max_abs_diff": worst, "samples": frames, "training_agreement": agree / frames}


def encoder_flops(head: onnx.ModelProto) -> tuple[int, int]:
    """(FLOPs of the encoder's nodes, FLOPs of the whole distilled head), counted as `analyze` counts them."""
    inferred = onnx.shape_inference.infer_shapes(head)
    types = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = tuple(d.dim_value or 1 for d in info.type.tensor_type.shape.dim)  # a dynamic batch counts as 1
        if dims:
            types[info.name] = gr.TensorType("float32", dims)
    for init in inferred.graph.initializer:
        types[init.name] = gr.TensorType("float32", tuple(init.dims))
    flops = [(n.name.startswith("bottleneck/"), node_flops(n, types)) for n in inferred.graph.node]
    return sum(f for ours, f in flops if ours), sum(f for _, f in flops)


def head_times(original: Path, distilled: Path, spec_input: tuple[str, list[int]], threads: int) -> tuple[float, float]:
    """Median milliseconds of the original and the distilled head.onnx on the same input (ONNX Runtime, CPU)."""
    name, shape = spec_input
    x = np.random.default_rng(0).standard_normal([max(1, d) for d in shape]).astype(np.float32)
    times = []
    for path in (original, distilled):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        session.run(None, {name: x})
        runs = []
        for _ in range(TIMING_RUNS):
            t0 = time.perf_counter()
            session.run(None, {name: x})
            runs.append((time.perf_counter() - t0) * 1e3)
        times.append(statistics.median(runs))
    return times[0], times[1]


def load(path: str | os.PathLike) -> Bundle:
    """The bundle to distill, checked for one trainable cut."""
    bundle = load_bundle(path)
    check_bundle(bundle)
    return bundle


__all__ = ["Bottleneck", "Distilled", "check_bundle", "distill", "encoder_flops", "head_times", "load", "training_data"]
