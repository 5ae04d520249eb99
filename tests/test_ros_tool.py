"""`python -m splitcomp_tools.ros`: topic echo and param set, where the ros2 command line is absent."""

import subprocess
import sys

import pytest
from ros_harness import NodeProcess

pytestmark = pytest.mark.slow  # nodes as processes over DDS: `make test-fast` leaves it out


def ros(*argv, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "splitcomp_tools.ros", "--timeout", "30", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_echo_and_param_set_on_a_running_tail(demo_bundle, tmp_path):
    tail = NodeProcess("splitcomp_tail_node", "tail_node", {"bundle": str(demo_bundle), "providers": ["cpu"]}, tmp_path)
    try:
        echoed = ros("topic", "echo", "/diagnostics", "--count", "1")
        assert echoed.returncode == 0, echoed.stderr
        assert "name: 'splitcomp: /tail_node'" in echoed.stdout and echoed.stdout.rstrip().endswith("---")
        done = ros("param", "set", "/tail_node", "top_k", "3")
        assert done.returncode == 0 and done.stdout.strip() == "Set parameter successful", done.stderr
        refused = ros("param", "set", "/tail_node", "top_k", "0")
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert refused.returncode == 2 and len(errors) == 1 and "top_k" in errors[0], refused.stderr
    finally:
        assert tail.stop() == 0, tail.log()
