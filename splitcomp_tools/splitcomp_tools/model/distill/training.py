"""Training the bottleneck by distillation from the unsplit model, on unlabeled frames, on the CPU.

The frozen head's cut tensors are computed once (ONNX Runtime, the deployed head), and so are the unsplit
model's answers on them (the frozen tail on float features). Only the bottleneck learns. The loss is
KL(unsplit answer || answer through the bottleneck) + mse_weight * MSE at the cut (relative to the features'
variance) + lambda * rate in kilobytes per frame. A first phase trains without the tail (MSE and rate only: cheap), so
the costly passes through the tail start from a bottleneck that already reconstructs the cut.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from splitcomp_tools.model.distill.bottleneck import Bottleneck

BITS_PER_KB = 8000.0


@dataclass(frozen=True)
class Settings:
    """One bottleneck to train: its size, its rate weight and how long to train it."""

    channels: int = 24
    lam: float = 0.1  # loss per kilobyte per frame
    bits: int = 4
    warmup_epochs: int = 10  # MSE + rate only
    epochs: int = 6  # with the KL through the tail
    batch: int = 32
    lr: float = 2e-3
    seed: int = 0
    # Weight of the relative MSE at the cut. At 1 the KL dominates (nats against a relative MSE near 1) and
    # the bottleneck finds decoded tensors unlike any real cut that the frozen tail maps to the training frames'
    # answers, which no held-out frame shares (docs/distill.md: Lite0 at block 7); 10 keeps them real.
    mse_weight: float = 10.0

    @property
    def name(self) -> str:
        return f"c{self.channels}_l{self.lam:g}"


@dataclass(frozen=True)
class Data:
    """Training frames' cut tensors (N x C x H x W) and the unsplit model's log-probabilities on them."""

    features: torch.Tensor
    teacher: torch.Tensor  # log-probabilities, N x classes


@dataclass(frozen=True)
class Trained:
    model: Bottleneck
    seconds: float
    cpu_seconds: float  # this process's CPU time: what a shared machine's load does not inflate
    history: list[dict[str, float]]


def log_probabilities(scores: torch.Tensor, kind: str) -> torch.Tensor:
    """The tail's output as log-probabilities (a `probabilities` tail already applied its softmax)."""
    return F.log_softmax(scores, dim=1) if kind == "logits" else torch.log(torch.clamp(scores, min=1e-12))


def train(
    data: Data,
    tail: Callable[[torch.Tensor], torch.Tensor],
    kind: str,
    settings: Settings,
    progress: Callable[[str, int, int], None] | None = None,
) -> Trained:
    """Train a bottleneck at `settings` on `data`, with gradients through the frozen `tail` module."""
    torch.manual_seed(settings.seed)
    model = Bottleneck(data.features.shape[1], settings.channels, settings.bits)
    variance = float(data.features.var()) or 1.0
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    total = settings.warmup_epochs + settings.epochs
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, max(1, total * _batches(len(data.features), settings.batch))
    )
    history: list[dict[str, float]] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(total):
        with_tail = epoch >= settings.warmup_epochs
        sums = np.zeros(4)
        model.train()
        for index in _order(len(data.features), settings.batch, settings.seed + epoch):
            x = data.features[index]
            decoded, bits = model(x)
            mse = F.mse_loss(decoded, x) / variance
            rate = bits.mean() / BITS_PER_KB
            kl = torch.zeros(())
            if with_tail:
                student = log_probabilities(tail(decoded), kind)
                teacher = data.teacher[index]
                kl = (teacher.exp() * (teacher - student)).sum(dim=1).mean()
            loss = kl + settings.mse_weight * mse + settings.lam * rate
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            sums += [loss.item(), kl.item(), mse.item(), rate.item() * len(index)]
        steps = _batches(len(data.features), settings.batch)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": sums[0] / steps,
                "kl": sums[1] / steps,
                "mse": sums[2] / steps,
                "kb_per_frame": sums[3] / len(data.features),
            }
        )
        if progress is not None:
            progress(settings.name, epoch + 1, total)
    model.eval()
    return Trained(model, time.perf_counter() - start, time.process_time() - cpu_start, history)


def _batches(count: int, batch: int) -> int:
    return (count + batch - 1) // batch


def _order(count: int, batch: int, seed: int) -> list[torch.Tensor]:
    order = torch.from_numpy(np.random.default_rng(seed).permutation(count))
    return [order[k : k + batch] for k in range(0, count, batch)]


def stack(features: Sequence[np.ndarray]) -> torch.Tensor:
    """Per-frame cut tensors (1 x C x H x W each) as one N x C x H x W float32 tensor."""
    return torch.from_numpy(np.concatenate([np.asarray(f, dtype=np.float32) for f in features]))
