"""Model zoo for the export / analyze / split tests: tiny real architectures, each exported once per session.

Every model takes 1x3x32x32 input so a whole test file stays fast on two busy cores. The zoo covers
the shapes that make cut finding hard: skip connections with identity and projection shortcuts
(ResNet), depthwise convolutions and inverted residuals (MobileNetV2), a trunk that forks into two
outputs, two parallel branches that only merge late (cuts there need two tensors), and a hand-built
ONNX graph in the style of older third-party exporters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from splitcomp_tools.model.export import export_torch_module

INPUT_SHAPE = (1, 3, 32, 32)


@dataclass(frozen=True)
class ZooModel:
    """An exported model with the PyTorch module it came from (None for hand-built graphs)."""

    path: Path
    module: nn.Module | None
    outputs: tuple[str, ...]


def conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    )


class BasicBlock(nn.Module):
    """ResNet basic block; a 1x1 projection shortcut when the shape changes, else the identity."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_bn(cin, cout, stride)
        self.conv2 = conv_bn(cout, cout)
        self.shortcut = conv_bn(cin, cout, stride, kernel=1) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + self.shortcut(x))


class TinyResNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 8), nn.ReLU())
        self.layer1 = BasicBlock(8, 8)
        self.layer2 = BasicBlock(8, 16, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layer2(self.layer1(self.stem(x)))), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4) -> None:
        super().__init__()
        hidden = cin * expand
        self.residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            conv_bn(cin, hidden, kernel=1),
            nn.ReLU6(),
            conv_bn(hidden, hidden, stride, groups=hidden),
            nn.ReLU6(),
            conv_bn(hidden, cout, kernel=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class TinyMobileNetV2(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 8, stride=2),
            nn.ReLU6(),
            InvertedResidual(8, 8, 1),
            InvertedResidual(8, 12, 2),
            InvertedResidual(12, 12, 1),
        )
        self.classifier = nn.Linear(12, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


class TwoHeads(nn.Module):
    """A shared trunk forking into class logits and a dense map: two graph outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(conv_bn(3, 8), nn.ReLU(), conv_bn(8, 8, stride=2), nn.ReLU())
        self.classify = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
        self.segment = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)
        return self.classify(features), self.segment(features)


class ParallelBranches(nn.Module):
    """Two branches of different depth from the stem that merge only at the end: inside, every cut has 2 tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, 2, 1), nn.ReLU())
        self.left = nn.Sequential(nn.Conv2d(6, 6, 3, 1, 1), nn.ReLU(), nn.Conv2d(6, 4, 3, 2, 1), nn.ReLU())
        self.right = nn.Sequential(nn.Conv2d(6, 4, 1, 2), nn.Tanh())
        self.fc = nn.Linear(8 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        return self.fc(torch.flatten(torch.cat([self.left(s), self.right(s)], 1), 1))


def _export(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    module: nn.Module,
    outputs: tuple[str, ...],
    dynamic_batch: bool = False,
) -> ZooModel:
    torch.manual_seed(0)
    for m in module.modules():  # non-trivial BatchNorm statistics, so folding them is really exercised
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("zoo") / f"{name}.onnx"
    export_torch_module(module, torch.randn(INPUT_SHAPE), path, output_names=outputs, dynamic_batch=dynamic_batch)
    return ZooModel(path, module.eval(), outputs)


@pytest.fixture(scope="session")
def resnet_model(tmp_path_factory: pytest.TempPathFactory) -> ZooModel:
    torch.manual_seed(1)
    return _export(tmp_path_factory, "resnet", TinyResNet(), ("logits",), dynamic_batch=True)


@pytest.fixture(scope="session")
def mobilenet_model(tmp_path_factory: pytest.TempPathFactory) -> ZooModel:
    torch.manual_seed(2)
    return _export(tmp_path_factory, "mobilenet", TinyMobileNetV2(), ("logits",))


@pytest.fixture(scope="session")
def two_output_model(tmp_path_factory: pytest.TempPathFactory) -> ZooModel:
    torch.manual_seed(3)
    return _export(tmp_path_factory, "two_heads", TwoHeads(), ("logits", "mask"))


@pytest.fixture(scope="session")
def parallel_model(tmp_path_factory: pytest.TempPathFactory) -> ZooModel:
    torch.manual_seed(4)
    return _export(tmp_path_factory, "parallel", ParallelBranches(), ("logits",))


def legacy_graph() -> onnx.ModelProto:
    """An opset-9, IR-3 graph as older converters write them.

    Weights are listed as graph inputs with initializers (so they are not real inputs); a scale is
    computed by a Constant -> Shape -> ConstantOfShape -> Add subgraph; names contain '/', ':' and
    '.'; there are Dropout (with an unused mask) and Identity nodes; and two outputs, one of them
    read by nothing. Its single cuts, by construction: block.1/conv:0, block.1/relu:0,
    block.1/drop:0, block.1/id:0 and block.2/mul:0.
    """
    rng = np.random.default_rng(5)
    weights = {
        "conv/w:0": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "conv/b:0": rng.standard_normal(4).astype(np.float32),
        "fc.w:0": rng.standard_normal((3, 4)).astype(np.float32),
        "fc.b:0": rng.standard_normal(3).astype(np.float32),
    }
    base = numpy_helper.from_array(rng.standard_normal((1, 4, 1, 1)).astype(np.float32), "scale/base")
    half = numpy_helper.from_array(np.array([0.5], np.float32), "half")
    nodes = [
        helper.make_node(
            "Conv", ["images:0", "conv/w:0", "conv/b:0"], ["block.1/conv:0"], "block.1/conv", pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["block.1/conv:0"], ["block.1/relu:0"], "block.1/relu"),
        helper.make_node(
            "Dropout", ["block.1/relu:0"], ["block.1/drop:0", "block.1/drop_mask:0"], "block.1/drop", ratio=0.3
        ),
        helper.make_node("Identity", ["block.1/drop:0"], ["block.1/id:0"], "block.1/id"),
        helper.make_node("Constant", [], ["scale/base:0"], "scale/const", value=base),
        helper.make_node("Shape", ["scale/base:0"], ["scale/shape:0"], "scale/shape"),
        helper.make_node("ConstantOfShape", ["scale/shape:0"], ["scale/half:0"], "scale/fill", value=half),
        helper.make_node("Add", ["scale/base:0", "scale/half:0"], ["scale/w:0"], "scale/add"),
        helper.make_node("Mul", ["block.1/id:0", "scale/w:0"], ["block.2/mul:0"], "block.2/mul"),
        helper.make_node("GlobalAveragePool", ["block.2/mul:0"], ["pool:0"], "pool"),
        helper.make_node("Flatten", ["pool:0"], ["flat:0"], "flat", axis=1),
        helper.make_node("Gemm", ["flat:0", "fc.w:0", "fc.b:0"], ["logits:0"], "fc", transB=1),
        helper.make_node("Sigmoid", ["block.2/mul:0"], ["mask.out:0"], "mask"),
    ]
    inputs = [helper.make_tensor_value_info("images:0", TensorProto.FLOAT, [1, 3, 8, 8])]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(w.shape)) for n, w in weights.items()]
    graph = helper.make_graph(
        nodes,
        "legacy",
        inputs,
        [
            helper.make_tensor_value_info("logits:0", TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info("mask.out:0", TensorProto.FLOAT, [1, 4, 8, 8]),
        ],
        initializer=[numpy_helper.from_array(w, n) for n, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=3)
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="session")
def legacy_model(tmp_path_factory: pytest.TempPathFactory) -> ZooModel:
    path = tmp_path_factory.mktemp("zoo") / "legacy.onnx"
    onnx.save(legacy_graph(), str(path))
    return ZooModel(path, None, ("logits:0", "mask.out:0"))


@pytest.fixture(scope="session")
def zoo(
    resnet_model: ZooModel,
    mobilenet_model: ZooModel,
    two_output_model: ZooModel,
    parallel_model: ZooModel,
    legacy_model: ZooModel,
) -> dict[str, ZooModel]:
    return {
        "resnet": resnet_model,
        "mobilenet": mobilenet_model,
        "two_output": two_output_model,
        "parallel": parallel_model,
        "legacy": legacy_model,
    }
