"""A lost feature message costs only itself: real head_node and tail_node, and a relay between them that drops
given messages over real DDS.

The tail listens on a remapped topic that only the relay (in the test process) publishes to, so the test chooses
exactly which messages never arrive. With `reference: acknowledged` every other frame is answered and no key frame
is needed; with `previous` the same losses cost the frames up to the head's next key frame.
"""

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from drifting import video_frames
from rclpy.qos import qos_profile_sensor_data
from ros_harness import NodeProcess, Probe, diagnostics_values
from sensor_msgs.msg import Image

from splitcomp_msgs.msg import Classification, FeaturesAck, SplitFeatures
from splitcomp_ros.images import array_to_image
from splitcomp_ros.qos import features_qos

pytestmark = pytest.mark.slow

HEAD = "splitcomp: /head_node"
RELAYED = "splitcomp/features_relayed"
DROPS = (3, 8, 9, 15)  # after the first P-frame (once acknowledgements flow), these messages are dropped
FRAMES = 24
WARM_UP = 120  # at most this many frames before acknowledgements flow (DDS matching under load can take seconds)


class Relay:
    """Camera, head_node, relay (drops `dropped` by sequence), tail_node, and what the probe saw."""

    def __init__(self, bundle, tmp_path, reference: str) -> None:
        common = {"bundle": str(bundle.path), "providers": ["cpu"]}
        head_params = {"codec": "zstd", "keyframe_interval": 100, "keyframe_timeout_s": 60.0, "reference": reference}
        self.tail = NodeProcess(
            "splitcomp_tail_node", "tail_node", common, tmp_path, ros_args=["-r", f"splitcomp/features:={RELAYED}"]
        )
        self.head = NodeProcess("splitcomp_head_node", "head_node", {**common, **head_params}, tmp_path)
        self.probe = Probe("relay_probe")
        node = self.probe.node
        self.forward = node.create_publisher(SplitFeatures, RELAYED, features_qos())
        self.sent: dict[int, SplitFeatures] = {}
        self.answers: dict[int, Classification] = {}
        self.acks: dict[int, int] = {}
        self.diagnostics: dict = {}
        self.dropped: set[int] = set()
        node.create_subscription(SplitFeatures, "splitcomp/features", self._relay, features_qos())
        node.create_subscription(Classification, "splitcomp/classification", self._answer, 50)
        node.create_subscription(FeaturesAck, "splitcomp/ack", lambda m: self.acks.update({m.sequence: m.status}), 50)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.camera = node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        assert self.probe.wait_for_subscriber(self.camera), self.head.log()
        assert self.probe.wait_for_subscriber(self.forward), self.tail.log()

    def _relay(self, msg: SplitFeatures) -> None:
        self.sent[msg.header.stamp.sec] = msg
        if msg.sequence not in self.dropped:
            self.forward.publish(msg)

    def _answer(self, msg: Classification) -> None:
        self.answers[msg.header.stamp.sec] = msg

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = diagnostics_values(status)

    def send(self, frame: np.ndarray, stamp: int) -> None:
        """Publish a frame (stamp = its index) and wait until the head sent it and, unless dropped, it was answered."""
        msg = array_to_image(frame, "rgb8")
        msg.header.stamp.sec = stamp
        msg.header.frame_id = "camera"
        for _ in range(3):  # a camera frame is best effort: send it again if the head never took it
            self.camera.publish(msg)
            if self.probe.spin_until(lambda: stamp in self.sent, 3.0):
                break
        sequence = self.sent[stamp].sequence
        if sequence in self.dropped:
            self.probe.spin_until(lambda: stamp in self.answers, 0.3)
        else:  # until it is answered, or the tail's acknowledgement says it cannot be (a reference missing)
            self.probe.spin_until(lambda: stamp in self.answers or self._refused(sequence), 5.0)

    def _refused(self, sequence: int) -> bool:
        return self.acks.get(sequence, FeaturesAck.STATUS_DECODED) != FeaturesAck.STATUS_DECODED

    def close(self) -> None:
        self.probe.close()
        assert self.head.stop() == 0, self.head.log()
        assert self.tail.stop() == 0, self.tail.log()


@pytest.mark.parametrize("reference", ["acknowledged", "previous"])
def test_a_dropped_message_costs_only_itself_with_acknowledged_references(tiny_bundle, tmp_path, reference):
    relay = Relay(tiny_bundle, tmp_path, reference)
    frames = video_frames(WARM_UP + FRAMES, seed=13)
    try:
        stamp = 0
        while not any(msg.reference_sequence for msg in relay.sent.values()) and stamp < WARM_UP:
            stamp += 1  # until the head has heard an acknowledgement (matching can take a moment)
            relay.send(frames[stamp - 1], stamp)
        heard = any(msg.reference_sequence for msg in relay.sent.values())
        assert heard, ("no acknowledgement reached the head", relay.head.log()[-2000:])
        first = stamp + 1
        relay.dropped = {relay.sent[stamp].sequence + d for d in DROPS}
        for stamp in range(first, first + FRAMES):
            relay.send(frames[stamp - 1], stamp)
        assert relay.probe.spin_until(lambda: HEAD in relay.diagnostics, 5.0)
        relay.probe.spin_for(1.2)  # one more diagnostics report, after the last frame
        head_status = relay.diagnostics[HEAD]
    finally:
        relay.close()
    assert set(relay.sent) == set(range(1, first + FRAMES)), "every camera frame was coded once"
    measured = {s: msg for s, msg in relay.sent.items() if s >= first}
    delivered = {s for s, msg in measured.items() if msg.sequence not in relay.dropped}
    answered = set(relay.answers) & set(measured)
    assert answered <= delivered and len(delivered) == FRAMES - len(DROPS)
    key_frames = [s for s, msg in sorted(measured.items()) if msg.reference_sequence == 0]
    if reference == "acknowledged":
        assert answered == delivered, (sorted(delivered - answered), relay.tail.log()[-2000:])
        assert key_frames == [], "no loss needed a key frame"
        assert all(msg.reference_sequence not in relay.dropped for msg in measured.values())
        assert all(
            relay.acks[msg.sequence] == FeaturesAck.STATUS_DECODED for s, msg in measured.items() if s in delivered
        )
        assert int(head_status.get("keyframe_losses", "0")) == 0
    else:
        extra = len(delivered - answered)
        assert extra >= 3, "each loss also cost the next frame at least"
        assert FeaturesAck.STATUS_MISSING_REFERENCE in relay.acks.values()
        assert len(key_frames) >= 3, key_frames
    print(f"\n{reference}: {len(answered)} of {len(delivered)} delivered frames answered, key frames at {key_frames}")
