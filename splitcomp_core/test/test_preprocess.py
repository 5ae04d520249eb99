"""Encodings to RGB, and frames to normalised NCHW input: colours, geometry and the mean/std arithmetic."""

import numpy as np
import pytest

from splitcomp_core.bundle import InputSpec
from splitcomp_core.errors import ImageFormatError
from splitcomp_core.preprocess import SUPPORTED_ENCODINGS, Preprocessor, channels_of, to_rgb

RNG = np.random.default_rng(7)
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _spec(height=4, width=4, color_order="RGB", resize="stretch", resize_size=None, mean=MEAN, std=STD):
    return InputSpec(
        "image", [1, 3, height, width], height, width, color_order, list(mean), list(std), resize, resize_size
    )


def _bt601(y, u, v):
    """Per-pixel BT.601 video-range YUV -> RGB, written out from the standard's coefficients."""
    c, d, e = 1.164 * (y - 16.0), u - 128.0, v - 128.0
    return np.clip(np.stack([c + 1.596 * e, c - 0.391 * d - 0.813 * e, c + 2.018 * d], axis=-1), 0, 255)


def _yuv_frames(height=4, width=6):
    """The same pixels packed as YUYV and as UYVY, plus the per-pixel RGB reference."""
    y = RNG.integers(16, 236, (height, width)).astype(np.uint8)
    u = RNG.integers(16, 241, (height, width // 2)).astype(np.uint8)
    v = RNG.integers(16, 241, (height, width // 2)).astype(np.uint8)
    chroma = np.empty((height, width), np.uint8)
    chroma[:, 0::2], chroma[:, 1::2] = u, v
    yuyv = np.stack([y, chroma], axis=-1)
    uyvy = np.stack([chroma, y], axis=-1)
    reference = _bt601(y.astype(float), np.repeat(u, 2, axis=1).astype(float), np.repeat(v, 2, axis=1).astype(float))
    return yuyv, uyvy, reference


def test_colour_encodings_to_rgb():
    rgb = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (5, 7, 1), dtype=np.uint8)
    assert to_rgb(rgb, "rgb8") is rgb
    np.testing.assert_array_equal(to_rgb(np.ascontiguousarray(rgb[:, :, ::-1]), "bgr8"), rgb)
    np.testing.assert_array_equal(to_rgb(np.concatenate([rgb, alpha], axis=2), "rgba8"), rgb)
    np.testing.assert_array_equal(to_rgb(np.concatenate([rgb[:, :, ::-1], alpha], axis=2), "bgra8"), rgb)


def test_mono_to_rgb_repeats_the_grey_level():
    grey = RNG.integers(0, 256, (3, 5), dtype=np.uint8)
    for frame in (grey, grey[:, :, None]):
        out = to_rgb(frame, "mono8")
        assert out.shape == (3, 5, 3)
        for channel in range(3):
            np.testing.assert_array_equal(out[:, :, channel], grey)


def test_yuv422_byte_orders_follow_ros_conventions():
    yuyv, uyvy, reference = _yuv_frames()
    for frame, encodings in ((yuyv, ("yuyv", "yuv422_yuy2")), (uyvy, ("uyvy", "yuv422"))):
        for encoding in encodings:
            out = to_rgb(frame, encoding)
            assert out.shape == reference.shape and out.dtype == np.uint8
            assert np.abs(out.astype(float) - reference).max() <= 1.0, encoding
    assert np.abs(to_rgb(yuyv, "yuv422").astype(float) - reference).max() > 10, "yuv422 must read UYVY order"


@pytest.mark.parametrize(
    "frame, encoding, problem",
    [
        (np.zeros((4, 4, 3), np.uint8), "bayer_rggb8", "unsupported image encoding 'bayer_rggb8'; supported: rgb8"),
        (np.zeros((4, 4, 3), np.uint16), "rgb8", "uint16 (4, 4, 3)"),
        (np.zeros((4, 4, 4), np.uint8), "rgb8", "shape (H, W, 3)"),
        (np.zeros((4, 4, 3), np.uint8), "mono8", "(H, W) or (H, W, 1)"),
        (np.zeros((4, 5, 2), np.uint8), "yuyv", "even width"),
        (np.zeros((0, 4, 3), np.uint8), "rgb8", "non-empty"),
        ([[1, 2, 3]], "rgb8", "got list"),
    ],
)
def test_bad_frames_raise_image_format_error(frame, encoding, problem):
    with pytest.raises(ImageFormatError) as info:
        to_rgb(frame, encoding)
    assert problem in str(info.value)
    with pytest.raises(ImageFormatError):
        Preprocessor(_spec())(frame, encoding)


def test_unsupported_encoding_message_lists_every_supported_one():
    with pytest.raises(ImageFormatError) as info:
        to_rgb(np.zeros((2, 2, 3), np.uint8), "nv12")
    assert all(encoding in str(info.value) for encoding in SUPPORTED_ENCODINGS)
    with pytest.raises(ImageFormatError, match="unsupported image encoding 'mono16'"):
        channels_of("mono16")


def test_channels_of_gives_bytes_per_pixel():
    expected = {
        "rgb8": 3,
        "bgr8": 3,
        "rgba8": 4,
        "bgra8": 4,
        "mono8": 1,
        "yuv422": 2,
        "uyvy": 2,
        "yuv422_yuy2": 2,
        "yuyv": 2,
    }
    assert {encoding: channels_of(encoding) for encoding in SUPPORTED_ENCODINGS} == expected


def test_mean_std_arithmetic_and_colour_order():
    frame = np.empty((4, 4, 3), np.uint8)
    frame[:] = (200, 100, 30)
    expected_rgb = [(200 / 255 - MEAN[c]) / STD[c] for c in range(3)]
    out = Preprocessor(_spec())(frame)
    assert out.shape == (1, 3, 4, 4) and out.dtype == np.float32 and out.flags.c_contiguous
    for c in range(3):
        np.testing.assert_allclose(out[0, c], (frame[0, 0, c] / 255 - MEAN[c]) / STD[c], rtol=1e-6)
    assert out[0, 0, 0, 0] == pytest.approx(expected_rgb[0], rel=1e-6)

    # A BGR model lists mean/std in its own (BGR) order and gets its planes as B, G, R.
    bgr_model = Preprocessor(_spec(color_order="BGR", mean=MEAN[::-1], std=STD[::-1]))(frame)
    np.testing.assert_allclose(bgr_model[0, ::-1], out[0], rtol=1e-6)


def test_every_encoding_gives_the_same_input_as_its_rgb_conversion():
    """Resizing before reordering channels must not change the result."""
    yuyv, uyvy, _ = _yuv_frames(24, 32)
    rgb = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    alpha = np.full((24, 32, 1), 9, np.uint8)
    frames = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.concatenate([rgb, alpha], 2),
        "bgra8": np.concatenate([rgb[:, :, ::-1], alpha], 2),
        "mono8": rgb[:, :, 1],
        "yuyv": yuyv,
        "yuv422_yuy2": yuyv,
        "uyvy": uyvy,
        "yuv422": uyvy,
    }
    assert set(frames) == set(SUPPORTED_ENCODINGS)
    for spec in (_spec(8, 8), _spec(10, 12, color_order="BGR"), _spec(8, 8, resize="center_crop", resize_size=9)):
        preprocess = Preprocessor(spec)
        for encoding, frame in frames.items():
            frame = np.ascontiguousarray(frame)
            np.testing.assert_allclose(
                preprocess(frame, encoding), preprocess(to_rgb(frame, encoding)), atol=1e-6, err_msg=encoding
            )


def _column_coded(height, width, block):
    """Grey image whose value is (column // block) * 4 + 10, so exact block averaging keeps it readable."""
    values = (np.arange(width) // block * 4 + 10).astype(np.uint8)
    return np.repeat(np.broadcast_to(values, (height, width))[:, :, None], 3, axis=2).copy()


def _row_coded(height, width, block):
    return np.ascontiguousarray(_column_coded(width, height, block).transpose(1, 0, 2))


def _grey_levels(out):
    """Back from normalised values to 0..255 grey levels, using channel 0."""
    return np.rint((out[0, 0] * STD[0] + MEAN[0]) * 255).astype(int)


def test_stretch_maps_the_whole_frame():
    frame = _column_coded(32, 64, block=4)  # 64 columns in blocks of 4 -> 16 output columns, values 10, 14, ..
    out = Preprocessor(_spec(16, 16))(frame)
    np.testing.assert_array_equal(_grey_levels(out), np.broadcast_to(np.arange(16) * 4 + 10, (16, 16)))


def test_center_crop_landscape_and_portrait():
    # 32x64 landscape: shorter side 32 -> 16 (factor 2), width 64 -> 32; crop 16 wide from column 8.
    out = Preprocessor(_spec(16, 16, resize="center_crop", resize_size=16))(_column_coded(32, 64, block=2))
    np.testing.assert_array_equal(_grey_levels(out), np.broadcast_to((np.arange(16) + 8) * 4 + 10, (16, 16)))
    # 64x32 portrait: the crop takes rows 8..23 of the 32x16 resized frame.
    out = Preprocessor(_spec(16, 16, resize="center_crop", resize_size=16))(_row_coded(64, 32, block=2))
    np.testing.assert_array_equal(_grey_levels(out), np.broadcast_to(((np.arange(16) + 8) * 4 + 10)[:, None], (16, 16)))


def test_center_crop_of_non_square_input_uses_rounded_offsets():
    # 20x30 frame, resize_size 10: shorter side 20 -> 10, width 30 -> 15; crop 8x8 starts at row 1, column 4.
    frame = _column_coded(20, 30, block=2)
    out = Preprocessor(_spec(8, 8, resize="center_crop", resize_size=10))(frame)
    np.testing.assert_array_equal(_grey_levels(out)[0], (np.arange(8) + 4) * 4 + 10)


@pytest.mark.parametrize(
    ("shape", "resize", "expected"),
    [
        ((480, 640), "center_crop", (256, 341)),
        ((640, 480), "center_crop", (341, 256)),
        ((144, 176), "stretch", (224, 224)),
    ],
)
def test_scaled_is_the_resize_before_the_crop_and_preprocessing_it_changes_nothing(shape, resize, expected):
    """A frame sent at the model's scale (a video baseline) must give the model the input the camera frame gives."""
    spec = _spec(224, 224, resize=resize, resize_size=256 if resize == "center_crop" else None)
    preprocess = Preprocessor(spec)
    frame = RNG.integers(0, 256, (*shape, 3), dtype=np.uint8)
    scaled = preprocess.scaled(frame)
    assert scaled.shape == (*expected, 3)
    assert preprocess.scaled(scaled) is scaled  # no second resize
    np.testing.assert_array_equal(preprocess(scaled), preprocess(frame))


def test_enlarging_small_frames_and_plain_shrinks_give_sane_values():
    frame = np.full((3, 5, 3), 128, np.uint8)
    out = Preprocessor(_spec(12, 20))(frame)
    np.testing.assert_array_equal(_grey_levels(out), 128)
    big = RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    out = Preprocessor(_spec(128, 128))(big)
    assert out.shape == (1, 3, 128, 128) and np.isfinite(out).all()
    assert abs(_grey_levels(out).mean() - big[:, :, 0].mean()) < 2


def test_preprocessor_refuses_unusable_specs():
    with pytest.raises(ValueError, match="stretch or center_crop"):
        Preprocessor(_spec(resize="letterbox"))
    with pytest.raises(ValueError, match="resize_size"):
        Preprocessor(_spec(resize="center_crop", resize_size=3))


@pytest.mark.parametrize("period", [2, 3])
def test_shrinking_a_fine_stripe_pattern_does_not_alias(period):
    """Point-sampling (plain bilinear) turns 1-pixel stripes into 0/255 bands; averaging keeps them near the mean."""
    columns = np.where(np.arange(640) % period == 0, 255, 0).astype(np.uint8)
    frame = np.repeat(np.broadcast_to(columns, (480, 640))[:, :, None], 3, axis=2).copy()
    levels = _grey_levels(Preprocessor(_spec(128, 128))(frame))
    assert np.abs(levels - columns.mean()).max() < 40
