import numpy as np

from splitcomp_core.stats import RateMeter, RollingStats


def test_percentiles_over_the_window_only():
    stats = RollingStats(window=100)
    for v in range(1000):
        stats.add("head", v)
    p50, p95 = stats.percentiles("head")
    window = np.arange(900, 1000)
    assert p50 == np.percentile(window, 50) and p95 == np.percentile(window, 95)
    assert stats.percentiles("missing") is None


def test_rate_meter_uses_its_horizon():
    now = [0.0]
    meter = RateMeter(horizon_s=2.0, clock=lambda: now[0])
    for _ in range(41):
        meter.tick()
        now[0] += 0.05
    assert abs(meter.rate() - 20.0) < 1e-6
    now[0] += 10
    assert meter.rate() == 0.0
    assert meter.seconds_since_last() > 9
