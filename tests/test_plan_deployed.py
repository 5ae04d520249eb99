"""plan --deployed and --refine for real: the toy's candidates run on the two-host test bed (camera, head, DDS
and tail at work at once, the two sides pinned to CPUs 0 and 1), their times and the overhead's fit in the plan.

The bed needs root and network namespaces; where they cannot be made the bed's test is skipped with the reason.
"""

import json
import subprocess
import sys

import pytest

from splitcomp_tools import plan
from splitcomp_tools.demo.models import DEMO_LABELS, DEMO_MODEL
from splitcomp_tools.run.testbed import why_unavailable

MODEL_ARGS = [str(DEMO_MODEL), "--labels", str(DEMO_LABELS), "--crop", "128", "--images", "generator"]
SHORT = ["--count", "24", "--agreement", "0.8", "--timing-frames", "4", "--video-codecs", "none", "--quiet"]
REASON = why_unavailable()


def plan_cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "splitcomp_tools.plan", *MODEL_ARGS, *SHORT, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--deployed", "--robot-cpus", "4096"], "--robot-cpus 4096: this machine has no CPU 4096"),
        (["--edge-cpus", "0"], "--edge-cpus pins the runs of --deployed or --refine"),
        (["--deployed", "--timing-rate", "0"], "run at the camera's --timing-rate"),
        (["--deployed", "loopback", "--refine"], "not with --deployed loopback"),
        (["--refine", "1"], "--refine measures 2 to 10 candidates"),
        (["--deployed", "--deployed-link", "0"], "--deployed-link must be above 0"),
        (["--deployed", "--profile-device", "profile.json"], "not with --profile-device"),
    ],
)
def test_a_bad_pinning_or_deployment_is_one_error_line(args, problem, tmp_path, capsys):
    args = [str(tmp_path / a) if a == "profile.json" else a for a in args]
    code = plan.main(
        [*MODEL_ARGS, *SHORT, *args, "--json", str(tmp_path / "plan.json"), "--work", str(tmp_path / "work")]
    )
    stderr = capsys.readouterr().err
    assert code == 2 and problem in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing made: no plan, no work folder, no profile


@pytest.mark.slow
@pytest.mark.skipif(REASON is not None, reason=f"no test bed here: {REASON}")
def test_the_toys_candidates_measured_on_the_bed_and_refined_by_measurement(tmp_path):
    result = tmp_path / "plan.json"
    bed = ["--deployed", "bed", "--robot-cpus", "0", "--edge-cpus", "1", "--deployed-block", "2"]
    bed += ["--deployed-rounds", "1", "--refine", "2", "--link-burst", "1600", "--bandwidths", "100"]
    run = plan_cli(*bed, "--json", str(result), "--work", str(tmp_path / "work"))
    assert run.returncode == 0, run.stderr[-3000:]
    plan = json.loads(result.read_text())
    assert "the test bed at 100 Mbit/s" in plan["stage_times"] and "robot CPUs 0, edge CPUs 1" in plan["stage_times"]
    assert "measured as deployed, on the test bed" in run.stdout and "head alone" in run.stdout
    candidates = plan["candidates"]
    ran = [c for c in candidates if c["failed"] is None]
    assert len(candidates) == 5 and len(ran) >= 2  # a failed candidate stays in the plan, marked
    for c in ran:  # deployed times beside the times alone, both positive
        assert c["head_total_ms"] > 0 and c["tail_total_ms"] > 0 and c["head_total_alone_ms"] > 0
    overhead = plan["transport_overhead"]
    assert overhead["fitted"] and overhead["samples"] == len(ran) and overhead["intercept_ms"] >= 0
    assert (
        overhead["max_residual_ms"] >= overhead["rms_ms"] >= 0
        and plan["transport_overhead_ms"] == overhead["intercept_ms"]
    )
    refined = plan["refined"]["100"]  # one rate: each refined rate is one more run on the bed
    assert refined["pick"] == plan["best"]["100"] and refined["margin_ms"] > 0
    if refined["measured_ms"]:  # measured where too close to call: the pick is the fastest measured
        answered = {cut: ms for cut, ms in refined["measured_ms"].items() if ms is not None}
        assert refined["pick"] == min(answered, key=answered.__getitem__)
