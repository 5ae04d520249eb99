"""sensor_msgs/Image and CompressedImage to and from numpy, with every size field checked first.

cv_bridge is used when it imports (a system ROS install); the numpy path does the same job
without it (ROS from PyPI has no cv_bridge). Either way the result is a view in the image's own
encoding; splitcomp_core.preprocess turns it into model input.
"""

from __future__ import annotations

import array

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from splitcomp_core.errors import ImageFormatError
from splitcomp_core.preprocess import channels_of

try:
    from cv_bridge import CvBridge, CvBridgeError
except ImportError:
    CvBridge = None
_BRIDGE = CvBridge() if CvBridge is not None else None


def check_image(msg: Image) -> int:
    """Raise ImageFormatError unless height, width, step and data agree; returns channels."""
    channels = channels_of(msg.encoding)
    if msg.height == 0 or msg.width == 0:
        raise ImageFormatError(f"empty image ({msg.width}x{msg.height})")
    row_bytes = msg.width * channels
    if msg.step < row_bytes:
        raise ImageFormatError(f"step {msg.step} is smaller than width*channels = {row_bytes} for {msg.encoding}")
    if len(msg.data) != msg.step * msg.height:
        raise ImageFormatError(
            f"data has {len(msg.data)} bytes but step*height = {msg.step}*{msg.height} = {msg.step * msg.height}"
        )
    return channels


def image_to_array(msg: Image, use_cv_bridge: bool = True) -> np.ndarray:
    """HxWxC (HxW for mono) uint8 view of the image's pixels, row padding removed."""
    channels = check_image(msg)
    if use_cv_bridge and _BRIDGE is not None:
        try:
            return np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough"))
        except CvBridgeError as exc:
            raise ImageFormatError(f"cv_bridge could not convert the image: {exc}") from exc
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)[:, : msg.width * channels]
    return rows.reshape(msg.height, msg.width) if channels == 1 else rows.reshape(msg.height, msg.width, channels)


def compressed_to_bgr(msg: CompressedImage) -> np.ndarray:
    """Decode a CompressedImage (JPEG or PNG) to HxWx3 BGR, as image_transport's decoder would."""
    if not len(msg.data):
        raise ImageFormatError("empty CompressedImage")
    image = cv2.imdecode(np.frombuffer(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageFormatError(f"CompressedImage data is not a decodable image (format {msg.format!r})")
    return image


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
