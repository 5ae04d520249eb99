"""The models `demo` and `bench pipeline` run: the real pretrained network (the default) and the toy."""

from splitcomp_tools.model.prepare import EFFICIENTNET_LITE0, DemoModel
from splitcomp_tools.shapes.bundle import SHAPES

DEMO_MODELS: dict[str, DemoModel] = {m.name: m for m in (EFFICIENTNET_LITE0, SHAPES)}
DEFAULT_MODEL = EFFICIENTNET_LITE0.name
