"""sensor_msgs/Image and CompressedImage to and from numpy, with every size field checked first.

cv_bridge is used when it imports (a system ROS install); the numpy path does the same job
without it (ROS from PyPI has no cv_bridge); the checks and decoding are splitcomp_core.images. Either way the result is a view in the image's own
encoding; splitcomp_core.preprocess turns it into model input.
"""

from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from splitcomp_core.errors import ImageFormatError
from splitcomp_core.images import DEFAULT_MAX_IMAGE_PIXELS, check_pixels, decode_compressed, raw_pixels
from splitcomp_core.preprocess import channels_of
from splitcomp_ros.rejects import clip_text

try:
    from cv_bridge import CvBridge, CvBridgeError
except ImportError:
    CvBridge = None
_BRIDGE = CvBridge() if CvBridge is not None else None


def check_image(msg: Image) -> int:
    """Raise ImageFormatError unless height, width, step and data agree; returns bytes per pixel."""
    raw_pixels(msg.data, msg.encoding, msg.width, msg.height, msg.step)
    return channels_of(msg.encoding)


def image_to_array(msg: Image, use_cv_bridge: bool = True, max_pixels: int | None = None) -> np.ndarray:
    """HxWxC (HxW for mono) uint8 view of the image's pixels, row padding removed.

    With `max_pixels`, an image claiming more pixels is refused before anything is converted.
    """
    if max_pixels is not None:
        check_pixels(msg.width, msg.height, max_pixels, f"Image ({clip_text(msg.encoding, 40)})")
    pixels = raw_pixels(msg.data, msg.encoding, msg.width, msg.height, msg.step)
    if use_cv_bridge and _BRIDGE is not None:
        try:
            return np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough"))
        except CvBridgeError as exc:
            raise ImageFormatError(f"cv_bridge could not convert the image: {exc}") from exc
    return pixels


def compressed_to_bgr(
    msg: CompressedImage, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, messages: list[str] | None = None
) -> np.ndarray:
    """Decode a CompressedImage (JPEG or PNG) to HxWx3 BGR, as image_transport's decoder would.

    The header's size is checked against `max_pixels` before decoding; what the decoder prints goes
    to `messages` (see splitcomp_core.images.decode_compressed).
    """
    what = f"CompressedImage (format {clip_text(msg.format, 40)!r})"
    return decode_compressed(msg.data, what, max_pixels, messages)


def array_to_image(image: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """An Image message holding a copy of `image` (HxWxC or HxW uint8) in `encoding`."""
    image = np.ascontiguousarray(image)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(image.strides[0])
    data = array.array("B")
    data.frombytes(image.reshape(-1).data)
    msg.data = data
    return msg
