"""Train the shipped demo model (ShapesResNet on generated shapes) and export it to ONNX (the `train_shapes` command).

Reproducible: fixed seeds, deterministic torch kernels, a fixed thread count; training images are
generated on the fly from one seed and the held-out images from another. The output directory
holds model.onnx, labels.json and training.json (settings, timings, held-out accuracy of both the
PyTorch model and the ONNX file in ONNX Runtime). It is written beside the target and renamed into
place, so a failed run leaves the previous model untouched.
"""

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import replace_dir
from splitcomp_tools.frames.shapes import CLASS_NAMES, ShapeGenerator
from splitcomp_tools.model.export import export_torch_module
from splitcomp_tools.shapes.model import INPUT_NAME, INPUT_SIZE, OUTPUT_NAME, ShapesResNet, normalize

OPSET = 17
EVAL_BATCH = 100
LABEL_SMOOTHING = 0.05
EPOCH_CHECK_IMAGES = 360  # held-out images scored after each epoch, for the training history


class TrainingError(SplitcompError):
    """Training could not produce a model that may be shipped (accuracy too low, output exists)."""


def train(model: nn.Module, args: argparse.Namespace) -> list[dict[str, float]]:
    """AdamW + one-cycle on images generated on the fly; returns per-epoch loss and accuracy."""
    generator = ShapeGenerator(args.seed, INPUT_SIZE)
    heldout = ShapeGenerator(args.heldout_seed, INPUT_SIZE).batch(min(args.heldout_images, EPOCH_CHECK_IMAGES))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * args.steps_per_epoch, pct_start=0.25
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    history = []
    for epoch in range(args.epochs):
        model.train()
        start, losses = time.perf_counter(), []
        for _ in range(args.steps_per_epoch):
            images, labels = generator.batch(args.batch_size)
            batch = torch.from_numpy(normalize(images)).contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model(batch), torch.from_numpy(labels))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        accuracy = torch_accuracy(model, *heldout)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)),
                "heldout_accuracy": accuracy,
                "seconds": time.perf_counter() - start,
            }
        )
        print(
            f"epoch {epoch + 1}/{args.epochs}: loss {history[-1]['loss']:.4f}, "
            f"held-out accuracy {accuracy:.4f}, {history[-1]['seconds']:.1f} s",
            flush=True,
        )
    return history


@torch.no_grad()
def torch_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(images), EVAL_BATCH):
        logits = model(torch.from_numpy(normalize(images[i : i + EVAL_BATCH])))
        correct += int((logits.argmax(1).numpy() == labels[i : i + EVAL_BATCH]).sum())
    return correct / len(images)


def onnx_accuracy(session: ort.InferenceSession, images: np.ndarray, labels: np.ndarray) -> float:
    correct = 0
    for i in range(0, len(images), EVAL_BATCH):
        (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: normalize(images[i : i + EVAL_BATCH])})
        correct += int((logits.argmax(1) == labels[i : i + EVAL_BATCH]).sum())
    return correct / len(images)


def stage_outputs(model_path: Path) -> list[dict[str, object]]:
    """Tensors leaving each residual stage (and the stem): the natural single-tensor cuts, with shapes."""
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(model_path)))
    shapes = {
        info.name: [d.dim_param or d.dim_value for d in info.type.tensor_type.shape.dim]
        for info in inferred.graph.value_info
    }
    cuts = []
    for node in inferred.graph.node:
        is_stage_end = node.op_type == "Relu" and node.name.startswith("/stage") and node.name.endswith("/relu/Relu")
        if is_stage_end or (node.op_type == "MaxPool" and node.name.startswith("/stem/")):
            output = node.output[0]
            cuts.append({"tensor": output, "shape": shapes[output]})
    return cuts


def _write_outputs(work: Path, model: nn.Module, args: argparse.Namespace) -> dict[str, object]:
    """Export, verify in ONNX Runtime, write labels.json; returns the export and verification record."""
    model_path = work / "model.onnx"
    example = torch.from_numpy(normalize(ShapeGenerator(args.heldout_seed + 1, INPUT_SIZE).batch(2)[0]))
    max_abs_diff = export_torch_module(
        model.eval(),
        example,
        model_path,
        opset=OPSET,
        dynamic_batch=True,
        input_names=(INPUT_NAME,),
        output_names=(OUTPUT_NAME,),
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    images, labels = ShapeGenerator(args.heldout_seed, INPUT_SIZE).batch(args.heldout_images)
    accuracy = onnx_accuracy(session, images, labels)
    if accuracy < args.min_accuracy:
        raise TrainingError(
            f"held-out accuracy of the exported model is {accuracy:.4f}, below --min-accuracy "
            f"{args.min_accuracy}; train longer (--epochs, --steps-per-epoch) or lower the bar"
        )
    (work / "labels.json").write_text(json.dumps(list(CLASS_NAMES), indent=1) + "\n")
    return {
        "export_max_abs_diff": max_abs_diff,
        "heldout_accuracy_onnxruntime": accuracy,
        "heldout_accuracy_torch": torch_accuracy(model, images, labels),
        "model_bytes": model_path.stat().st_size,
        "cut_candidates": stage_outputs(model_path),
    }


def train_and_write(args: argparse.Namespace) -> tuple[Path, dict[str, object], float]:
    """Train, export and verify the model, then put model.onnx, labels.json and training.json in place of
    `args.out` in one step; returns (the output directory, what training.json holds, training seconds)."""
    out = args.out.resolve()
    if out.exists() and not args.overwrite:
        raise TrainingError(f"{out} exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    # channels-last convolutions train faster on CPU; the exported graph is the same.
    model = ShapesResNet(len(CLASS_NAMES)).to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stub omits memory_format keyword
    start = time.perf_counter()
    history = train(model, args)
    train_seconds = time.perf_counter() - start

    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the shipped directory is for everyone to read
    try:
        record = _write_outputs(work, model, args)
        summary = {
            "model": "ShapesResNet",
            "classes": list(CLASS_NAMES),
            "input": {
                "name": INPUT_NAME,
                "shape": ["batch", 3, INPUT_SIZE, INPUT_SIZE],
                "normalization": "RGB / 255, ImageNet mean/std",
            },
            "output": {"name": OUTPUT_NAME, "kind": "logits"},
            "seed": args.seed,
            "heldout_seed": args.heldout_seed,
            "heldout_images": args.heldout_images,
            "epochs": args.epochs,
            "steps_per_epoch": args.steps_per_epoch,
            "batch_size": args.batch_size,
            "images_seen": args.epochs * args.steps_per_epoch * args.batch_size,
            "optimizer": {
                "name": "AdamW",
                "lr": args.lr,
                "weight_decay": args.weight_decay,
                "schedule": "OneCycleLR",
                "label_smoothing": LABEL_SMOOTHING,
            },
            "threads": args.threads,
            "train_seconds": round(train_seconds, 1),
            "total_seconds": round(time.perf_counter() - start, 1),
            "opset": OPSET,
            **record,
            "history": history,
            "versions": {
                "torch": torch.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": ort.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
        }
        (work / "training.json").write_text(json.dumps(summary, indent=1) + "\n")
        replace_dir(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out, summary, train_seconds
