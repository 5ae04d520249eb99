"""What every test shares: DDS isolation per test session, and small ONNX models and a tiny bundle.

Tests start real ROS 2 processes; without the isolation, two runs on one machine (or a developer's
nodes) would hear each other's topics. Child processes inherit the environment set here.
"""

import os

import pytest
from tiny_models import TINY_LABELS, onnx_model, tiny_head, tiny_tail


def pytest_configure(config):
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    if os.environ.get("ROS_DISTRO") == "humble":
        os.environ["ROS_LOCALHOST_ONLY"] = "1"
    else:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


@pytest.fixture(scope="session")
def build_onnx():
    """tests/support/tiny_models.onnx_model: a checked model from nodes, {name: shape} and {name: array}."""
    return onnx_model


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A real bundle of a 3x3 conv head and a pooled linear tail (16x16 RGB in, 5 classes), with ranges."""
    from splitcomp_core.bundle import InputSpec, Manifest, OutputSpec, QuantizationSpec, TensorSpec, write_bundle

    manifest = Manifest(
        format_version=1,
        model_id="",
        source="test",
        cut=[TensorSpec("feat", [1, 4, 16, 16])],
        input=InputSpec("image", [1, 3, 16, 16], 16, 16, "RGB", [0.5] * 3, [0.25] * 3),
        output=OutputSpec("logits", [1, 5]),
        quantization=QuantizationSpec(
            calibrated={
                "feat": {
                    "per_tensor": {"min": 0.0, "max": 6.0},
                    "per_channel": {"min": [0.0] * 4, "max": [6.0, 5.0, 4.0, 3.0]},
                    "method": "fixed",
                    "bits": 8,
                }
            }
        ),
    )
    return write_bundle(tmp_path_factory.mktemp("tiny") / "bundle", tiny_head(), tiny_tail(), manifest, TINY_LABELS)
