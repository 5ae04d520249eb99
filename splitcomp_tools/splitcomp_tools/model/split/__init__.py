"""Cut an ONNX model into a verified bundle: the library behind `split` (and `plan`, `demo`, the studio).

One step per module: `spec` (what the bundle records about the input and output), `parts` (the
cut checked, head and tail extracted), `verify` (head∘tail against the model in ONNX Runtime) and
`steps` (`split_model`, which runs them in order and writes the bundle).
"""

from splitcomp_tools.model.split.parts import CUT_DTYPES, check_cut, make_parts
from splitcomp_tools.model.split.spec import (
    CROP_FRACTION,
    IMAGENET_MEAN,
    IMAGENET_STD,
    OUTPUT_KINDS,
    Preprocessing,
    SplitError,
)
from splitcomp_tools.model.split.steps import split_model
from splitcomp_tools.model.split.verify import MAX_SAMPLES, TOLERANCE, Verification, verify

__all__ = [
    "CROP_FRACTION",
    "CUT_DTYPES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_SAMPLES",
    "OUTPUT_KINDS",
    "TOLERANCE",
    "Preprocessing",
    "SplitError",
    "Verification",
    "check_cut",
    "make_parts",
    "split_model",
    "verify",
]
