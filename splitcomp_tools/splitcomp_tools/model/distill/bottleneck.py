"""The learned bottleneck: an encoder to a few channels of integer symbols, a decoder back, and their rate.

The encoder ends in (2**bits - 1) * sigmoid, so its output already lies in the symbol range; rounding it gives
the symbols, which the head's quantizer (mode clip, 0 .. 2**bits - 1) passes through unchanged, so the codes on
the wire are the symbols and the existing entropy codec carries them. The rate in training comes from a
factorized per-channel prior (a discretized logistic per channel, as CompressAI's EntropyBottleneck is a learned
per-channel density): -log2 P(y + u) with additive uniform noise u, the usual differentiable stand-in for
rounding. CompressAI 1.2.8 would provide that prior, but it needs numpy < 2 and torchvision, neither of which
installs beside the pinned numpy 2 and CPU torch; the tables the nodes code with are fitted afterwards on the
real symbols (splitcomp_core.entropy.fit_table), so only the training's rate estimate comes from this prior.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

SYMBOLS_NAME = "bottleneck/symbols"  # the cut tensor of a distilled bundle
_PREFIX = "bottleneck/"


class Bottleneck(nn.Module):
    """Encoder (1x1 widening, 3x3 to `channels`), per-channel prior, decoder (3x3, 3x3, 1x1 back to the cut)."""

    def __init__(self, cut_channels: int, channels: int, bits: int, width: int = 128) -> None:
        super().__init__()
        self.levels = (1 << bits) - 1
        self.encoder = nn.Sequential(
            nn.Conv2d(cut_channels, width, 1), nn.ReLU(), nn.Conv2d(width, channels, 3, padding=1)
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, cut_channels, 1),
        )
        self.prior_mean = nn.Parameter(torch.full((channels,), self.levels / 2))
        self.prior_log_scale = nn.Parameter(torch.zeros(channels))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous symbols in [0, levels]."""
        return self.levels * torch.sigmoid(self.encoder(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(decoded cut tensor from the rounded symbols, bits per sample under the prior with noise)."""
        y = self.encode(x)
        rounded = y + (torch.round(y) - y).detach()  # straight-through: the decoder sees what the wire carries
        bits = self.bits(y + torch.empty_like(y).uniform_(-0.5, 0.5) if self.training else torch.round(y))
        return self.decoder(rounded), bits

    def bits(self, y: torch.Tensor) -> torch.Tensor:
        """-log2 of the discretized-logistic probability of each value, summed per sample."""
        mean = self.prior_mean.view(1, -1, 1, 1)
        scale = torch.exp(self.prior_log_scale).view(1, -1, 1, 1)
        upper = torch.where(y > self.levels - 0.5, torch.ones_like(y), torch.sigmoid((y + 0.5 - mean) / scale))
        lower = torch.where(y < 0.5, torch.zeros_like(y), torch.sigmoid((y - 0.5 - mean) / scale))
        probability = torch.clamp(upper - lower, min=1e-9)
        return (-torch.log2(probability)).flatten(1).sum(dim=1)

    def symbols(self, x: torch.Tensor) -> torch.Tensor:
        """What the exported head emits: the rounded, clipped symbols (as float, the head's cut dtype)."""
        return torch.clamp(torch.round(self.encode(x)), 0, self.levels)


def _conv_nodes(layers: nn.Sequential, source: str, target: str, tag: str) -> Iterator[tuple[onnx.NodeProto, list]]:
    """ONNX nodes (and their initializers) of a Conv2d/ReLU stack from tensor `source` to tensor `target`."""
    current = source
    modules = list(layers)
    for index, module in enumerate(modules):
        out = target if index == len(modules) - 1 else f"{_PREFIX}{tag}{index}"
        if isinstance(module, nn.Conv2d):
            w, b = f"{_PREFIX}{tag}{index}.weight", f"{_PREFIX}{tag}{index}.bias"
            pad = int(module.padding[0])
            node = helper.make_node(
                "Conv",
                [current, w, b],
                [out],
                name=f"{_PREFIX}{tag}{index}",
                kernel_shape=list(module.kernel_size),
                pads=[pad] * 4,
                strides=list(module.stride),
            )
            inits = [_initializer(w, module.weight), _initializer(b, module.bias)]
            yield node, inits
        elif isinstance(module, nn.ReLU):
            yield helper.make_node("Relu", [current], [out], name=f"{_PREFIX}{tag}{index}"), []
        else:  # pragma: no cover - the stacks above hold only these
            raise TypeError(f"no ONNX form for {type(module).__name__}")
        current = out


def _initializer(name: str, value: torch.Tensor | None) -> TensorProto:
    assert value is not None
    return numpy_helper.from_array(value.detach().cpu().numpy().astype(np.float32), name)


def head_with_encoder(head: onnx.ModelProto, cut: str, model: Bottleneck, shape: list[int]) -> onnx.ModelProto:
    """The frozen head followed by the encoder: its one output becomes SYMBOLS_NAME, integers as float32."""
    out = onnx.ModelProto()
    out.CopyFrom(head)
    graph = out.graph
    logits = f"{_PREFIX}logits"
    for node, inits in _conv_nodes(model.encoder, cut, logits, "enc"):
        graph.node.append(node)
        graph.initializer.extend(inits)
    levels = numpy_helper.from_array(np.array(model.levels, dtype=np.float32), f"{_PREFIX}levels")
    zero = numpy_helper.from_array(np.array(0, dtype=np.float32), f"{_PREFIX}zero")
    graph.initializer.extend([levels, zero])
    graph.node.extend(
        [
            helper.make_node("Sigmoid", [logits], [f"{_PREFIX}unit"], name=f"{_PREFIX}sigmoid"),
            helper.make_node("Mul", [f"{_PREFIX}unit", levels.name], [f"{_PREFIX}scaled"], name=f"{_PREFIX}scale"),
            helper.make_node("Round", [f"{_PREFIX}scaled"], [f"{_PREFIX}rounded"], name=f"{_PREFIX}round"),
            helper.make_node(
                "Clip", [f"{_PREFIX}rounded", zero.name, levels.name], [SYMBOLS_NAME], name=f"{_PREFIX}clip"
            ),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(SYMBOLS_NAME, TensorProto.FLOAT, shape))
    onnx.checker.check_model(out)
    return out


def tail_with_decoder(tail: onnx.ModelProto, cut: str, model: Bottleneck, shape: list[int]) -> onnx.ModelProto:
    """The decoder followed by the frozen tail: its one input becomes SYMBOLS_NAME."""
    out = onnx.ModelProto()
    out.CopyFrom(tail)
    graph = out.graph
    nodes, inits = [], []
    for node, node_inits in _conv_nodes(model.decoder, SYMBOLS_NAME, cut, "dec"):
        nodes.append(node)
        inits.extend(node_inits)
    original = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + original)
    graph.initializer.extend(inits)
    kept = [i for i in graph.input if i.name != cut]
    del graph.input[:]
    graph.input.extend([helper.make_tensor_value_info(SYMBOLS_NAME, TensorProto.FLOAT, shape), *kept])
    onnx.checker.check_model(out)
    return out
