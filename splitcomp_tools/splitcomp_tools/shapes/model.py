"""ShapesResNet: the small ResNet the project ships as its demo model.

It has the structure of the models split computing is meant for (a strided stem, four residual
stages that halve the resolution and widen the channels, global pooling, a linear head), so its
stage outputs are natural cut points, yet it is small enough to train on a 2-core CPU in minutes
and to run at camera rate there. Module names are chosen so exported ONNX node and tensor names
read like `/stage2/block1/relu/Relu_output_0`.
"""

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
INPUT_SIZE = 128
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DEFAULT_WIDTHS = (16, 32, 96, 192)  # wide late stages are cheap at 8x8 and 4x4 pixels


def normalize(images: np.ndarray) -> np.ndarray:
    """N x H x W x 3 uint8 RGB -> N x 3 x H x W float32 model input (RGB/255, ImageNet mean/std).

    The same arithmetic as the project's default preprocessing, for whole batches that are
    already at the model's size (training, held-out checks, tests).
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be N x H x W x 3 uint8 RGB, got {images.dtype} {images.shape}")
    scale = (1.0 / (255.0 * np.asarray(STD))).astype(np.float32)
    shift = (-np.asarray(MEAN) / np.asarray(STD)).astype(np.float32)
    return np.ascontiguousarray((images * scale + shift).transpose(0, 3, 1, 2))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions plus a shortcut: identity, or a 1x1 projection when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                    bn=nn.BatchNorm2d(out_channels),
                )
            )
        else:
            self.shortcut = nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu(y + self.shortcut(x))


class ShapesResNet(nn.Module):
    """Input: N x 3 x 128 x 128, RGB/255 normalised with ImageNet MEAN/STD. Output: class logits."""

    def __init__(self, num_classes: int, widths: Sequence[int] = DEFAULT_WIDTHS, blocks_per_stage: int = 1) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if len(widths) < 4 or blocks_per_stage < 1:
            raise ValueError(
                f"need at least 4 stage widths and 1 block per stage, got {list(widths)} x {blocks_per_stage}"
            )
        # A stride-4 stem as in ResNet: the stages then work at 32, 16, 8 and 4 pixels for a 128 input.
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(3, widths[0], 5, stride=2, padding=2, bias=False),
                bn=nn.BatchNorm2d(widths[0]),
                relu=nn.ReLU(inplace=True),
                pool=nn.MaxPool2d(3, stride=2, padding=1),
            )
        )
        self.stage_names = tuple(f"stage{index + 1}" for index in range(len(widths)))
        in_channels = widths[0]
        for index, width in enumerate(widths):
            blocks: OrderedDict[str, nn.Module] = OrderedDict()
            for b in range(blocks_per_stage):
                stride = 2 if index > 0 and b == 0 else 1
                blocks[f"block{b + 1}"] = BasicBlock(in_channels, width, stride)
                in_channels = width
            self.add_module(self.stage_names[index], nn.Sequential(blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # Zero-init the last BN of each block: every block starts as identity, which trains faster.
        for module in self.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.fc(torch.flatten(self.pool(x), 1))
