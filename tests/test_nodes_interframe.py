"""Inter-frame and entropy coding between real head_node and tail_node processes over real DDS.

The head's `keyframe_interval` changes at run time, its P-frames are answered exactly as TailPipeline answers
intra coding of the same frames, and when the tail restarts (losing every reference) its P-frames are rejected
as `missing_reference` until the head, missing the answers, sends a key frame: the test measures how long.
"""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from drifting import video_frames
from rcl_interfaces.srv import SetParameters
from rclpy.qos import qos_profile_sensor_data
from ros_harness import NodeProcess, Probe, diagnostics_values, set_parameter
from sensor_msgs.msg import Image

from splitcomp_core.head import HeadPipeline
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import TailPipeline
from splitcomp_msgs.msg import Classification, SplitFeatures
from splitcomp_ros.images import array_to_image

TAIL = "splitcomp: /tail_node"
HEAD = "splitcomp: /head_node"


class Bench:
    """A camera, head_node and tail_node, and a probe that sees features, answers and diagnostics."""

    def __init__(self, bundle, tmp_path, head_params: dict) -> None:
        self.common = {"bundle": str(bundle.path), "providers": ["cpu"]}
        self.tmp_path = tmp_path
        self.tail = self.start_tail("tail")
        self.head = NodeProcess("splitcomp_head_node", "head_node", {**self.common, **head_params}, tmp_path)
        self.probe = Probe("interframe_probe")
        self.answers: dict[int, Classification] = {}
        self.features: dict[int, SplitFeatures] = {}
        self.diagnostics: dict = {}
        node = self.probe.node
        node.create_subscription(Classification, "splitcomp/classification", self._on_answer, 50)
        node.create_subscription(SplitFeatures, "splitcomp/features", self._on_features, 50)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.camera = node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.params = node.create_client(SetParameters, "head_node/set_parameters")
        assert self.probe.wait_for_subscriber(self.camera), self.head.log()

    def start_tail(self, log_name: str) -> NodeProcess:
        folder = self.tmp_path / log_name
        folder.mkdir()
        return NodeProcess("splitcomp_tail_node", "tail_node", self.common, folder)

    def _on_answer(self, msg: Classification) -> None:
        self.answers[msg.header.stamp.sec] = msg

    def _on_features(self, msg: SplitFeatures) -> None:
        self.features[msg.header.stamp.sec] = msg

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = diagnostics_values(status)

    def send(self, frame: np.ndarray, stamp: int, wait: float = 5.0) -> bool:
        """Publish a frame (stamp = its index); True once it is answered within `wait` seconds (and the probe holds
        the features it answers: an answer can overtake them on the way to the probe)."""
        msg = array_to_image(frame, "rgb8")
        msg.header.stamp.sec = stamp
        msg.header.frame_id = "camera"
        self.camera.publish(msg)
        return self.probe.spin_until(lambda: stamp in self.answers and stamp in self.features, wait)

    def set(self, name: str, value):
        return set_parameter(self.probe, self.params, name, value)

    def close(self) -> None:
        self.probe.close()
        assert self.head.stop() == 0, self.head.log()
        assert self.tail.stop() == 0, self.tail.log()


