"""splitcomp_msgs/EncodedTensor <-> splitcomp_core.codec.EncodedTensor, field for field.

The conversion trusts nothing: it only moves fields. The codec's own validation runs when the
tail decodes, so a malformed message is rejected there with a reason that names the field.
"""

import array

import numpy as np
from splitcomp_core.codec import EncodedTensor
from splitcomp_msgs.msg import EncodedTensor as EncodedTensorMsg


def tensor_to_msg(tensor: EncodedTensor) -> EncodedTensorMsg:
    msg = EncodedTensorMsg()
    msg.name = tensor.name
    msg.shape = [int(d) for d in tensor.shape]
    msg.bits = int(tensor.bits)
    msg.scale = array.array("f", np.asarray(tensor.scale, dtype=np.float32).tobytes())
    msg.offset = array.array("f", np.asarray(tensor.offset, dtype=np.float32).tobytes())
    msg.codec = int(tensor.codec)
    msg.packed_size = int(tensor.packed_size)
    # array.array is the type rclpy stores uint8[] as; handing it one skips a per-byte check.
    msg.data = array.array("B", tensor.data)
    return msg


def tensor_from_msg(msg: EncodedTensorMsg) -> EncodedTensor:
    return EncodedTensor(
        name=msg.name,
        shape=tuple(int(d) for d in msg.shape),
        bits=int(msg.bits),
        scale=np.frombuffer(msg.scale, dtype=np.float32) if len(msg.scale) else np.empty(0, np.float32),
        offset=np.frombuffer(msg.offset, dtype=np.float32) if len(msg.offset) else np.empty(0, np.float32),
        codec=int(msg.codec),
        packed_size=int(msg.packed_size),
        data=msg.data.tobytes() if isinstance(msg.data, array.array) else bytes(msg.data),
    )


def stamp_key(header) -> tuple[int, int]:
    """A header's stamp as a hashable key: how results are matched to the frames they came from."""
    return header.stamp.sec, header.stamp.nanosec
