"""The studio's one door to the project's tools: every call into model/, frames/, the overlay drawing and the pipelines.

The studio adds no numerics of its own. Analysis, split, calibration, export and frame sources are
the functions behind the command-line tools, and test images go through the same HeadPipeline and
TailPipeline as the nodes, so the page shows what a robot and an edge server would get. When those
tools change, this module is the one to follow them.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.detection import Detection
from splitcomp_core.errors import SplitcompError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.images import read_image
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import TailPipeline, TailResult
from splitcomp_tools.draw.annotate import Box, annotate, detection_lines, draw_boxes, result_lines, write_png
from splitcomp_tools.frames import files as frame_files
from splitcomp_tools.frames import open_source
from splitcomp_tools.model import calibrate as calibration
from splitcomp_tools.model import graph
from splitcomp_tools.model import split as splitting
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE, DEPENDENCE_NOTE, measure
from splitcomp_tools.model.analyze import analyze_model, cut_records
from splitcomp_tools.model.baseline import FULL_SIZE_QUALITY, jpeg_round_trip
from splitcomp_tools.model.box_agreement import DEFAULT_BOX_CONFIDENCE, measure_boxes
from splitcomp_tools.model.calibrate import calibrate
from splitcomp_tools.model.calibration import save_calibration
from splitcomp_tools.model.metadata import recorded_preprocessing
from splitcomp_tools.model.split import Preprocessing, split_model
from splitcomp_tools.model.video import CODECS
from splitcomp_tools.report.calibrate import format_table, plot_png

IMAGENET_MEAN, IMAGENET_STD = splitting.IMAGENET_MEAN, splitting.IMAGENET_STD  # split's defaults
MAX_CUT_TENSORS = graph.MAX_CUT_TENSORS
RANGE_METHODS = calibration.RANGE_METHODS
VIDEO_SUFFIXES = frame_files.VIDEO_SUFFIXES
TOP_K = 5
REFERENCE = EncoderConfig(bits=32)  # raw float32 features: head∘tail, which split verified equals the full model
Progress = Callable[[str, int, int], None]  # (phase, done, total)


def analyze(model: Path, max_tensors: int = 1, input_shape: Sequence[int] | None = None) -> dict[str, Any]:
    """The model's cuts with the fields `analyze --json` prints, plus the totals and input shapes they refer to.

    `input_shape` is the only input's size (`analyze --input-shape`), for models declared with a dynamic one.
    """
    analysis = analyze_model(model, max_tensors, {"": input_shape} if input_shape else None)
    return {
        "inputs": analysis.input_shapes,
        "total_flops": analysis.total_flops,
        "total_params": analysis.total_params,
        "max_tensors": max_tensors,
        "cuts": cut_records(analysis),
    }


def default_preprocessing(inputs: dict[str, list[int]], preprocessing: Preprocessing | None = None) -> dict:
    """The split options the page starts from: the given ones, or `split`'s own defaults at the model's input size."""
    preprocessing = preprocessing or Preprocessing()
    shape = next(iter(inputs.values()), [])
    height, width = (shape[2], shape[3]) if len(shape) == 4 else (None, None)
    if preprocessing.size is not None:
        height, width = preprocessing.size
    return {
        "height": height,
        "width": width,
        "resize": "stretch" if preprocessing.crop_resize is None else "center_crop",
        "crop_size": preprocessing.crop_resize or None,
        "mean": list(preprocessing.mean),
        "std": list(preprocessing.std),
        "color_order": "BGR" if preprocessing.bgr else "RGB",
    }


def recorded_preprocessing_of(model: Path) -> Preprocessing | None:
    """What the model's export recorded about its preprocessing (split's own defaults for it, e.g. CenterFace's raw
    0..255 pixels), or None when it recorded nothing usable."""
    try:
        fields = recorded_preprocessing(graph.load_model(model))
    except SplitcompError:
        return None
    return Preprocessing(**fields) if fields else None


def preprocessing(
    size: tuple[int, int] | None,
    resize: str,
    crop_size: int | None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    color_order: str = "RGB",
) -> Preprocessing:
    """`split`'s Preprocessing from the page's fields (crop_size None or 0: split's size/0.875)."""
    return Preprocessing(
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        std=(float(std[0]), float(std[1]), float(std[2])),
        size=size,
        bgr=color_order == "BGR",
        crop_resize=None if resize == "stretch" else (crop_size or 0),
    )


def split(
    model: Path,
    at: Sequence[str],
    out: Path,
    prep: Preprocessing,
    labels: Path | None,
    output_kind: str = "auto",
    dynamic_batch: bool = False,
) -> dict[str, Any]:
    """Split and verify, as `split` does; the manifest and the verification (head∘tail against the full model)."""
    bundle, check = split_model(
        model,
        list(at),
        out,
        preprocessing=prep,
        labels_path=labels,
        output_kind=output_kind,
        dynamic_batch=dynamic_batch,
    )
    return {"manifest": bundle.manifest.to_dict(), "verification": dataclasses.asdict(check)}


def manifest(bundle_dir: Path) -> dict[str, Any]:
    return load_bundle(bundle_dir).manifest.to_dict()


def calibrate_bundle(
    bundle_dir: Path,
    images: str,
    count: int,
    bits: int | None,
    method: str,
    seed: int,
    plot: Path,
    progress: Progress,
    eval_images: str | None = None,
    eval_count: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    video_codecs: Sequence[str] = CODECS,
) -> dict[str, Any]:
    """`calibrate` as the command runs it: measure, store the ranges in the manifest, write the plot.

    Runs in a worker process; `calibrate` reports each phase's progress through `progress`. The result
    carries each row's agreement statistics (all frames, confident frames, top-5 overlap, intervals).
    """
    calibration = calibrate(
        bundle_dir,
        images,
        count,
        bits=bits,
        method=method,
        seed=seed,
        on_progress=progress,
        eval_images=eval_images,
        eval_count=eval_count,
        confidence=confidence,
        video_codecs=video_codecs,
    )
    save_calibration(calibration, {plot: plot_png(calibration)})
    result = calibration.to_json(written=True)
    result["table"] = format_table(calibration)
    return result


def export_torch(source: Path | str, input_shape: Sequence[int], out: Path, trust_pickle: bool) -> float:
    """`export` of a TorchScript file (or a pickle, when trusted) or a named model; the max difference to PyTorch."""
    import torch  # only this path needs PyTorch, and importing it takes seconds

    from splitcomp_tools.model.export import export_torch_module, load_module

    module = load_module(str(source), trust_pickle=trust_pickle)
    example = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
    return export_torch_module(module, example, out)


def export_pretrained_model(name: str, out: Path) -> float:
    """`export NAME` of a pretrained model from its wheels, with its labels and preprocessing recorded for split."""
    from splitcomp_tools.model import zoo
    from splitcomp_tools.model.export import export_pretrained

    return export_pretrained(zoo.MODELS[name], out)


def source_available(spec: str) -> bool:
    """Whether `open_source(spec)` gives frames here (the photos come from an installed wheel, or not)."""
    try:
        open_source(spec).close()
    except SplitcompError:
        return False
    return True


def sample_frames(spec: str, count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` RGB frames of a frame source (`generator`, `photos`...), as image_source would send them."""
    source = open_source(spec, seed=seed)
    try:
        return list(source.frames(count))
    finally:
        source.close()


def read_rgb(path: Path) -> np.ndarray:
    return read_image(path)


def video_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a video's frames as OpenCV reads them, or None when OpenCV cannot open it."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return None
        return int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()


class Classifier:
    """A bundle's head and tail, their ONNX Runtime sessions created once, shared by every test image.

    Each image goes through the head once; its cut tensors are encoded as asked (the split answer)
    and as raw float32 (the unsplit answer), and both go through the tail as the edge would decode them.
    A detection bundle answers boxes in the image's pixels (the tail gets its size, as from SplitFeatures).
    """

    def __init__(self, bundle_dir: Path) -> None:
        self.bundle = load_bundle(bundle_dir)
        self.head = HeadPipeline(self.bundle)
        self.tail = TailPipeline(self.bundle, top_k=TOP_K)
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray, config: EncoderConfig, overlay: Path) -> dict[str, Any]:
        model_id = self.bundle.manifest.model_id
        size = (int(rgb.shape[1]), int(rgb.shape[0]))
        with self._lock:  # the encoder settings belong to the pipeline; one image at a time
            warnings = self.head.configure(config)
            features, preprocess_ms, head_ms = self.head.features(rgb, "rgb8")
            start = time.perf_counter()
            tensors = self.head.encode(features)
            encode_ms = (time.perf_counter() - start) * 1e3
            sent = self.tail(model_id, tensors, image_size=size)
            self.head.configure(REFERENCE)
            reference = self.tail(model_id, self.head.encode(features), image_size=size)
            jpeg_bgr, jpeg_size = jpeg_round_trip(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), FULL_SIZE_QUALITY)
            jpeg = self.tail(model_id, self.head.encode(self.head.features(jpeg_bgr, "bgr8")[0]), image_size=size)
        latency_ms = preprocess_ms + head_ms + encode_ms + sent.total_ms
        _draw_overlay(rgb, sent, latency_ms, overlay)
        return {
            **_answers(sent, reference, jpeg),
            "feature_bytes": sent.feature_bytes,
            "float32_bytes": reference.feature_bytes,
            "jpeg95_bytes": jpeg_size,
            "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]),
            "preprocess_ms": preprocess_ms,
            "head_ms": head_ms,
            "encode_ms": encode_ms,
            "tail_ms": sent.total_ms,
            "warnings": warnings,
        }


def _answers(sent: TailResult, reference: TailResult, jpeg: TailResult) -> dict[str, Any]:
    """The split, unsplit and JPEG-95 answers (what a robot sending the image would get) and whether split agrees:
    the top-5 and its top-1, or a detector's boxes and whether they match the unsplit boxes one to one."""
    if sent.detections is None or reference.detections is None or jpeg.detections is None:
        return {
            "split": _top(sent),
            "unsplit": _top(reference),
            "jpeg95": _top(jpeg),
            "agree": sent.results[0][0] == reference.results[0][0],
        }
    same = measure_boxes([reference.detections], [sent.detections])
    return {
        "task": "detection",
        "split": [dataclasses.asdict(d) for d in sent.detections],
        "unsplit": [dataclasses.asdict(d) for d in reference.detections],
        "jpeg95": [dataclasses.asdict(d) for d in jpeg.detections],
        "agree": same.matched == same.reference_boxes == same.candidate_boxes,
    }


def agreement_of(rows: Sequence[dict[str, Any]], confidence: float | None = None) -> dict[str, Any]:
    """The split answers' and JPEG-95's agreement with the unsplit answers of the same images, from their top-5
    (all the figures need: top-1, its probability, the top-5 classes), as calibrate reports them; a detector's
    by box agreement (F1, recall of confident boxes, mean IoU). `confidence` None: the task's default."""
    if rows and rows[0].get("task") == "detection":
        sure = DEFAULT_BOX_CONFIDENCE if confidence is None else confidence
        boxes = {key: [[_detection(d) for d in row[key]] for row in rows] for key in ("split", "unsplit", "jpeg95")}
        return {
            "task": "detection",
            "confidence": sure,
            "dependence_note": DEPENDENCE_NOTE,
            "split": measure_boxes(boxes["unsplit"], boxes["split"], sure).to_json(),
            "jpeg95": measure_boxes(boxes["unsplit"], boxes["jpeg95"], sure).to_json(),
        }
    confidence = DEFAULT_CONFIDENCE if confidence is None else confidence
    classes = 1 + max(c["class_id"] for row in rows for key in ("split", "unsplit", "jpeg95") for c in row[key])
    scores = {key: np.zeros((len(rows), classes)) for key in ("split", "unsplit", "jpeg95")}
    for k, row in enumerate(rows):
        for key, matrix in scores.items():
            for c in row[key]:
                matrix[k, c["class_id"]] = c["score"]
    return {
        "confidence": confidence,
        "dependence_note": DEPENDENCE_NOTE,
        "split": measure(scores["unsplit"], scores["split"], confidence).to_json(),
        "jpeg95": measure(scores["unsplit"], scores["jpeg95"], confidence).to_json(),
    }


def _detection(record: dict[str, Any]) -> Detection:
    return Detection(**{**record, "keypoints": tuple(record["keypoints"])})


def _top(result: TailResult) -> list[dict[str, Any]]:
    return [{"class_id": c, "label": label, "score": score} for c, label, score in result.results]


def _draw_overlay(rgb: np.ndarray, result: TailResult, latency_ms: float, out: Path) -> None:
    """The frame as the overlay node draws it; no network here, so the rate is what this server sustains."""
    fps = 1e3 / latency_ms if latency_ms > 0 else 0.0
    if result.detections is not None:
        boxes = [Box(d.x, d.y, d.width, d.height, d.keypoints) for d in result.detections]
        lines = detection_lines(len(boxes), latency_ms, result.feature_bytes, fps)
        drawn = annotate(draw_boxes(rgb, boxes), lines)
    else:
        scores = [(label or f"class {c}", score) for c, label, score in result.results]
        drawn = annotate(rgb, result_lines(scores, latency_ms, result.feature_bytes, fps))
    write_png(out, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
