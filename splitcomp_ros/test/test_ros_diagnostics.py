"""NodeHealth turns counters and timings into a DiagnosticStatus with the right level."""

from diagnostic_msgs.msg import DiagnosticStatus

from splitcomp_ros.diagnostics import NodeHealth


def values(status):
    return {kv.key: kv.value for kv in status.values}


def test_no_input_is_a_warning():
    status = NodeHealth("n").to_status("host")
    assert status.level == DiagnosticStatus.WARN and "no input" in status.message


def test_healthy_node_reports_counts_and_percentiles():
    health = NodeHealth("splitcomp: tail_node")
    health.fields["provider"] = "CPUExecutionProvider"
    for ms in range(1, 101):
        health.received()
        health.published()
        health.stages.add("tail_ms", ms)
    status = health.to_status("host")
    v = values(status)
    assert status.level == DiagnosticStatus.OK
    assert (v["frames_in"], v["frames_out"], v["rejected"]) == ("100", "100", "0")
    assert float(v["tail_ms.p50"]) == 50.5 and float(v["tail_ms.p95"]) > 90
    assert v["provider"] == "CPUExecutionProvider" and status.hardware_id == "host"


def test_sustained_rejects_are_an_error_and_counted_by_reason():
    health = NodeHealth("n")
    for _ in range(20):
        health.received()
        health.rejected("codec")
    health.rejected("model_id")
    status = health.to_status()
    v = values(status)
    assert status.level == DiagnosticStatus.ERROR
    assert (v["rejected"], v["rejected.codec"], v["rejected.model_id"]) == ("21", "20", "1")


def test_a_nodes_own_warning_makes_the_level_warn_until_it_is_cleared():
    health = NodeHealth("n")
    for _ in range(20):
        health.received()
        health.published()
    assert health.to_status().level == DiagnosticStatus.OK
    health.warnings["subscribers"] = "no subscriber on splitcomp/features"
    status = health.to_status()
    assert status.level == DiagnosticStatus.WARN and status.message == "no subscriber on splitcomp/features"
    health.warnings.clear()
    assert health.to_status().level == DiagnosticStatus.OK
