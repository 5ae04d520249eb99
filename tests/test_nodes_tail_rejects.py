"""The tail refuses every kind of malformed SplitFeatures, counts why, and keeps serving."""

import dataclasses

import numpy as np
import pytest
import zstandard
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import NodeProcess, Probe, diagnostics_values

from splitcomp_core.bundle import load_bundle
from splitcomp_core.codec import CODEC_LZ4, CODEC_NONE, CODEC_ZSTD
from splitcomp_core.head import HeadPipeline
from splitcomp_core.quantization import EncoderConfig
from splitcomp_msgs.msg import Classification, SplitFeatures
from splitcomp_ros.messages import tensor_to_msg
from splitcomp_ros.qos import features_qos
from splitcomp_tools.frames.generator import GeneratorSource

pytestmark = pytest.mark.slow  # nodes as processes over DDS: `make test-fast` leaves it out

RNG = np.random.default_rng(11)


def spoilers(tensor):
    """(expected reason, how to spoil a valid tensor list / model id)."""
    bomb = zstandard.ZstdCompressor().compress(bytes(tensor.packed_size * 64))
    random_bytes = RNG.integers(0, 256, tensor.packed_size, dtype=np.uint8).tobytes()
    replace = dataclasses.replace
    return [
        ("model_id", lambda t, m: (t, "sha256:" + "0" * 64)),
        ("tensor_count", lambda t, m: ([], m)),
        ("tensor_count", lambda t, m: (t + t, m)),
        ("tensor_name", lambda t, m: ([replace(t[0], name="conv1/Relu:0")], m)),
        ("shape", lambda t, m: ([replace(t[0], shape=(1, 2, 3))], m)),
        ("shape", lambda t, m: ([replace(t[0], shape=tuple(d + 1 for d in t[0].shape))], m)),
        ("codec", lambda t, m: ([replace(t[0], bits=9)], m)),
        ("codec", lambda t, m: ([replace(t[0], scale=np.ones(3, np.float32), offset=np.zeros(3, np.float32))], m)),
        ("codec", lambda t, m: ([replace(t[0], scale=np.array([np.nan], np.float32))], m)),
        ("codec", lambda t, m: ([replace(t[0], data=t[0].data[:-1])], m)),
        ("codec", lambda t, m: ([replace(t[0], packed_size=t[0].packed_size + 5)], m)),
        ("codec", lambda t, m: ([replace(t[0], codec=7)], m)),
        ("codec", lambda t, m: ([replace(t[0], codec=CODEC_ZSTD, data=b"\x28\xb5\x2f\xfd" + random_bytes[:50])], m)),
        ("codec", lambda t, m: ([replace(t[0], codec=CODEC_ZSTD, data=bomb)], m)),
        ("codec", lambda t, m: ([replace(t[0], codec=CODEC_ZSTD, data=random_bytes)], m)),
        ("codec", lambda t, m: ([replace(t[0], codec=CODEC_LZ4, data=random_bytes)], m)),
        ("codec", lambda t, m: ([replace(t[0], codec=CODEC_NONE, data=random_bytes + b"x")], m)),
    ]


def features_msg(tensors, model_id, sequence):
    msg = SplitFeatures()
    msg.header.frame_id = f"frame{sequence}"
    msg.sequence = sequence
    msg.model_id = model_id
    msg.tensors = [tensor_to_msg(t) for t in tensors]
    return msg


def test_tail_rejects_malformed_features_and_answers_the_next_valid_one(demo_bundle, tmp_path):
    bundle = load_bundle(demo_bundle)
    head = HeadPipeline(bundle, EncoderConfig(bits=4), providers=["cpu"])
    valid = head(GeneratorSource(320, 240, seed=5).read()).tensors
    cases = spoilers(valid[0])
    tail = NodeProcess("splitcomp_tail_node", "tail_node", {"bundle": str(demo_bundle), "providers": ["cpu"]}, tmp_path)
    probe = Probe("reject_probe")
    answers, diagnostics = {}, []
    probe.node.create_subscription(
        Classification, "splitcomp/classification", lambda m: answers.setdefault(m.sequence, m), 10
    )
    probe.node.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: diagnostics.extend(s for s in m.status if s.name == "splitcomp: /tail_node"),
        10,
    )
    publisher = probe.node.create_publisher(SplitFeatures, "splitcomp/features", features_qos())
    try:
        assert probe.wait_for_subscriber(publisher), tail.log()
        # Paced by the subscription's depth (5): at most four malformed messages are in flight, then a valid
        # one whose answer says the tail has taken all of them, so a busy machine cannot overflow the queue.
        sequence, valid_sequences = 0, []
        for start in range(0, len(cases), 4):
            for _, spoil in cases[start : start + 4]:
                sequence += 1
                tensors, model_id = spoil(list(valid), bundle.manifest.model_id)
                publisher.publish(features_msg(tensors, model_id, sequence))
            sequence += 1
            valid_sequences.append(sequence)
            publisher.publish(features_msg(valid, bundle.manifest.model_id, sequence))
            assert probe.spin_until(lambda sequence=sequence: sequence in answers, 20.0), tail.log()
        assert sorted(answers) == valid_sequences, "a malformed message was answered"
        expected = {}
        for reason, _ in cases:
            expected[reason] = expected.get(reason, 0) + 1

        def counted():
            if not diagnostics:
                return False
            values = diagnostics_values(diagnostics[-1])
            return values.get("rejected") == str(len(cases)) and values.get("frames_out") == str(len(valid_sequences))

        assert probe.spin_until(counted, 10.0), diagnostics_values(diagnostics[-1]) if diagnostics else tail.log()
        values = diagnostics_values(diagnostics[-1])
        for reason, count in expected.items():
            assert values[f"rejected.{reason}"] == str(count), reason
        assert values["lost"] == "0"
        assert "rejected features" in tail.log()
    finally:
        probe.close()
        assert tail.stop() == 0, tail.log()