def test_p_frames_over_dds_are_answered_as_intra_coding_and_the_interval_changes_at_run_time(
    tiny_entropy_bundle, tmp_path
):
    encoder = {"bits": 4, "quantization": "per_channel", "codec": "entropy"}
    # Each frame is sent once the previous one is answered, but the head may take the next image before it has
    # taken that answer: on a loaded machine the answer can be over a second late, so a long timeout keeps the
    # schedule exact (timeouts have their own test below).
    slow_answers_ok = {"keyframe_timeout_s": 60.0}
    bench = Bench(tiny_entropy_bundle, tmp_path, {**encoder, **slow_answers_ok, "keyframe_interval": 0})
    frames = video_frames(16, seed=21)
    head = HeadPipeline(tiny_entropy_bundle, EncoderConfig(bits=4, mode="per_channel", codec="entropy"), ["cpu"])
    tail = TailPipeline(tiny_entropy_bundle, ["cpu"])
    try:
        assert any(bench.send(frames[0], 1) for _ in range(3)), bench.head.log() + bench.tail.log()
        for i in range(2, 5):
            assert bench.send(frames[i - 1], i), bench.tail.log()
        assert bench.set("keyframe_interval", 4).successful
        for i in range(5, 17):
            assert bench.send(frames[i - 1], i), bench.tail.log()[-2000:]
        refused = [bench.set("keyframe_interval", -1), bench.set("codec", "brotli")]
        assert not any(r.successful for r in refused)
        assert bench.probe.spin_until(lambda: bench.diagnostics.get(HEAD, {}).get("p_frames") == "9", 5.0), (
            bench.diagnostics.get(HEAD),
            {stamp: msg.reference_sequence for stamp, msg in sorted(bench.features.items())},
        )
    finally:
        bench.close()
    stamps = sorted(bench.features)
    kinds = ["P" if bench.features[s].reference_sequence else "K" for s in stamps]
    assert "".join(kinds) == "KKKK" + "KPPP" * 3, kinds
    for stamp in stamps:
        sent = bench.features[stamp]
        assert sent.reference_sequence in (0, sent.sequence - 1)
        assert all(t.codec == 3 and t.entropy_model.startswith("sha256:") for t in sent.tensors)
        want = tail(tiny_entropy_bundle.manifest.model_id, head(frames[stamp - 1]).tensors)
        got = bench.answers[stamp]
        assert [r.class_id for r in got.results] == [c for c, _, _ in want.results], stamp
        np.testing.assert_allclose([r.score for r in got.results], [p for _, _, p in want.results], rtol=1e-6)
    p_bytes = [bench.answers[s].feature_bytes for s in stamps if bench.features[s].reference_sequence]
    key_bytes = [bench.answers[s].feature_bytes for s in stamps if not bench.features[s].reference_sequence]
    assert np.mean(p_bytes) < np.mean(key_bytes)


def test_a_restarted_tail_rejects_p_frames_until_the_heads_next_key_frame(tiny_bundle, tmp_path):
    timeout_s = 1.0
    params = {"bits": 4, "codec": "zstd", "keyframe_interval": 1000, "keyframe_timeout_s": timeout_s}
    bench = Bench(tiny_bundle, tmp_path, params)
    frames = video_frames(200, seed=5)
    try:
        assert any(bench.send(frames[0], 1) for _ in range(3)), bench.head.log() + bench.tail.log()
        for i in range(2, 6):
            assert bench.send(frames[i - 1], i)
        assert bench.tail.stop() == 0, bench.tail.log()
        bench.diagnostics.pop(TAIL, None)
        bench.tail = bench.start_tail("tail_restarted")  # no frames meanwhile: nothing is overdue at the head
        assert bench.probe.spin_until(lambda: TAIL in bench.diagnostics, 20.0), bench.tail.log()
        started = time.monotonic()
        resumed, answered_at = 6, None
        for i in range(resumed, 200):  # the camera goes on at 20 Hz
            if bench.send(frames[i - 1], i, wait=0.05):
                answered_at = i
                break
        recovery_s = time.monotonic() - started
        assert answered_at is not None, bench.tail.log()[-2000:]
        for i in range(answered_at + 1, answered_at + 6):
            assert bench.send(frames[i - 1], i), "the chain goes on after the key frame"

        def counted():
            return bench.diagnostics.get(TAIL, {}).get("frames_out") == "6"

        assert bench.probe.spin_until(counted, 5.0), bench.diagnostics.get(TAIL)
        tail_status, head_status = bench.diagnostics[TAIL], bench.diagnostics.get(HEAD, {})
    finally:
        bench.close()
    first = bench.features[answered_at]
    assert first.reference_sequence == 0, "the first answer after the restart is a key frame"
    rejected = int(tail_status["rejected.missing_reference"])
    assert 1 <= rejected == int(tail_status["rejected"]) <= answered_at - resumed  # a camera frame may be dropped
    assert all(bench.features[s].reference_sequence for s in range(resumed, answered_at) if s in bench.features)
    assert int(head_status.get("keyframe_losses", "0")) >= 1
    # No key frame is due by the interval (1000), so the head's losses say the timeout ended the chain; the time
    # it took is printed, not asserted: a loaded machine stretches it, and targets live in benchmarks.
    print(f"\ntail restart: {rejected} P-frames rejected as missing_reference, answered again after {recovery_s:.2f} s")
    assert "waiting for its next key frame" in bench.tail.log()


@pytest.mark.parametrize("codec", ["entropy"])
def test_the_head_refuses_codec_entropy_without_a_model(tiny_bundle, tmp_path, codec):
    head = NodeProcess(
        "splitcomp_head_node",
        "head_node",
        {"bundle": str(tiny_bundle.path), "providers": ["cpu"], "codec": codec},
        tmp_path,
    )
    code = head.process.wait(timeout=60)
    assert code == 2 and "no entropy model" in head.log(), head.log()
