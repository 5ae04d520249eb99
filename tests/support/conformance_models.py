"""One tiny network per architecture family, built with random weights, for the conformance suite.

Each reproduces the construct of its family that makes exporting, cutting or calibrating hard,
at a size that exports in about a second: 32x32 RGB in, 10 classes out.

* residual: ResNet basic blocks, identity and projection shortcuts;
* efficientnet: depthwise convolutions, squeeze-excitation, TensorFlow "same" padding computed from
  the input size in `forward` (what leaves exporters' H and W symbolic), and a flatten that reads
  the batch size from the input (`x.view(inputs.size(0), -1)`, EfficientNet-Lite's own head);
* shuffle: ShuffleNetV2 units, channel split (`chunk`) and channel shuffle (Reshape/Transpose
  with sizes read from the tensor);
* dense: DenseNet blocks, every layer concatenated onto its input;
* vit: a vision transformer: patch embedding, a cls token, position embeddings and timm-style
  attention (`qkv(x).chunk(3)`, which the dynamo exporter writes as Split), cut as [1, tokens, dim];
* two_outputs: a trunk that forks into class logits and a dense map.

`export_family` exports each (family, exporter, batch) once per test session, wherever it is asked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from splitcomp_tools.model.export import export_torch_module

FAMILIES = ("residual", "efficientnet", "shuffle", "dense", "vit", "two_outputs")
EXPORTERS = {"torchscript": 17, "dynamo": 18}  # exporter -> the opset exported at
INPUT_SHAPE = (1, 3, 32, 32)
CLASSES = 10


def conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)
    )


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.conv2 = conv_bn(cin, cout, stride), conv_bn(cout, cout)
        self.shortcut = conv_bn(cin, cout, stride, kernel=1) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + self.shortcut(x))


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 8), nn.ReLU())
        self.layer1, self.layer2 = BasicBlock(8, 8), BasicBlock(8, 16, stride=2)
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(functional.adaptive_avg_pool2d(x, 1), 1))


class SamePadConv2d(nn.Conv2d):
    """TensorFlow "same" padding for any input size: the pads are computed from x in forward (EfficientNet's)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, 0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.size()[-2:]
        kh, kw = self.weight.size()[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h > 0 or pad_w > 0:
            x = nn.ZeroPad2d((pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))(x)
        return functional.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce, self.expand = nn.Conv2d(channels, reduced, 1), nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.expand(functional.silu(self.reduce(functional.adaptive_avg_pool2d(x, 1))))
        return x * torch.sigmoid(scale)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise same-padded conv, squeeze-excitation, 1x1 project."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4) -> None:
        super().__init__()
        hidden = cin * expand
        self.expand = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU())
        self.depthwise = nn.Sequential(SamePadConv2d(hidden, hidden, 3, stride, groups=hidden), nn.BatchNorm2d(hidden))
        self.se = SqueezeExcite(hidden, max(1, cin // 2))
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(functional.silu(self.depthwise(self.expand(x)))))
        return x + y if self.residual else y


class EfficientNetStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(SamePadConv2d(3, 8, 3, 2), nn.BatchNorm2d(8), nn.SiLU())
        self.blocks = nn.Sequential(MBConv(8, 8, 1), MBConv(8, 12, 2), MBConv(12, 12, 1))
        self.head = nn.Sequential(nn.Conv2d(12, 24, 1, bias=False), nn.BatchNorm2d(24), nn.SiLU())
        self.fc = nn.Linear(24, CLASSES)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        bs = inputs.size(0)
        x = functional.adaptive_avg_pool2d(self.head(self.blocks(self.stem(inputs))), 1)
        return self.fc(x.view(bs, -1))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.size()
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit: split the channels (stride 1) or run both branches (stride 2), concatenate, shuffle."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(conv_bn(cin, cin, stride, groups=cin), conv_bn(cin, half, kernel=1), nn.ReLU())
        source = cin if stride > 1 else half
        self.branch2 = nn.Sequential(
            conv_bn(source, half, kernel=1),
            nn.ReLU(),
            conv_bn(half, half, stride, groups=half),
            conv_bn(half, half, 1, kernel=1),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class Shuffle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 8, 2), nn.ReLU())
        self.stage = nn.Sequential(ShuffleUnit(8, 16, 2), ShuffleUnit(16, 16, 1), ShuffleUnit(16, 16, 1))
        self.fc = nn.Linear(16, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.stage(self.stem(x)).mean((2, 3)))


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, growth, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


class Dense(nn.Module):
    def __init__(self, growth: int = 4) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.block1 = nn.Sequential(*(DenseLayer(8 + k * growth, growth) for k in range(3)))
        self.transition = nn.Sequential(
            nn.BatchNorm2d(20), nn.ReLU(), nn.Conv2d(20, 10, 1, bias=False), nn.AvgPool2d(2)
        )
        self.block2 = nn.Sequential(*(DenseLayer(10 + k * growth, growth) for k in range(3)))
        self.norm = nn.BatchNorm2d(22)
        self.fc = nn.Linear(22, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm(self.block2(self.transition(self.block1(self.stem(x))))))
        return self.fc(torch.flatten(functional.adaptive_avg_pool2d(x, 1), 1))


class Attention(nn.Module):
    """timm's ViT attention with one qkv projection split by chunk(3)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, dim * 3), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = (t.reshape(b, n, self.heads, c // self.heads).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        weights = (q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5).softmax(-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, dim: int = 32, depth: int = 2, heads: int = 4, patch: int = 8) -> None:
        super().__init__()
        tokens = (INPUT_SHAPE[2] // patch) * (INPUT_SHAPE[3] // patch) + 1
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(depth)))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


class TwoOutputs(nn.Module):
    """A shared trunk forking into class logits (the first output) and a dense map."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            conv_bn(3, 8), nn.ReLU(), conv_bn(8, 8, stride=2), nn.ReLU(), conv_bn(8, 16, 2), nn.ReLU()
        )
        self.fc = nn.Linear(16, CLASSES)
        self.segment = nn.Conv2d(16, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)
        return self.fc(features.mean((2, 3))), self.segment(features)


