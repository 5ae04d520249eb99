"""The generated messages carry exactly the fields, types and constants of the original design, then the additions.

The design is a contract that is extended by appending fields, never by renaming them: each addition is
documented in the table of added fields in docs/architecture.md ("Wire format"), and this test reads that table.
"""

import pathlib
import re

from splitcomp_msgs.msg import (
    Classification,
    ClassScore,
    Detection,
    Detections,
    EncodedTensor,
    FeaturesAck,
    SplitFeatures,
)

ARCHITECTURE = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
MESSAGES = {m.__name__: m for m in (EncodedTensor, SplitFeatures, ClassScore, Classification)}
IDL_TYPES = {"string": "string", "float32": "float", "uint32": "uint32", "uint64": "uint64", "int32": "int32"}

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


def documented_additions() -> dict:
    """{message type: {field: idl type}} from docs/architecture.md's rows `| `Message` | `field` | `type` | meaning |`."""
    added: dict = {m: {} for m in DESIGN_FIELDS}
    for message, field, kind in re.findall(r"^\| `(\w+)` \| `(\w+)` \| `(\w+)` \|", ARCHITECTURE, re.M):
        if message in MESSAGES:
            added[MESSAGES[message]][field] = IDL_TYPES[kind]
    return added


def test_fields_match_the_design_then_the_documented_additions_in_order():
    additions = documented_additions()
    assert additions[SplitFeatures] == {
        "cut_id": "string",
        "reference_sequence": "uint64",
        "image_width": "uint32",
        "image_height": "uint32",
    }
    assert additions[Classification] == {"cut_id": "string"}
    assert additions[EncodedTensor] == {"entropy_model": "string"}
    for msg_type, fields in DESIGN_FIELDS.items():
        actual = msg_type.get_fields_and_field_types()
        assert list(actual.items()) == [*fields.items(), *additions[msg_type].items()], msg_type.__name__


def test_the_acknowledgement_is_the_documented_receipt():
    assert list(FeaturesAck.get_fields_and_field_types().items()) == [
        ("header", "std_msgs/Header"),
        ("sequence", "uint64"),
        ("cut_id", "string"),
        ("status", "uint8"),
        ("reference_frames", "uint16"),
        ("tail_ms", "float"),
    ]
    assert (FeaturesAck.STATUS_DECODED, FeaturesAck.STATUS_MISSING_REFERENCE, FeaturesAck.STATUS_REJECTED) == (0, 1, 2)
    for field in ("header", "sequence", "cut_id", "status", "reference_frames", "tail_ms"):
        assert f"| `{field}` |" in ARCHITECTURE.split("`FeaturesAck` (added")[1].split("##")[0], field


def test_codec_constants():
    assert (EncodedTensor.CODEC_NONE, EncodedTensor.CODEC_ZSTD, EncodedTensor.CODEC_LZ4) == (0, 1, 2)
    assert EncodedTensor.CODEC_ENTROPY == 3


def test_detections_are_the_documented_boxes():
    assert list(Detections.get_fields_and_field_types().items()) == [
        ("header", "std_msgs/Header"),
        ("sequence", "uint64"),
        ("model_id", "string"),
        ("feature_bytes", "uint32"),
        ("head_ms", "float"),
        ("tail_ms", "float"),
        ("latency_ms", "float"),
        ("cut_id", "string"),
        ("detections", "sequence<splitcomp_msgs/Detection>"),
    ]
    assert list(Detection.get_fields_and_field_types().items()) == [
        ("class_id", "int32"),
        ("label", "string"),
        ("score", "float"),
        ("x", "float"),
        ("y", "float"),
        ("width", "float"),
        ("height", "float"),
        ("keypoints", "sequence<float>"),
    ]
    section = ARCHITECTURE.split("`Detections` (added")[1].split("`FeaturesAck` (added")[0]
    for field in Detections.get_fields_and_field_types():
        assert f"| `{field}` |" in section, field
    for field in Detection.get_fields_and_field_types():
        assert f"`{field}`" in section, field
