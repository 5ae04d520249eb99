"""The planner's framing constant against a real message: SplitFeatures as the head publishes it, serialized by
rclpy, carries about what model/latency.py says beyond its codes, scale and offset."""

from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from splitcomp_core.bundle import load_bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.link import MESSAGE_FRAMING_BYTES
from splitcomp_core.quantization import EncoderConfig
from splitcomp_ros.messages import features_msg
from splitcomp_tools.frames.generator import GeneratorSource

RTPS_AND_UDP = 20 + 12 + 24 + 8  # RTPS header, INFO_TS, DATA submessage header; UDP header


def test_the_framing_constant_is_what_a_real_message_carries_beyond_its_payload(demo_bundle):
    bundle = load_bundle(demo_bundle)
    head = HeadPipeline(bundle, providers=["cpu"])
    frame = GeneratorSource(640, 480, seed=3).read()
    header = Header(frame_id="camera")
    for codec, mode in (("none", "calibrated"), ("zstd", "per_channel"), ("entropy", "calibrated")):
        head.configure(EncoderConfig(bits=4, codec=codec, mode=mode))
        result = head(frame)
        msg = features_msg(header, 7, bundle.manifest.model_id, result, 0.0, image_size=(640, 480))
        payload = sum(len(t.data) + 8 * len(t.scale) for t in result.tensors)
        framing = len(serialize_message(msg)) - payload + RTPS_AND_UDP
        assert abs(framing - MESSAGE_FRAMING_BYTES) <= 80, (codec, mode, framing)
