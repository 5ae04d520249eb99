"""head_node and tail_node on a multi-cut bundle over real DDS: the tail answers every cut, the head switches
cut with `ros2 param set bandwidth_mbps` between two frames, losing none, and both report the cut in use."""

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.qos import qos_profile_sensor_data
from ros_harness import NodeProcess, Probe, diagnostics_values, set_parameter
from sensor_msgs.msg import Image
from tiny_models import TINY_LABELS

from splitcomp_core.head import HeadPipeline
from splitcomp_msgs.msg import Classification, SplitFeatures
from splitcomp_ros.images import array_to_image
from splitcomp_ros.messages import features_msg
from splitcomp_ros.qos import features_qos

pytestmark = pytest.mark.slow  # nodes as processes over DDS: `make test-fast` leaves it out

RNG = np.random.default_rng(3)
FRAME = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)


class Pipeline:
    def __init__(self, bundle, tmp_path):
        common = {"bundle": str(bundle.path), "providers": ["cpu"]}
        self.tail = NodeProcess("splitcomp_tail_node", "tail_node", common, tmp_path)
        self.head = NodeProcess("splitcomp_head_node", "head_node", {**common, "bandwidth_mbps": 5.0}, tmp_path)
        self.probe = Probe("multi_cut_probe")
        self.results, self.features, self.diagnostics = [], [], {}
        node = self.probe.node
        node.create_subscription(Classification, "splitcomp/classification", self.results.append, 50)
        node.create_subscription(SplitFeatures, "splitcomp/features", self.features.append, 50)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.camera = node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
        self.injector = node.create_publisher(SplitFeatures, "splitcomp/features", features_qos())
        self.params = node.create_client(SetParameters, "head_node/set_parameters")
        assert self.probe.wait_for_subscriber(self.camera), self.head.log()
        assert self.probe.wait_for_subscriber(self.injector), self.tail.log()

    def _on_diagnostics(self, msg):
        for status in msg.status:
            self.diagnostics[status.name] = diagnostics_values(status)

    def frame(self, stamp: int) -> None:
        msg = array_to_image(FRAME, "rgb8")
        msg.header.stamp.sec = stamp
        self.camera.publish(msg)

    def set_bandwidth(self, value):
        return set_parameter(self.probe, self.params, "bandwidth_mbps", value)

    def set_parameter(self, name, value):
        return set_parameter(self.probe, self.params, name, value)

    def answered(self, count: int, timeout: float = 10.0) -> bool:
        return self.probe.spin_until(lambda: len(self.results) >= count, timeout)

    def close(self):
        self.probe.close()
        assert self.head.stop() == 0, self.head.log()
        assert self.tail.stop() == 0, self.tail.log()


@pytest.fixture(scope="module")
def pipeline(tiny_multi_cut_bundle, tmp_path_factory):
    p = Pipeline(tiny_multi_cut_bundle, tmp_path_factory.mktemp("multi_cut"))
    yield p
    p.close()


def test_switching_by_bandwidth_happens_between_two_frames_and_loses_none(pipeline, tiny_multi_cut_bundle):
    sent = 0
    for _ in range(3):  # the first frame may go before discovery settles: resend until one comes back
        sent += 1
        pipeline.frame(sent)
        if pipeline.answered(1, 3.0):
            break
    assert pipeline.results, pipeline.head.log()
    assert pipeline.results[0].cut_id == "feat"
    for i in range(40):
        if i == 20:
            result = pipeline.set_bandwidth(50.0)
            assert result.successful, result.reason
        sent += 1
        pipeline.frame(sent)
        pipeline.probe.spin_for(0.03)
    pipeline.probe.spin_for(1.0)
    answered = [r.sequence for r in pipeline.results]
    # The probe may have matched the head's publisher or the tail's only after the first frames: count from there.
    published = [f.sequence for f in pipeline.features if f.sequence >= answered[0]]
    assert set(published) <= set(answered), "a published frame was not answered"
    assert answered == list(range(answered[0], answered[0] + len(answered))), "the head's sequence has a gap"
    cuts = [r.cut_id for r in pipeline.results]
    switch = cuts.index("pooled")
    assert set(cuts[:switch]) == {"feat"} and set(cuts[switch:]) == {"pooled"}, cuts
    assert switch >= 5 and len(cuts) - switch >= 5
    by_cut = {c.cut_id: c.bundle.manifest.model_id for c in tiny_multi_cut_bundle.cuts}
    features_by_sequence = {f.sequence: f for f in pipeline.features}
    for result in pipeline.results:
        features = features_by_sequence.get(result.sequence)
        assert features is None or features.cut_id == result.cut_id
        assert result.model_id == by_cut[result.cut_id] and result.results[0].label in TINY_LABELS
    assert {f.tensors[0].name for f in pipeline.features} == {"feat", "p"}


