"""The generated messages carry exactly the fields, types and constants of shared/design.md."""

from splitcomp_msgs.msg import Classification, ClassScore, EncodedTensor, SplitFeatures

DESIGN_FIELDS = {
    EncodedTensor: {
        "name": "string",
        "shape": "sequence<uint32>",
        "bits": "uint8",
        "scale": "sequence<float>",
        "offset": "sequence<float>",
        "codec": "uint8",
        "packed_size": "uint32",
        "data": "sequence<uint8>",
    },
    SplitFeatures: {
        "header": "std_msgs/Header",
        "sequence": "uint64",
        "model_id": "string",
        "tensors": "sequence<splitcomp_msgs/EncodedTensor>",
        "preprocess_ms": "float",
        "head_ms": "float",
        "encode_ms": "float",
    },
    ClassScore: {"class_id": "int32", "label": "string", "score": "float"},
    Classification: {
        "header": "std_msgs/Header",
        "sequence": "uint64",
        "model_id": "string",
        "results": "sequence<splitcomp_msgs/ClassScore>",
        "feature_bytes": "uint32",
        "head_ms": "float",
        "tail_ms": "float",
        "latency_ms": "float",
    },
}


def test_fields_match_the_design_in_order():
    for msg_type, fields in DESIGN_FIELDS.items():
        actual = msg_type.get_fields_and_field_types()
        assert list(actual.items()) == list(fields.items()), msg_type.__name__


def test_codec_constants():
    assert (EncodedTensor.CODEC_NONE, EncodedTensor.CODEC_ZSTD, EncodedTensor.CODEC_LZ4) == (0, 1, 2)
