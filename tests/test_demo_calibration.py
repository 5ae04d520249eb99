"""On the shipped demo model, calibrated 4-bit features agree with the unsplit model on >= 99 % of new frames."""

import pytest

from splitcomp_tools.model.calibrate import calibrate

pytestmark = pytest.mark.slow  # the demo model split and calibrated: `make test-fast` leaves it out


def test_calibrated_4_bits_agree_with_the_unsplit_model(demo_bundle):
    result = calibrate(demo_bundle, "generator", count=100, bits=4, seed=11, video_codecs=())  # JPEG is enough here
    at_4_bits = {r.method: r for r in result.results if r.bits == 4 and r.codec == "none"}
    for method in ("per_tensor_mse", "per_channel_mse"):
        assert at_4_bits[method].agreement >= 0.99, (method, at_4_bits[method].agreement)
    assert at_4_bits["per_tensor_mse"].bytes_per_frame == 4096
    jpeg_full = [r for r in result.results if r.method.startswith("jpeg") and "full" in r.method]
    assert jpeg_full and jpeg_full[0].bytes_per_frame > 20 * 4096
