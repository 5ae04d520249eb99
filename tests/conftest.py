"""Shared fixtures of the integration tests: the demo bundle, made once per session."""

import pathlib

import pytest


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory) -> pathlib.Path:
    """The shipped demo model, split where `make demo` splits it and calibrated on generated frames."""
    from splitcomp_tools.shapes.bundle import prepare_bundle

    return prepare_bundle(tmp_path_factory.mktemp("demo") / "bundle", calibration_frames=120, quiet=True)
