"""The transport overhead as a model of the payload: fitted on synthetic timings, used by the predictions, stored
in the plan's JSON and in a multi-cut bundle that the schema accepts."""

import numpy as np
import pytest

from splitcomp_core.bundle import CutChoice, load_bundle, write_multi_cut_bundle
from splitcomp_core.errors import SplitcompError
from splitcomp_core.link import MESSAGE_FRAMING_BYTES, PACKET_HEADER_BYTES, link_bytes
from splitcomp_tools.model.candidates import Candidate
from splitcomp_tools.model.latency import Link, predict
from splitcomp_tools.model.overhead import OverheadFit, fit_overhead
from splitcomp_tools.model.plan import overhead_json


def test_the_fit_finds_the_line_under_noisy_timings_and_says_how_well_it_fits():
    rng = np.random.default_rng(0)
    sizes = rng.uniform(10, 120_000, 60)
    noise = rng.normal(0.0, 0.1, sizes.size)
    fit = fit_overhead(list(zip(sizes, 1.5 + 0.02 * sizes / 1000 + noise, strict=True)))
    assert fit.intercept_ms == pytest.approx(1.5, abs=0.08) and fit.per_kb_ms == pytest.approx(0.02, abs=0.002)
    assert fit.samples == 60 and 0.07 < fit.rms_ms < 0.13 and fit.rms_ms < fit.max_residual_ms < 0.4
    assert fit.at(50_000) == pytest.approx(fit.intercept_ms + 50 * fit.per_kb_ms)


def test_exact_timings_fit_exactly():
    fit = fit_overhead([(1000, 2.5), (11_000, 3.5), (101_000, 12.5)])
    assert (fit.intercept_ms, fit.per_kb_ms) == pytest.approx((2.4, 0.1))
    assert fit.rms_ms == pytest.approx(0.0, abs=1e-9) and fit.max_residual_ms == pytest.approx(0.0, abs=1e-9)


def test_a_cost_that_falls_with_bytes_is_noise_and_one_size_gives_the_constant():
    falling = fit_overhead([(1000, 3.0), (50_000, 2.0), (100_000, 1.0)])
    assert falling.per_kb_ms == 0.0 and falling.intercept_ms == pytest.approx(2.0)
    assert falling.max_residual_ms == pytest.approx(1.0)
    one_size = fit_overhead([(800, 2.0), (800, 4.0)])
    assert (one_size.intercept_ms, one_size.per_kb_ms, one_size.samples) == (3.0, 0.0, 2)
    # A line that would cross zero above 0 bytes is kept at or above zero at 0 bytes: the slope through 0.
    through_zero = fit_overhead([(1000, 0.0), (100_000, 10.0), (200_000, 20.5)])
    assert through_zero.intercept_ms == 0.0 and through_zero.per_kb_ms > 0
    with pytest.raises(SplitcompError, match="at least one finite"):
        fit_overhead([])
    with pytest.raises(SplitcompError, match="at least one finite"):
        fit_overhead([(100, float("nan"))])


def test_predictions_add_the_fitted_overhead_of_each_candidates_bytes():
    small = Candidate("small", ["s"], 0.5, 1, 0.5, bytes=1_000, head_total_ms=1.0, tail_total_ms=1.0)
    large = Candidate("large", ["l"], 0.1, 1, 0.1, bytes=101_000, head_total_ms=0.5, tail_total_ms=0.5)
    link = Link.from_fit(
        OverheadFit(2.0, per_kb_ms=0.1, samples=5, rms_ms=0.2, max_residual_ms=0.3), Link(burst_bytes=1600)
    )
    predict([small, large], [100.0], link)
    assert small.predicted_ms["100"] == pytest.approx(2.0 + 2.0 + 0.1)  # under the bucket: no wait
    assert large.predicted_ms["100"] == pytest.approx(1.0 + 99_400 * 8e-3 / 100 + 2.0 + 10.1)
    assert link.overhead_ms == 2.0 and overhead_json(link)["fitted"] is True
    assert overhead_json(Link(2.0)) == {
        "intercept_ms": 2.0,
        "per_kb_ms": 0.0,
        "samples": 0,
        "rms_ms": 0.0,
        "max_residual_ms": 0.0,
        "fitted": False,
    }
    assert OverheadFit.from_json(link.fit.to_json()) == link.fit


def test_the_bundle_keeps_the_fixed_overhead_and_its_schema_takes_the_fit(tiny_bundle, tmp_path):
    link = {
        "transport_overhead_ms": 2.0,
        "transport_overhead_per_kb_ms": 0.1,
        "transport_overhead_fit": {"samples": 5, "rms_ms": 0.2, "max_residual_ms": 0.3},
    }
    cuts = [CutChoice("feat", tiny_bundle, 0.0, None)]
    written = write_multi_cut_bundle(tmp_path / "b", cuts, "feat", link)
    assert load_bundle(written.path).link == link
    bad = {**link, "transport_overhead_fit": {"samples": 5, "rms": 0.2}}
    with pytest.raises(SplitcompError, match="transport_overhead_fit"):
        write_multi_cut_bundle(tmp_path / "c", cuts, "feat", bad)


def test_a_message_crosses_the_link_framed_and_in_packets():
    assert link_bytes(1_808) == 1_808 + MESSAGE_FRAMING_BYTES + 2 * PACKET_HEADER_BYTES  # 2,112 bytes in two packets
    assert link_bytes(1_000) == 1_000 + MESSAGE_FRAMING_BYTES + PACKET_HEADER_BYTES
    assert link_bytes(1_808, framing=0) == 1_808  # the payload alone, the old model
    bucket = Link(2.0, burst_bytes=1600, framing_bytes=MESSAGE_FRAMING_BYTES)
    assert Link(2.0, burst_bytes=1600).waiting(1_460) == 0.0  # fits the bucket as a payload ...
    assert bucket.waiting(1_460) == pytest.approx(1_460 + 304 + 2 * 34 - 1600)  # ... not once framed
    c = Candidate("c", ["t"], 0.5, 1, 0.5, bytes=1_460, head_total_ms=1.0, tail_total_ms=1.0)
    predict([c], [1.1], bucket)
    assert c.predicted_ms["1.1"] == pytest.approx(4.0 + 232 * 8e-3 / 1.1)
