"""What a robot team that streams video would send instead of features: H.264 or H.265 of the frames, live.

JPEG-95 of each frame is not what such a team would compare with: they would stream the camera through a video
codec (ffmpeg_image_transport). This encodes and decodes for real, with the libx264 and libx265 inside PyAV's
pinned wheels, in live settings: tune zerolatency (no look-ahead, one packet per frame), no B-frames, yuv420p, a
key frame exactly every `keyframe_interval` frames (no scene-cut key frames), the encoders' default preset
(medium), one thread (the bytes do not depend on the machine's core count), at CRF 18, 23, 28 and 33. Two
versions: the camera frame, and the frame at the model's input scale (resized as the bundle's preprocessing
resizes it, before its crop, so preprocessing the decoded frame gives the model the same geometry). A frame's
bytes are its packet's, the first key frame's stream headers included. The frames of a stream must come in
order; a new frame size starts a new stream with a key frame. Odd sides are padded by repeating the last row or
column (4:2:0 needs even ones) and cropped off again after decoding.

Every caller (calibrate, bench video, plan, the studio) gets its rows from `VideoBaseline`.
"""

from __future__ import annotations

import dataclasses
import fractions
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, cast

import numpy as np

from splitcomp_core.errors import SplitcompError
from splitcomp_core.preprocess import Preprocessor

if TYPE_CHECKING:
    from av.video.codeccontext import VideoCodecContext

CODECS = ("h264", "h265")
CRFS = (18, 23, 28, 33)
DEFAULT_KEYFRAME_INTERVAL = 30
MAX_KEYFRAME_INTERVAL = 10_000
MAX_SIDE = 8192  # a frame's width or height at most, checked before the encoder allocates anything
CAMERA, MODEL_SCALE = "full", "model"  # the two versions
PRESET = "medium"
_ENCODERS = {
    "h264": ("libx264", "h264", "x264-params", ""),
    "h265": ("libx265", "hevc", "x265-params", ":log-level=error:frame-threads=1:pools=none"),
}
LABELS = {"h264": "H.264", "h265": "H.265"}
H264_CAMERA = "h264_full"  # the rows that raise the rule's floor (agreement.Floor)


class VideoCodecError(SplitcompError):
    """A video baseline that cannot run: an unknown codec, a CRF or key-frame interval out of range, a bad frame."""


def method_name(codec: str, version: str) -> str:
    """A row's method: "h264_full" (the camera frame) or "h264" (the frame at the model's scale), as JPEG's rows."""
    return f"{codec}_full" if version == CAMERA else codec


def label(method: str, keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL) -> str:
    """A video row's name for people, e.g. "H.264 of the camera frame, key frame every 30"."""
    codec = method.removesuffix("_full")
    what = "the camera frame" if method.endswith("_full") else "the frame at the model's scale"
    return f"{LABELS.get(codec, codec)} of {what}, key frame every {keyframe_interval}"


def is_video(method: str) -> bool:
    """Whether a row's method is one of this module's (h264, h264_full, h265, h265_full)."""
    return method.removesuffix("_full") in CODECS


def check_settings(codecs: Sequence[str], crfs: Sequence[int], keyframe_interval: int) -> None:
    """Refuse settings the encoders cannot take, with what is accepted."""
    unknown = [c for c in codecs if c not in CODECS]
    if unknown:
        raise VideoCodecError(f"unknown video codec(s) {', '.join(unknown)}; use {', '.join(CODECS)}")
    if any(not 0 <= crf <= 51 for crf in crfs):
        raise VideoCodecError(f"a CRF must be from 0 to 51, got {list(crfs)}")
    if not 1 <= keyframe_interval <= MAX_KEYFRAME_INTERVAL:
        raise VideoCodecError(
            f"a key-frame interval must be from 1 to {MAX_KEYFRAME_INTERVAL}, got {keyframe_interval}"
        )