BUILDERS = {
    "residual": Residual,
    "efficientnet": EfficientNetStyle,
    "shuffle": Shuffle,
    "dense": Dense,
    "vit": ViT,
    "two_outputs": TwoOutputs,
}
OUTPUTS = {"two_outputs": ("logits", "mask")}


def build(family: str) -> nn.Module:
    """The family's network with seeded random weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(FAMILIES.index(family))
    module = BUILDERS[family]()
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return module.eval()


@dataclass(frozen=True)
class Exported:
    family: str
    exporter: str
    dynamic_batch: bool
    path: Path
    module: nn.Module
    outputs: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.family}-{self.exporter}-{'dynamic' if self.dynamic_batch else 'static'}"


_EXPORTED: dict[tuple[str, str, bool], Exported] = {}


def export_family(family: str, exporter: str, dynamic_batch: bool, root: Path) -> Exported:
    """The family exported by splitcomp's own `export` (checked against PyTorch there), once per session."""
    key = (family, exporter, dynamic_batch)
    if key not in _EXPORTED:
        module = build(family)
        outputs = OUTPUTS.get(family, ("logits",))
        path = root / f"{family}-{exporter}-{'dynamic' if dynamic_batch else 'static'}.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        example = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
        export_torch_module(
            module,
            example,
            path,
            opset=EXPORTERS[exporter],
            dynamic_batch=dynamic_batch,
            output_names=outputs,
            dynamo=exporter == "dynamo",
        )
        _EXPORTED[key] = Exported(family, exporter, dynamic_batch, path, module, outputs)
    return _EXPORTED[key]
