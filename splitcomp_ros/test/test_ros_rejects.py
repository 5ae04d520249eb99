"""Rejects: each kind of failure is counted under its reason, logged, and never escapes the node."""

from splitcomp_core.errors import ImageFormatError, InferenceError
from splitcomp_core.tail import FeaturesRejected
from splitcomp_ros.diagnostics import NodeHealth
from splitcomp_ros.rejects import MAX_ECHO_CHARS, Rejects, clip_text


class Logger:
    def __init__(self):
        self.lines = []

    def warning(self, text, throttle_duration_sec=None):
        self.lines.append(("warning", text))

    def error(self, text, throttle_duration_sec=None):
        self.lines.append(("error", text))


def fail(exc):
    def step():
        raise exc

    return step


def test_failures_count_under_their_reason_and_the_step_result_passes_through():
    health, log = NodeHealth("n"), Logger()
    rejects = Rejects(health, log)
    assert rejects.run("frame", lambda: 42) == 42
    assert rejects.run("frame", fail(ImageFormatError("bad step"))) is None
    assert rejects.run("features #3", fail(FeaturesRejected("shape", "wrong shape"))) is None
    assert rejects.run("features #4", fail(InferenceError("ort says no"))) is None
    assert rejects.run("features #5", fail(ZeroDivisionError("bug"))) is None
    assert dict(health.rejects) == {"image_format": 1, "shape": 1, "inference": 1, "internal_error": 1}
    assert log.lines[0] == ("warning", "skipping frame: bad step")
    assert log.lines[1] == ("warning", "rejected features #3 (shape): wrong shape")
    assert [level for level, _ in log.lines[2:]] == ["error", "error"]


def test_echoed_text_is_cut_short():
    health, log = NodeHealth("n"), Logger()
    Rejects(health, log).run("features #1", fail(FeaturesRejected("tensor_name", "x" * 10_000)))
    assert len(log.lines[0][1]) < MAX_ECHO_CHARS + 100
    assert clip_text("short") == "short" and clip_text("y" * 400).endswith("(100 more characters)")
