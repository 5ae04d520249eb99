"""A separate process on the other side of DDS, for the cross-process message test.

`listen OUT` waits for one SplitFeatures on `splitcomp/features` and pickles it as plain Python
data; `talk` publishes the reference message until it is killed.
"""

import array
import pickle
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from splitcomp_msgs.msg import EncodedTensor, SplitFeatures

TOPIC = "splitcomp/features"
QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def reference_message() -> SplitFeatures:
    """Two tensors, one of 200 000 bytes, with every field set to something non-default."""
    rng = np.random.default_rng(7)
    msg = SplitFeatures()
    msg.header.stamp.sec = 1_700_000_000
    msg.header.stamp.nanosec = 123_456_789
    msg.header.frame_id = "camera_optical_frame"
    msg.sequence = 2**40 + 3
    msg.model_id = "sha256:" + "ab" * 32
    big = EncodedTensor(
        name="/layer2/layer2.1/relu_1/Relu_output_0",
        shape=[1, 64, 50, 125],
        bits=4,
        scale=[0.5 + i / 64 for i in range(64)],
        offset=[-float(i) for i in range(64)],
        codec=EncodedTensor.CODEC_NONE,
        packed_size=200_000,
        data=rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes(),
    )
    small = EncodedTensor(
        name="skip:0",
        shape=[1, 3, 2],
        bits=32,
        scale=[],
        offset=[],
        codec=EncodedTensor.CODEC_ZSTD,
        packed_size=24,
        data=bytes(range(30)),
    )
    msg.tensors = [big, small]
    msg.preprocess_ms, msg.head_ms, msg.encode_ms = 1.25, 7.5, 0.375
    return msg


def to_plain(value):
    """A message as nested dicts and lists, so two processes' views compare with ==."""
    if hasattr(value, "get_fields_and_field_types"):
        return {name: to_plain(getattr(value, name)) for name in value.get_fields_and_field_types()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, (array.array, np.ndarray, bytes)):
        return list(value)
    return value


def listen(out_path: str) -> None:
    rclpy.init()
    node = rclpy.create_node("dds_listener")
    received = []
    node.create_subscription(SplitFeatures, TOPIC, received.append, QOS)
    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    with open(out_path, "wb") as f:
        pickle.dump(to_plain(received[0]) if received else None, f)
    node.destroy_node()
    rclpy.shutdown()


def talk() -> None:
    rclpy.init()
    node = rclpy.create_node("dds_talker")
    pub = node.create_publisher(SplitFeatures, TOPIC, QOS)
    msg = reference_message()
    while rclpy.ok():
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.1)


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        listen(sys.argv[2])
    else:
        talk()
