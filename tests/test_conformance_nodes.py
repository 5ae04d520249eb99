"""Conformance over DDS: bundles of a vision transformer and an EfficientNet-style network in the real nodes.

The transformer's cut is a [batch, tokens, dim] tensor; the EfficientNet-style network is a
dynamic-batch TorchScript export whose computed padding and `x.view(inputs.size(0), -1)` made its
cut shapes symbolic and its cuts bypassed before. Each is split in the middle, calibrated, and
served by head_node and tail_node as separate processes; every frame's result must be the one the
same HeadPipeline and TailPipeline give in this process.
"""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from conformance_models import export_family
from rclpy.qos import qos_profile_sensor_data
from ros_harness import NodeProcess, Probe
from sensor_msgs.msg import Image

from splitcomp_core.bundle import DYNAMIC, load_bundle, update_quantization
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_msgs.msg import Classification, SplitFeatures
from splitcomp_ros.images import array_to_image
from splitcomp_tools.frames.generator import GeneratorSource
from splitcomp_tools.model import analyze, split
from splitcomp_tools.model.calibrate import calibrate

pytestmark = [
    pytest.mark.slow,  # the conformance suite: `make test-fast` leaves it out
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),  # the computed padding, as in EfficientNet
]
FRAMES = 5
CASES = {"vit": ("dynamo", 3), "efficientnet": ("torchscript", 4)}  # family: exporter, rank of the cut tensor


@pytest.fixture(scope="module", params=sorted(CASES))
def served(request, tmp_path_factory):
    """Frames sent through head_node -> DDS -> tail_node for one family's bundle, and what came back."""
    family = request.param
    exporter, _ = CASES[family]
    root = tmp_path_factory.mktemp(f"nodes-{family}")
    model = export_family(family, exporter, True, tmp_path_factory.getbasetemp() / "conformance-models")
    cuts = [c.tensors for c in analyze.analyze_model(model.path).cuts if len(c.tensors) == 1]
    bundle_dir = root / "bundle"
    split.split_model(model.path, cuts[len(cuts) // 2], bundle_dir, random_samples=2)
    update_quantization(bundle_dir, calibrate(bundle_dir, "generator", count=6).quantization)
    common = {"bundle": str(bundle_dir), "providers": ["cpu"]}
    head = NodeProcess("splitcomp_head_node", "head_node", common, root)
    tail = NodeProcess("splitcomp_tail_node", "tail_node", {**common, "top_k": 3}, root)
    probe = Probe(f"conformance_{family}")
    results: dict[str, Classification] = {}
    features: dict[str, SplitFeatures] = {}
    probe.node.create_subscription(
        Classification, "splitcomp/classification", lambda m: results.setdefault(m.header.frame_id, m), 10
    )
    probe.node.create_subscription(
        SplitFeatures, "splitcomp/features", lambda m: features.setdefault(m.header.frame_id, m), 10
    )
    camera = probe.node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    source = GeneratorSource(160, 120, seed=11)
    frames = []
    try:
        assert probe.wait_for_subscriber(camera), "head_node never subscribed:\n" + head.log()
        for i in range(FRAMES):
            frames.append(source.read())
            msg = array_to_image(frames[-1], "rgb8")
            msg.header.stamp = Time(sec=100 + i)
            msg.header.frame_id = f"frame{i}"
            for _ in range(3):  # best effort: resend a frame that was lost
                camera.publish(msg)
                if probe.spin_until(lambda i=i: f"frame{i}" in results and f"frame{i}" in features, 10.0):
                    break
        yield family, load_bundle(bundle_dir), frames, features, results
    finally:
        probe.close()
        assert head.stop() == 0, head.log()
        assert tail.stop() == 0, tail.log()


def test_every_frame_is_classified_as_the_pipelines_do_it_here(served):
    family, bundle, frames, _, results = served
    assert len(results) == FRAMES, f"{family}: {len(results)} of {FRAMES} frames came back"
    head, tail = HeadPipeline(bundle, providers=["cpu"]), TailPipeline(bundle, ["cpu"], top_k=3)
    for i, frame in enumerate(frames):
        expected = tail(bundle.manifest.model_id, head(frame, "rgb8").tensors)
        got = results[f"frame{i}"]
        assert [r.class_id for r in got.results] == [c for c, _, _ in expected.results]
        np.testing.assert_allclose([r.score for r in got.results], [s for _, _, s in expected.results], atol=1e-5)
        assert got.feature_bytes == expected.feature_bytes


def test_the_features_carry_the_concrete_cut_shape(served):
    family, bundle, _, features, _ = served
    (spec,) = bundle.manifest.cut
    assert spec.shape[0] == DYNAMIC and len(spec.shape) == CASES[family][1] and min(spec.shape[1:]) > 0
    for msg in features.values():
        (tensor,) = msg.tensors
        assert tensor.name == spec.name and list(tensor.shape) == [1, *spec.shape[1:]]
        assert tensor.bits == bundle.manifest.quantization.bits == 4
