"""splitcomp_msgs <-> splitcomp_core: encoded tensors field for field, and the messages the nodes publish.

The conversion trusts nothing: it only moves fields. The codec's own validation runs when the
tail decodes, so a malformed message is rejected there with a reason that names the field.
"""

from __future__ import annotations

import array
from typing import TYPE_CHECKING

import numpy as np
from std_msgs.msg import Header

from splitcomp_core.codec import EncodedTensor
from splitcomp_msgs.msg import Classification, ClassScore, Detection, Detections, FeaturesAck, SplitFeatures
from splitcomp_msgs.msg import EncodedTensor as EncodedTensorMsg

if TYPE_CHECKING:  # the overlay and probes use this module without loading ONNX Runtime
    from splitcomp_core.head import HeadResult
    from splitcomp_core.tail import TailResult


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
    msg.entropy_model = tensor.entropy_model
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
        entropy_model=msg.entropy_model,
    )


ACK_STATUS_CODES = {
    "decoded": FeaturesAck.STATUS_DECODED,
    "missing_reference": FeaturesAck.STATUS_MISSING_REFERENCE,
    "rejected": FeaturesAck.STATUS_REJECTED,
}
ACK_STATUS_NAMES = {code: name for name, code in ACK_STATUS_CODES.items()}


def ack_msg(features: SplitFeatures, reason: str | None, reference_frames: int, tail_ms: float) -> FeaturesAck:
    """The tail's receipt for one SplitFeatures: decoded (`reason` None), missing_reference, or rejected."""
    out = FeaturesAck()
    out.header = features.header
    out.sequence = features.sequence
    out.cut_id = features.cut_id
    status = "decoded" if reason is None else "missing_reference" if reason == "missing_reference" else "rejected"
    out.status = ACK_STATUS_CODES[status]
    out.reference_frames = reference_frames
    out.tail_ms = float(tail_ms)
    return out


def stamp_key(header) -> tuple[int, int]:
    """A header's stamp as a hashable key: how results are matched to the frames they came from."""
    return header.stamp.sec, header.stamp.nanosec


def features_msg(
    header: Header,
    sequence: int,
    model_id: str,
    result: HeadResult,
    convert_ms: float,
    cut_id: str = "",
    image_size: tuple[int, int] = (0, 0),
) -> SplitFeatures:
    """What the head publishes for one frame; `convert_ms` (image message to pixels) counts as preprocessing.

    `image_size` is the camera frame's (width, height), which a detection tail maps its boxes to.
    """
    out = SplitFeatures()
    out.image_width, out.image_height = (int(v) for v in image_size)
    out.cut_id = cut_id
    out.header = header
    out.sequence = sequence
    out.model_id = model_id
    out.tensors = [tensor_to_msg(t) for t in result.tensors]
    out.preprocess_ms = convert_ms + result.preprocess_ms
    out.head_ms = result.head_ms
    out.encode_ms = result.encode_ms
    out.reference_sequence = result.reference_sequence
    return out


def image_size(features: SplitFeatures) -> tuple[int, int]:
    """The camera frame's (width, height) as the head sent it (0, 0 from a head that predates the fields)."""
    return int(features.image_width), int(features.image_height)


def answer_msg(features: SplitFeatures, result: TailResult, latency_ms: float) -> Classification | Detections:
    """What the tail publishes for one SplitFeatures: Detections for a detection bundle, else Classification."""
    if result.detections is None:
        return classification_msg(features, result, latency_ms)
    out = Detections()
    out.header = features.header
    out.sequence = features.sequence
    out.model_id = features.model_id
    out.cut_id = features.cut_id
    out.detections = [
        Detection(
            class_id=d.class_id,
            label=d.label,
            score=d.score,
            x=d.x,
            y=d.y,
            width=d.width,
            height=d.height,
            keypoints=array.array("f", d.keypoints),
        )
        for d in result.detections
    ]
    out.feature_bytes = result.feature_bytes
    out.head_ms = features.preprocess_ms + features.head_ms + features.encode_ms
    out.tail_ms = result.total_ms
    out.latency_ms = latency_ms
    return out


def classification_msg(features: SplitFeatures, result: TailResult, latency_ms: float) -> Classification:
    """What the tail publishes for one SplitFeatures: its header and sequence, the top-k, bytes and timings."""
    out = Classification()
    out.header = features.header
    out.sequence = features.sequence
    out.model_id = features.model_id
    out.cut_id = features.cut_id
    out.results = [ClassScore(class_id=c, label=label, score=score) for c, label, score in result.results]
    out.feature_bytes = result.feature_bytes
    out.head_ms = features.preprocess_ms + features.head_ms + features.encode_ms
    out.tail_ms = result.total_ms
    out.latency_ms = latency_ms
    return out
