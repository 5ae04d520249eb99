"""The two ends of the test-bed link test: `talk BYTES COUNT` in one namespace, `listen OUT COUNT` in the other.

The talker publishes COUNT SplitFeatures of BYTES bytes, 1.5 s apart, each stamped when it is sent;
the listener writes each one's one-way time (its clock minus the stamp: both sides share this
machine's clock) to OUT as JSON, once COUNT have arrived or 60 s have passed.
"""

import json
import sys
import time

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from splitcomp_msgs.msg import EncodedTensor, SplitFeatures

TOPIC = "link_test"
QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
SPACING_S = 1.5


def talk(nbytes: int, count: int) -> None:
    rclpy.init()
    node = rclpy.create_node("link_talker")
    publisher = node.create_publisher(SplitFeatures, TOPIC, QOS)
    while publisher.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let the reader's side of discovery settle too
    msg = SplitFeatures(tensors=[EncodedTensor(name="payload", data=bytes(nbytes))])
    for i in range(count):
        msg.sequence = i
        msg.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(msg)
        rclpy.spin_once(node, timeout_sec=SPACING_S)
    while rclpy.ok():  # stay for retransmissions until the test ends us
        rclpy.spin_once(node, timeout_sec=0.1)


def listen(out: str, count: int) -> None:
    rclpy.init()
    node = rclpy.create_node("link_listener")
    seconds = []

    def received(msg: SplitFeatures) -> None:
        sent = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        seconds.append(node.get_clock().now().nanoseconds * 1e-9 - sent)

    node.create_subscription(SplitFeatures, TOPIC, received, QOS)
    deadline = time.monotonic() + 60
    while len(seconds) < count and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    with open(out, "w") as f:
        json.dump(seconds, f)


if __name__ == "__main__":
    try:
        if sys.argv[1] == "talk":
            talk(int(sys.argv[2]), int(sys.argv[3]))
        else:
            listen(sys.argv[2], int(sys.argv[3]))
    except KeyboardInterrupt:  # the test bed ends its processes with SIGINT
        pass
