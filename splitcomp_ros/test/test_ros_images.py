"""sensor_msgs/Image <-> numpy: step padding, every supported encoding, and the refusals."""

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from splitcomp_core.errors import ImageFormatError
from splitcomp_ros import images
from splitcomp_ros.images import array_to_image, check_image, compressed_to_bgr, image_to_array

CHANNELS = {
    "rgb8": 3,
    "bgr8": 3,
    "rgba8": 4,
    "bgra8": 4,
    "mono8": 1,
    "yuv422": 2,
    "yuv422_yuy2": 2,
    "uyvy": 2,
    "yuyv": 2,
}


def padded_image(encoding: str, height=5, width=6, pad=3) -> tuple:
    """An Image whose rows carry `pad` junk bytes, and the pixels it should convert to."""
    rng = np.random.default_rng(0)
    channels = CHANNELS[encoding]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    rows = np.concatenate([pixels.reshape(height, width * channels), np.full((height, pad), 0xEE, np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, step=width * channels + pad)
    msg.data = rows.tobytes()
    return msg, pixels[:, :, 0] if channels == 1 else pixels


@pytest.mark.parametrize("encoding", sorted(CHANNELS))
def test_numpy_path_removes_row_padding(encoding):
    msg, pixels = padded_image(encoding)
    np.testing.assert_array_equal(image_to_array(msg, use_cv_bridge=False), pixels)


@pytest.mark.skipif(images.CvBridge is None, reason="cv_bridge is only on a system ROS install")
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "rgba8", "bgra8"])
def test_cv_bridge_and_numpy_paths_agree(encoding):
    msg, _ = padded_image(encoding)
    np.testing.assert_array_equal(image_to_array(msg, use_cv_bridge=True), image_to_array(msg, use_cv_bridge=False))


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"encoding": "mono16"}, "unsupported"),
        ({"encoding": "32FC1"}, "unsupported"),
        ({"height": 0}, "empty"),
        ({"step": 4}, "step"),
        ({"height": 6}, "data has"),
    ],
)
def test_bad_images_are_refused_with_a_reason(change, reason):
    msg, _ = padded_image("rgb8")
    for field, value in change.items():
        setattr(msg, field, value)
    with pytest.raises(ImageFormatError, match=reason):
        image_to_array(msg)


def test_array_to_image_roundtrip():
    pixels = np.random.default_rng(3).integers(0, 256, (4, 7, 3), dtype=np.uint8)
    msg = array_to_image(pixels, "bgr8")
    assert (msg.height, msg.width, msg.step, msg.encoding) == (4, 7, 21, "bgr8")
    assert check_image(msg) == 3
    np.testing.assert_array_equal(image_to_array(msg, use_cv_bridge=False), pixels)


def test_compressed_png_decodes_and_garbage_is_refused():
    pixels = np.random.default_rng(4).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    _ok, png = cv2.imencode(".png", pixels)
    msg = CompressedImage(format="png")
    msg.data = png.tobytes()
    np.testing.assert_array_equal(compressed_to_bgr(msg), pixels)
    msg.data = b"not an image"
    with pytest.raises(ImageFormatError, match="neither JPEG nor PNG"):
        compressed_to_bgr(msg)
    msg.data = png.tobytes()[:40]
    with pytest.raises(ImageFormatError, match="not a decodable image"):
        compressed_to_bgr(msg)


def test_received_text_in_an_image_error_is_cut_short():
    msg = CompressedImage(format="x" * 10_240)
    msg.data = b"garbage"
    with pytest.raises(ImageFormatError) as info:
        compressed_to_bgr(msg)
    assert len(str(info.value)) < 200 and "more characters" in str(info.value)
    wide = Image(encoding="y" * 10_240, width=5000, height=5000, step=5000, data=b"")
    with pytest.raises(ImageFormatError) as info:
        image_to_array(wide, max_pixels=100)
    assert len(str(info.value)) < 300
