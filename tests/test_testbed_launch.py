"""The README's "Running it on a robot and an edge server", walked on the two-host test bed (issue 17).

The robot launch (robot.launch.py bundle:=... namespace:=robot1 camera_topic:=/camera/color/image_raw)
runs in the bed's robot namespace next to a camera driver started by hand (image_source, `ros2 run`
with a remap, as a driver publishes outside the robot's namespace), the edge launch (edge.launch.py
bundle:=... namespace:=robot1) in the edge namespace, over a shaped link, from a shell that never
sourced scripts/env.sh. Where `ros2` and launch_ros exist
the sides are real `ros2 launch` commands; elsewhere (launch is not on PyPI) each side starts the very
processes its launch file would (read from it by launch_model: executables, names, namespace, parameter
files and parameters) in the environment the file's dds_profile.apply_in_launch builds.

Checked, as a user would find them: discovery across the link (the edge hears the robot's results,
`topic echo` on the namespaced topic), the profile (every node, the driver too, carries the bed's
UDP-only profile, kept by the launch rather than replaced by the installed one), the UDP-only transport (the features
crossed the robot's shaped veth), and `param set` from the edge reaching the robot's namespaced head.
Needs root and network namespaces; skipped elsewhere with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import launch_model
import pytest
from ament_index_python.packages import get_package_share_directory

from splitcomp_ros import dds_profile
from splitcomp_tools.run.local_launch import executable_path, ros_arguments
from splitcomp_tools.run.testbed import Testbed, why_unavailable

ROOT = pathlib.Path(__file__).resolve().parents[1]
REASON = why_unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no test bed here: {REASON}")
NAMESPACE = "robot1"
CAMERA_TOPIC = "/camera/color/image_raw"  # where a camera driver publishes, outside the robot's namespace
RATE_MBPS = 20.0
REAL_LAUNCH = shutil.which("ros2") is not None and importlib.util.find_spec("launch_ros") is not None
ROS = [sys.executable, "-m", "splitcomp_tools.ros"]  # the venv's `ros2 topic echo` / `ros2 param set`


def launch_arguments(bundle: pathlib.Path) -> dict[str, dict[str, str]]:
    """The README's two commands, the robot's pointed at the camera driver's topic."""
    common = {"bundle": str(bundle), "namespace": NAMESPACE}
    return {"robot": {**common, "camera_topic": CAMERA_TOPIC}, "edge": common}


def camera_driver_command() -> list[str]:
    """`ros2 run splitcomp_tools image_source --ros-args -r image_raw:=/camera/color/image_raw`: a driver by hand."""
    remap = ["-r", f"image_raw:={CAMERA_TOPIC}"]
    return [sys.executable, str(executable_path("splitcomp_tools", "image_source")), *ros_arguments({}), *remap]


LAUNCH_FILES = {"robot": "robot.launch.py", "edge": "edge.launch.py"}


def side_commands(side: str, arguments: dict[str, str]) -> list[list[str]]:
    """What the side runs: `ros2 launch ...` where it exists, else each process its launch file starts."""
    if REAL_LAUNCH:
        return [["ros2", "launch", "splitcomp_tools", LAUNCH_FILES[side], *(f"{k}:={v}" for k, v in arguments.items())]]
    share = {"splitcomp_tools": pathlib.Path(get_package_share_directory("splitcomp_tools"))}
    processes, opaque = launch_model.processes(ROOT / "launch" / LAUNCH_FILES[side], arguments, share)
    assert opaque == ["apply_in_launch"], f"{LAUNCH_FILES[side]} runs {opaque}; this test models apply_in_launch only"
    commands = []
    for process in processes:
        assert len(process.params_files) <= 1 and not process.arguments, process
        files = process.params_files[0] if process.params_files else None
        commands.append(
            [
                sys.executable,
                str(executable_path(process.package, process.executable)),
                *ros_arguments(process.params, files),
                *process.ros_args(),
            ]
        )
    return commands


def node_pids(started: list[subprocess.Popen]) -> dict[str, int]:
    """executable name -> PID of each node: the processes themselves, or a `ros2 launch`'s children."""
    pids = {}
    for process in started:
        candidates = [process.pid]
        children = pathlib.Path(f"/proc/{process.pid}/task/{process.pid}/children")
        if REAL_LAUNCH and children.exists():
            candidates = [int(p) for p in children.read_text().split()]
        for pid in candidates:
            argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            script = next((pathlib.Path(a.decode()).name for a in argv if b"/lib/splitcomp_" in a), None)
            if script:
                pids[script] = pid
    return pids


