"""What a robot would send instead of features: the frame as a JPEG, classified by the same model.

Calibration and the demo both compare splitcomp's bytes and agreement with this. JPEG runs at
qualities 50, 75 and 95 of the image the model actually sees (after the bundle's resize or crop,
recovered exactly from the model input, so JPEG loss is the only difference from the reference) and
at image_transport's default quality 95 of the camera frame as it is. The decoded JPEG goes through
the same HeadPipeline and TailPipeline as the features do (in float32: the unsplit model's answer,
which split verified head∘tail to give). Given a VideoBaseline (model/video), the same frames also go through its
H.264/H.265 streams, in order, and each decoded frame through the same pipelines: rows beside JPEG's.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from splitcomp_core.errors import ImageFormatError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.preprocess import Preprocessor
from splitcomp_core.tail import TailPipeline
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE
from splitcomp_tools.model.answers import Answers, Stats, agreement, answer, joined
from splitcomp_tools.model.video import VideoBaseline, is_video
from splitcomp_tools.model.video import label as video_label

JPEG_QUALITIES = (50, 75, 95)
FULL_SIZE_QUALITY = 95  # image_transport's default JPEG quality
MODEL_SIZE = "jpeg"  # the model-size image as JPEG
FULL_FRAME = "jpeg_full"  # the camera frame as JPEG


def baseline_label(method: str) -> str:
    """What a row of frames sent as they are is, for people: JPEG or a video codec, and which version of the frame."""
    if method == MODEL_SIZE:
        return "jpeg at model input size"
    if method == FULL_FRAME:
        return "jpeg of the full frame"
    return video_label(method) if is_video(method) else method


def jpeg_round_trip(bgr: np.ndarray, quality: int = FULL_SIZE_QUALITY) -> tuple[np.ndarray, int]:
    """A BGR frame as a robot would send it instead of features: JPEG-encoded, then decoded again (BGR), and
    the JPEG's size in bytes."""
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise ImageFormatError(f"OpenCV could not JPEG-encode a {bgr.shape[1]}x{bgr.shape[0]} image")
    return decoded, int(data.size)


@dataclasses.dataclass(frozen=True)
class JpegResult:
    """One way to send the frames themselves: `method` is MODEL_SIZE or FULL_FRAME with `quality` the JPEG quality,
    or a video method (model/video: "h264_full", "h264", ...) with `quality` the CRF; `agreement` a fraction of
    frames, `stats` the full agreement statistics (all frames, confident frames, top-5 overlap)."""

    method: str
    quality: int
    bytes_per_frame: float
    agreement: float
    stats: Stats


class JpegBaseline:
    """Collects, frame by frame, each JPEG's size and the class the model gives the decoded JPEG (and with `video`,
    each video setting's bytes and the class of its decoded frame)."""

    def __init__(self, head: HeadPipeline, tail: TailPipeline, video: VideoBaseline | None = None) -> None:
        self.head, self.tail, self.video = head, tail, video
        spec = head.bundle.manifest.input
        self._mean = np.asarray(spec.mean, dtype=np.float64).reshape(3, 1, 1)
        self._std = np.asarray(spec.std, dtype=np.float64).reshape(3, 1, 1)
        self._rgb_model = spec.color_order == "RGB"
        # The model-size JPEG decodes at the input size: only normalisation is left to do.
        self._normalise = Preprocessor(dataclasses.replace(spec, resize="stretch", resize_size=None))
        self.keys = [(MODEL_SIZE, q) for q in JPEG_QUALITIES] + [(FULL_FRAME, FULL_SIZE_QUALITY)]
        self.keys += [(v.method, v.crf) for v in video.settings] if video is not None else []
        self.bytes: dict[tuple[str, int], list[int]] = {k: [] for k in self.keys}
        self.scores: dict[tuple[str, int], list] = {k: [] for k in self.keys}  # per frame: model/answers.answer

    def add(self, frame: np.ndarray) -> None:
        """One HxWx3 RGB camera frame."""
        small = self.model_size_bgr(frame)
        for quality in JPEG_QUALITIES:
            decoded = self._round_trip((MODEL_SIZE, quality), small, quality)
            self._answer((MODEL_SIZE, quality), self.head.cut_tensors(self._normalise(decoded, "bgr8")))
        key = (FULL_FRAME, FULL_SIZE_QUALITY)
        decoded = self._round_trip(key, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), FULL_SIZE_QUALITY)
        self._answer(key, self.head.features(decoded, "bgr8")[0])
        for setting, pixels, size in self.video.round_trips(frame) if self.video is not None else ():
            self.bytes[(setting.method, setting.crf)].append(size)
            self._answer((setting.method, setting.crf), self.head.features(pixels, "rgb8")[0])

    def model_size_bgr(self, frame: np.ndarray) -> np.ndarray:
        """The image the model sees (after resize or crop) as 8-bit BGR, recovered from its model input."""
        chw = self.head.preprocess(frame, "rgb8")[0].astype(np.float64)
        pixels = np.clip(np.rint((chw * self._std + self._mean) * 255.0), 0, 255).astype(np.uint8)
        hwc = pixels.transpose(1, 2, 0)
        return np.ascontiguousarray(hwc[:, :, ::-1] if self._rgb_model else hwc)

    def _round_trip(self, key: tuple[str, int], bgr: np.ndarray, quality: int) -> np.ndarray:
        decoded, size = jpeg_round_trip(bgr, quality)
        self.bytes[key].append(size)
        return decoded

    def _answer(self, key: tuple[str, int], features: dict[str, np.ndarray]) -> None:
        self.scores[key].append(answer(self.tail, features))

    def results(self, reference: Answers, threshold: float = DEFAULT_CONFIDENCE) -> list[JpegResult]:
        """Mean bytes per frame and agreement with `reference`, the unsplit model's answers of each frame added
        (model/answers); confident frames (boxes) are those whose top-1 probability (score) reaches `threshold`."""
        results = []
        for method, quality in self.keys:
            stats = agreement(reference, joined(self.scores[(method, quality)]), threshold)
            results.append(
                JpegResult(method, quality, float(np.mean(self.bytes[(method, quality)])), stats.rate, stats)
            )
        return results
