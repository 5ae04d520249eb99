"""The video codec baseline encodes and decodes for real (libx264, libx265 in PyAV's wheels), in live settings."""

import numpy as np
import pytest

from splitcomp_core.bundle import InputSpec
from splitcomp_core.preprocess import Preprocessor
from splitcomp_tools.frames import open_source
from splitcomp_tools.model.video import (
    CAMERA,
    CRFS,
    MAX_SIDE,
    MODEL_SCALE,
    VideoBaseline,
    VideoCodecError,
    VideoStream,
    label,
)


@pytest.fixture(scope="module")
def carphone():
    source = open_source("video:carphone")
    try:
        return list(source.frames(25))
    finally:
        source.close()


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_a_real_stream_decodes_close_to_the_frames_with_key_frames_exactly_as_asked(codec, carphone):
    stream = VideoStream(codec, 18, keyframe_interval=10)
    sizes = []
    for frame in carphone:
        decoded, size = stream.round_trip(frame)
        assert decoded.shape == frame.shape and decoded.dtype == np.uint8
        assert np.abs(decoded.astype(int) - frame).mean() < 4.0  # crf 18 is visually near-lossless
        sizes.append(size)
    assert stream.key_frames == [0, 10, 20]
    assert min(sizes) > 0
    assert min(sizes[i] for i in (0, 10, 20)) > 2 * max(s for i, s in enumerate(sizes) if i % 10)  # P-frames pay


def test_a_higher_crf_sends_fewer_bytes_and_loses_more(carphone):
    totals, errors = [], []
    for crf in CRFS:
        stream = VideoStream("h264", crf)
        decoded = [stream.round_trip(f) for f in carphone[:8]]
        totals.append(sum(size for _, size in decoded))
        errors.append(np.mean([np.abs(d.astype(int) - f).mean() for (d, _), f in zip(decoded, carphone, strict=False)]))
    assert totals == sorted(totals, reverse=True) and len(set(totals)) == len(totals)
    assert errors == sorted(errors)


def test_odd_sizes_are_padded_and_a_new_size_starts_a_new_stream_with_a_key_frame(carphone):
    stream = VideoStream("h264", 23, keyframe_interval=30)
    odd = np.ascontiguousarray(carphone[0][:141, :171])
    decoded, _ = stream.round_trip(odd)
    assert decoded.shape == (141, 171, 3) and np.abs(decoded.astype(int) - odd).mean() < 6
    stream.round_trip(np.ascontiguousarray(carphone[1][:141, :171]))
    stream.round_trip(carphone[2])  # 176x144: another size
    assert stream.key_frames == [0, 2]


def test_the_model_scale_version_is_the_resize_before_the_crop():
    spec = InputSpec("input", [1, 3, 224, 224], 224, 224, "RGB", [0.5] * 3, [0.25] * 3, "center_crop", 256)
    frame = open_source("photos:test", 640, 480).read()
    baseline = VideoBaseline(Preprocessor(spec), codecs=["h264"], crfs=[23])
    shapes = {s.version: d.shape for s, d, size in baseline.round_trips(frame) if size > 0}
    assert shapes == {CAMERA: (480, 640, 3), MODEL_SCALE: (256, 341, 3)}
    assert [s.method for s in baseline.settings] == ["h264_full", "h264"]
    assert label("h264_full") == "H.264 of the camera frame, key frame every 30"


def test_bad_settings_and_frames_are_refused_with_what_is_accepted():
    with pytest.raises(VideoCodecError, match="use h264, h265"):
        VideoStream("vp9", 23)
    with pytest.raises(VideoCodecError, match="0 to 51"):
        VideoStream("h264", 52)
    with pytest.raises(VideoCodecError, match="from 1 to"):
        VideoStream("h264", 23, keyframe_interval=0)
    stream = VideoStream("h264", 23)
    with pytest.raises(VideoCodecError, match="HxWx3 uint8"):
        stream.round_trip(np.zeros((4, 4, 3), np.float32))
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), (MAX_SIDE + 2, 2, 3), (0, 0, 0))  # no memory
    with pytest.raises(VideoCodecError, match=f"1 to {MAX_SIDE} pixels per side"):
        stream.round_trip(huge)