def environ_of(pid: int) -> dict[str, str]:
    return dict(v.split("=", 1) for v in pathlib.Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)


def sent_bytes(stats: str) -> int:
    return int(re.search(r"Sent (\d+) bytes", stats).group(1))


def test_robot_and_edge_launched_in_two_namespaces_find_each_other_over_the_shaped_link(tiny_bundle, tmp_path):
    user_shell = dds_profile.without_profile(os.environ)  # ROS and the workspace sourced, scripts/env.sh not
    arguments = launch_arguments(tiny_bundle.path)
    with Testbed(RATE_MBPS) as bed:
        bed_shell = bed.ros_env(user_shell)  # what a shell in the bed has: its UDP-only profile, subnet discovery
        env = dds_profile.launch_environment(bed_shell)  # what apply_in_launch gives the nodes from that shell
        bed_profile = str(pathlib.Path(bed.workdir) / "fastdds.xml")
        variable = dds_profile.profile_variable(dds_profile.ros_distribution(bed_shell))
        assert env == bed_shell and env[variable] == bed_profile  # the launch keeps the bed's profile
        env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
        started: dict[str, list[subprocess.Popen]] = {}
        logs = []
        for side in ("edge", "robot"):
            for i, command in enumerate(side_commands(side, arguments[side])):
                log = (tmp_path / f"{side}_{i}.log").open("w")
                logs.append(log)
                launch_env = env if not REAL_LAUNCH else bed_shell  # a real launch builds it itself
                started.setdefault(side, []).append(
                    bed.run_in(side, command, env=launch_env, stdout=log, stderr=subprocess.STDOUT)
                )
        driver_log = (tmp_path / "camera_driver.log").open("w")
        logs.append(driver_log)
        driver = bed.run_in(
            "robot", camera_driver_command(), env=bed_shell, stdout=driver_log, stderr=subprocess.STDOUT
        )
        try:
            echo = bed.run_in(
                "edge",
                [*ROS, "--timeout", "60", "topic", "echo", f"/{NAMESPACE}/splitcomp/classification", "--count", "5"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            output, _ = echo.communicate(timeout=120)
            assert echo.returncode == 0 and output.count("feature_bytes:") == 5, output + read_logs(tmp_path)
            before = int(re.findall(r"feature_bytes: (\d+)", output)[-1])

            pids = {side: node_pids(started[side]) for side in started}
            assert set(pids["robot"]) == {"head_node"} and set(pids["edge"]) == {"tail_node"}, pids
            pids["robot"]["camera driver"] = driver.pid  # by hand: the shell's profile, which the bed exported
            for side, nodes in pids.items():
                for name, pid in nodes.items():
                    assert environ_of(pid).get(variable) == bed_profile, f"{side} {name} lost the bed's profile"

            assert sent_bytes(bed.qdisc_stats("robot")) > 5 * before  # the features crossed the shaped veth

            answer = subprocess.run(
                bed.command("edge", [*ROS, "param", "set", f"/{NAMESPACE}/head_node", "bits", "2"]),
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert answer.stdout.strip() == "Set parameter successful", answer.stdout + answer.stderr
            after = wait_for_feature_bytes(bed, env, lambda n: n < before)
            assert after * 2 <= before + 64, (before, after)  # 2 bits instead of the bundle's 4 or 8
        finally:
            for log in logs:
                log.close()


def wait_for_feature_bytes(bed: Testbed, env: dict, done, timeout: float = 30.0) -> int:
    """feature_bytes of the first classification the edge hears that satisfies `done`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        echo = subprocess.run(
            bed.command("edge", [*ROS, "topic", "echo", f"/{NAMESPACE}/splitcomp/classification", "--count", "1"]),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        found = [int(n) for n in re.findall(r"feature_bytes: (\d+)", echo.stdout)]
        if found and done(found[-1]):
            return found[-1]
    raise AssertionError(f"no classification with the new feature_bytes within {timeout:g} s")


def read_logs(folder: pathlib.Path) -> str:
    return "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(folder.glob("*.log")))