def test_bandwidth_values_are_checked_and_both_nodes_report_the_cut(pipeline):
    for bad in ("fast", -1.0, 0):
        result = pipeline.set_bandwidth(bad)
        assert not result.successful and "bandwidth_mbps" in result.reason
    assert pipeline.set_bandwidth(3).successful  # an integer is a rate too
    count = len(pipeline.results)
    pipeline.frame(10_000)
    assert pipeline.answered(count + 1), pipeline.head.log()
    assert pipeline.results[-1].cut_id == "feat"

    def reported():
        head = pipeline.diagnostics.get("splitcomp: /head_node", {})
        tail = pipeline.diagnostics.get("splitcomp: /tail_node", {})
        return head.get("cut_id") == "feat" and tail.get("cut_id") == "feat" and head.get("bandwidth_mbps") == "3"

    assert pipeline.probe.spin_until(reported, 5.0), pipeline.diagnostics
    tail = pipeline.diagnostics["splitcomp: /tail_node"]
    assert int(tail["frames.feat"]) >= 1 and int(tail["frames.pooled"]) >= 5
    assert pipeline.set_bandwidth("auto").successful
    pipeline.frame(10_001)
    assert pipeline.probe.spin_until(
        lambda: pipeline.diagnostics.get("splitcomp: /head_node", {}).get("bandwidth_mbps") == "auto", 5.0
    )


def test_the_tail_refuses_a_cut_it_does_not_have(pipeline, tiny_multi_cut_bundle):
    cut = tiny_multi_cut_bundle.cuts[1].bundle
    head = HeadPipeline(cut, providers=["cpu"])
    msg = features_msg(array_to_image(FRAME, "rgb8").header, 99_999, cut.manifest.model_id, head(FRAME), 0.0, "nope")
    pipeline.injector.publish(msg)

    def counted():
        return pipeline.diagnostics.get("splitcomp: /tail_node", {}).get("rejected.cut_id") == "1"

    assert pipeline.probe.spin_until(counted, 5.0), pipeline.diagnostics.get("splitcomp: /tail_node")
    assert "is not a cut of this bundle" in pipeline.tail.log()


def test_with_inter_frame_coding_a_cut_switch_starts_with_a_key_frame(pipeline):
    assert pipeline.set_parameter("keyframe_interval", 10).successful
    assert pipeline.set_bandwidth(3.0).successful
    first = len(pipeline.features)
    for i in range(12):
        if i == 6:
            assert pipeline.set_bandwidth(50.0).successful
        count = len(pipeline.results) + 1
        pipeline.frame(20_000 + i)
        assert pipeline.answered(count), pipeline.tail.log()[-2000:]
    pipeline.probe.spin_for(0.5)
    sent = [(f.cut_id, f.reference_sequence, f.sequence) for f in pipeline.features[first:]]
    assert sent[0][1] == 0 and all(ref == seq - 1 for _, ref, seq in sent[1:6]), sent
    switch = next(i for i, (cut, _, _) in enumerate(sent) if cut == "pooled")
    assert sent[switch][1] == 0 and all(ref == seq - 1 for _, ref, seq in sent[switch + 1 :]), sent
    assert pipeline.set_parameter("keyframe_interval", 0).successful
