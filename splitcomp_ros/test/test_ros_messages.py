"""EncodedTensor survives core -> ROS message -> serialized bytes -> ROS message -> core."""

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message

from splitcomp_core.codec import CODEC_ZSTD, clip_params, decode, encode, range_params
from splitcomp_msgs.msg import EncodedTensor as EncodedTensorMsg
from splitcomp_ros.messages import tensor_from_msg, tensor_to_msg


def roundtrip(tensor):
    wire = serialize_message(tensor_to_msg(tensor))
    return tensor_from_msg(deserialize_message(wire, EncodedTensorMsg))


def test_quantized_per_channel_tensor_roundtrips():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 5, (1, 6, 7, 5)).astype(np.float32)
    params = range_params(5, np.full(6, -1.0), np.linspace(3, 5, 6))
    sent = encode("a/b:0", x, params, CODEC_ZSTD)
    got = roundtrip(sent)
    assert got.name == sent.name and got.shape == sent.shape and got.bits == 5
    assert got.codec == CODEC_ZSTD and got.packed_size == sent.packed_size and got.data == sent.data
    np.testing.assert_array_equal(got.scale, sent.scale)
    np.testing.assert_array_equal(got.offset, sent.offset)
    np.testing.assert_array_equal(decode(got), decode(sent))


def test_raw_tensor_has_empty_scale_and_offset():
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    got = roundtrip(encode("raw", x, None, 0, raw_bits=16))
    assert got.bits == 16 and got.scale.size == 0 and got.offset.size == 0
    np.testing.assert_array_equal(decode(got), x)


def test_clip_tensor_decodes_like_the_original():
    x = np.linspace(-3, 40, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    sent = encode("t", x, clip_params(4), 0)
    np.testing.assert_array_equal(decode(roundtrip(sent)), decode(sent))


def test_an_entropy_coded_p_frame_keeps_its_model_digest_and_reference():
    from splitcomp_core.codec import CODEC_ENTROPY
    from splitcomp_core.entropy import fit_table
    from splitcomp_core.head import HeadResult
    from splitcomp_core.interframe import decode_tensor, encode_tensor
    from splitcomp_msgs.msg import SplitFeatures
    from splitcomp_ros.messages import features_msg

    rng = np.random.default_rng(2)
    x, y = (np.maximum(rng.standard_normal((1, 4, 6, 6)), 0).astype(np.float32) for _ in range(2))
    params = range_params(4, np.zeros(4), np.full(4, 3.0))
    _, reference = encode_tensor("t", x, params, 0)
    table = fit_table("t", 4, "per_channel", [reference])
    sent, codes = encode_tensor("t", y, params, CODEC_ENTROPY, table=table, reference=reference)
    msg = features_msg(SplitFeatures().header, 9, "m", HeadResult([sent], 0.0, 0.0, 0.0, reference_sequence=8), 0.0)
    got = deserialize_message(serialize_message(msg), SplitFeatures)
    assert got.reference_sequence == 8 and got.tensors[0].codec == EncodedTensorMsg.CODEC_ENTROPY
    tensor = tensor_from_msg(got.tensors[0])
    assert tensor.entropy_model == table.digest and tensor.data == sent.data
    np.testing.assert_array_equal(decode_tensor(tensor, table, reference)[1], codes)
