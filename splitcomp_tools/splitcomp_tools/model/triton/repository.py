"""write_triton_repo: one Triton model per cut of a bundle, written beside the repository and moved in whole.

Each model is `<name>/config.pbtxt` and the version folder `<name>/1/` holding what the platform loads:
model.py and tail.onnx (python), model.onnx (onnxruntime_onnx), or model.plan (tensorrt_plan), which is
built on the target GPU by the `build_plan.sh` written beside the tail (a plan is specific to its GPU and
TensorRT version). Nothing is changed in the repository until every model is complete.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from splitcomp_core.bundle import Bundle, dynamic_batch_command, takes_any_batch
from splitcomp_core.triton_session import triton_model_name
from splitcomp_tools.model.triton.config import (
    DEFAULT_QUEUE_DELAY_US,
    MAX_BATCH_LIMIT,
    MAX_QUEUE_DELAY_US,
    PLATFORMS,
    Tensor,
    TritonRepoError,
    config_text,
    tail_tensors,
)
from splitcomp_tools.model.triton.python_model import MODEL_FILE, MODEL_PY, TAIL_FILE

DEFAULT_MAX_BATCH = 16  # for a tail that takes any batch
VERSION = "1"
PLAN_SCRIPT = "build_plan.sh"
CONFIG_FILE = "config.pbtxt"


@dataclasses.dataclass(frozen=True)
class TritonModel:
    """One model written: its name (what tail_node asks for), the cut it serves, and its folder."""

    name: str
    cut_id: str
    platform: str
    max_batch: int
    path: Path


def write_triton_repo(
    bundle: Bundle,
    out: str | os.PathLike,
    *,
    platform: str = "python",
    max_batch: int | None = None,
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
    overwrite: bool = False,
) -> list[TritonModel]:
    """Write a model per cut of `bundle` into the repository `out` (made if missing; other models stay).

    `max_batch` None is 16 for a tail that takes any batch, 1 for a static-batch tail, which refuses more
    (its config says `max_batch_size: 0`: no batching, the full shapes).
    """
    out = Path(out)
    cuts = bundle.all_cuts()
    batch = _max_batch(bundle, max_batch)
    _check_request(bundle.path, out, platform, queue_delay_us, [triton_model_name(c) for c in cuts], overwrite)
    # Triton's onnxruntime and TensorRT backends batch only a model whose first dim is dynamic: a static
    # tail is served with max_batch_size 0 and its full shapes, which the requests of one frame match.
    triton_batch = batch if takes_any_batch(bundle) else 0
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        models = [_write_model(cut, staging, platform, triton_batch, queue_delay_us) for cut in cuts]
        out.mkdir(exist_ok=True)
        for m in models:
            if (out / m.name).exists():
                shutil.rmtree(out / m.name)
            (staging / m.name).rename(out / m.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [dataclasses.replace(m, path=out / m.name) for m in models]


def _max_batch(bundle: Bundle, wanted: int | None) -> int:
    """The batch Triton may merge: any for a dynamic-batch tail, 1 for a static one (with the fix)."""
    batchable = takes_any_batch(bundle)
    if wanted is None:
        return DEFAULT_MAX_BATCH if batchable else 1
    if not 1 <= wanted <= MAX_BATCH_LIMIT:
        raise TritonRepoError(f"--max-batch must be from 1 to {MAX_BATCH_LIMIT}, got {wanted}")
    if wanted > 1 and not batchable:
        raise TritonRepoError(
            f"{bundle.path}: its tail takes a batch of 1 only, so --max-batch {wanted} cannot batch; make a "
            f"dynamic-batch bundle with `{dynamic_batch_command(bundle)}`, or pass --max-batch 1"
        )
    return wanted


def _check_request(
    bundle: Path, out: Path, platform: str, queue_delay_us: int, names: Sequence[str], overwrite: bool
) -> None:
    if platform not in PLATFORMS:
        raise TritonRepoError(f"--platform must be one of {', '.join(PLATFORMS)}, got {platform!r}")
    if not 0 <= queue_delay_us <= MAX_QUEUE_DELAY_US:
        raise TritonRepoError(f"--queue-delay-us must be from 0 to {MAX_QUEUE_DELAY_US}, got {queue_delay_us}")
    if out.exists() and not out.is_dir():
        raise TritonRepoError(f"--out {out}: is a file; name a directory for the model repository")
    if not out.parent.is_dir():
        raise TritonRepoError(f"--out {out}: directory {out.parent} does not exist")
    if out.resolve().is_relative_to(bundle.resolve()):
        raise TritonRepoError(f"--out {out}: is inside the bundle {bundle}; name a repository directory outside it")
    taken = [n for n in names if (out / n).exists()]
    if taken and not overwrite:
        raise TritonRepoError(f"--out {out}: already holds model {', '.join(taken)}; pass --overwrite to replace it")


def _write_model(cut: Bundle, staging: Path, platform: str, max_batch: int, queue_delay_us: int) -> TritonModel:
    name = triton_model_name(cut)
    inputs, outputs = tail_tensors(cut.tail_path)
    config = config_text(name, platform, inputs, outputs, max_batch, queue_delay_us, str(cut.tail_path))
    folder = staging / name
    version = folder / VERSION
    version.mkdir(parents=True)
    if platform == "python":
        shutil.copyfile(cut.tail_path, version / TAIL_FILE)
        (version / MODEL_FILE).write_text(MODEL_PY, encoding="utf-8")
    elif platform == "onnxruntime_onnx":
        shutil.copyfile(cut.tail_path, version / "model.onnx")
    else:
        shutil.copyfile(cut.tail_path, folder / TAIL_FILE)
        script = folder / PLAN_SCRIPT
        script.write_text(plan_script(inputs, max_batch), encoding="utf-8")
        script.chmod(0o755)
    (folder / CONFIG_FILE).write_text(config, encoding="utf-8")
    return TritonModel(name, cut.cut_id, platform, max(max_batch, 1), folder)


def trtexec_command(inputs: Sequence[Tensor], max_batch: int) -> str:
    """trtexec building 1/model.plan from tail.onnx, with a profile of batch 1 to `max_batch` when it batches."""
    args = ["trtexec", f"--onnx={TAIL_FILE}", f"--saveEngine={VERSION}/model.plan"]
    for t in inputs:
        if -1 in t.shape[1:]:
            raise TritonRepoError(
                f"tensor '{t.name}' has shape {list(t.shape)}: TensorRT needs every size but the batch concrete"
            )
    if any(t.shape[:1] == (-1,) for t in inputs):
        for flag, batch in (("min", 1), ("opt", max_batch), ("max", max_batch)):
            specs = [f"{_trt_name(t.name)}:{'x'.join(map(str, (batch, *t.shape[1:])))}" for t in inputs]
            args.append(f"--{flag}Shapes={','.join(specs)}")
    return " ".join(shlex.quote(a) for a in args)


def plan_script(inputs: Sequence[Tensor], max_batch: int) -> str:
    return (
        "#!/bin/sh\n"
        "# Build the TensorRT plan Triton loads (1/model.plan) on the GPU that will serve it: a plan is specific\n"
        "# to its GPU and TensorRT version. Run inside NVIDIA's Triton or TensorRT container; add --fp16 to taste.\n"
        "set -e\n"
        'cd "$(dirname "$0")"\n'
        f"{trtexec_command(inputs, max_batch)}\n"
    )


def _trt_name(name: str) -> str:
    """A tensor name as trtexec's shape lists take it: quoted where it holds their separators."""
    return f"'{name}'" if any(c in name for c in ":,'") else name