class VideoStream:
    """One live encoder and its decoder. `round_trip` takes the next frame (HxWx3 uint8 RGB) and gives it back as
    decoded from the stream, with its bytes; `key_frames` lists the frame numbers the encoder sent as key frames."""

    def __init__(self, codec: str, crf: int, keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL) -> None:
        check_settings([codec], [crf], keyframe_interval)
        self.codec, self.crf, self.keyframe_interval = codec, crf, keyframe_interval
        self.key_frames: list[int] = []
        self._frames = 0
        self._size: tuple[int, int] | None = None
        self._encoder: VideoCodecContext | None = None
        self._decoder: VideoCodecContext | None = None

    def round_trip(self, rgb: np.ndarray) -> tuple[np.ndarray, int]:
        """The frame as the receiver decodes it (RGB, the same size) and the bytes the stream spent on it."""
        import av  # PyAV loads FFmpeg's libraries: only where a video baseline runs

        if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
            got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            raise VideoCodecError(f"a video frame must be an HxWx3 uint8 RGB array, got {got}")
        height, width = rgb.shape[:2]
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            raise VideoCodecError(f"a video frame must be 1 to {MAX_SIDE} pixels per side, got {width}x{height}")
        padded = np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        if self._size != padded.shape[:2]:
            self._open(padded.shape[1], padded.shape[0])
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")
        frame.pts = self._frames
        assert self._encoder is not None and self._decoder is not None  # _open made both
        packets = self._encoder.encode(frame)
        decoded = [f for p in packets for f in self._decoder.decode(p)]
        if len(packets) != 1 or len(decoded) != 1:  # zerolatency without B-frames: one packet, one picture
            raise VideoCodecError(f"{self.codec} gave {len(packets)} packets and {len(decoded)} pictures for one frame")
        if packets[0].is_keyframe:
            self.key_frames.append(self._frames)
        self._frames += 1
        return decoded[0].to_ndarray(format="rgb24")[:height, :width], int(packets[0].size)

    def _open(self, width: int, height: int) -> None:
        import av

        encoder_name, decoder_name, params_key, extra = _ENCODERS[self.codec]
        interval = self.keyframe_interval
        encoder = cast("VideoCodecContext", av.CodecContext.create(encoder_name, "w"))
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base = fractions.Fraction(1, 30)
        encoder.gop_size, encoder.max_b_frames, encoder.thread_count = interval, 0, 1
        encoder.options = {
            "crf": str(self.crf),
            "preset": PRESET,
            "tune": "zerolatency",
            params_key: f"keyint={interval}:min-keyint={interval}:scenecut=0:bframes=0{extra}",
        }
        encoder.open()
        self._encoder, self._decoder = encoder, cast("VideoCodecContext", av.CodecContext.create(decoder_name, "r"))
        self._size = (height, width)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One video row: a codec, a version (CAMERA or MODEL_SCALE), a CRF and a key-frame interval."""

    codec: str
    version: str
    crf: int
    keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL

    @property
    def method(self) -> str:
        return method_name(self.codec, self.version)


class VideoBaseline:
    """Every setting's stream over the same frames, in order: each frame's decoded version and bytes per setting.

    `preprocess` is the bundle's (HeadPipeline.preprocess): the model-scale version is its `scaled` frame.
    `restart()` begins new streams (a new clip); the settings stay.
    """

    def __init__(
        self,
        preprocess: Preprocessor,
        codecs: Sequence[str] = CODECS,
        crfs: Sequence[int] = CRFS,
        keyframe_intervals: Sequence[int] = (DEFAULT_KEYFRAME_INTERVAL,),
    ) -> None:
        for interval in keyframe_intervals:
            check_settings(codecs, crfs, interval)
        self.preprocess = preprocess
        self.settings = [
            Setting(codec, version, crf, interval)
            for interval in keyframe_intervals
            for codec in codecs
            for version in (CAMERA, MODEL_SCALE)
            for crf in crfs
        ]
        self.restart()

    def restart(self) -> None:
        self.streams = {s: VideoStream(s.codec, s.crf, s.keyframe_interval) for s in self.settings}

    def round_trips(self, rgb: np.ndarray) -> Iterator[tuple[Setting, np.ndarray, int]]:
        """Per setting: the frame (RGB) as decoded from that setting's stream, and the bytes it cost there."""
        scaled = self.preprocess.scaled(rgb)
        for setting, stream in self.streams.items():
            decoded, size = stream.round_trip(rgb if setting.version == CAMERA else scaled)
            yield setting, decoded, size
