"""The Fast DDS profile reaches the nodes a launch starts, whatever the shell sourced (issue 17).

dds_profile decides which variable and which file; the launch files run its apply_in_launch, local_launch
and `bench restarts --environment launch` its launch_environment. The node test starts a real image_source
in that environment, built from this one without scripts/env.sh's profile, and a real subscriber: the
process carries the profile (its /proc/PID/environ) and 640x480 rgb8 frames (900 KB) cross by shared
memory, through the profile's 16 MiB segment, at 30 fps without one lost. Without the profile about a
third of them were lost (README, Troubleshooting).
"""

import os
import pathlib
import re
import subprocess
import sys
import time
import types

import pytest
from rclpy.qos import qos_profile_sensor_data
from ros_harness import Probe
from sensor_msgs.msg import Image

from splitcomp_ros import dds_profile
from splitcomp_ros.dds_profile import PROFILE_VARIABLES, ProfileError, launch_environment, without_profile
from splitcomp_tools.run import local_launch
from splitcomp_tools.run.testbed import Bed

ROOT = pathlib.Path(__file__).resolve().parents[1]
FASTRTPS, FASTDDS = PROFILE_VARIABLES
SWITCH = dds_profile.SWITCH
SEGMENT_BYTES = 16 * 1024 * 1024  # config/fastdds.xml's segment_size; Fast DDS's default is 512 KB
SHM_PREFIXES = ("/dev/shm/fastrtps_", "/dev/shm/fastdds_")


@pytest.mark.parametrize(
    ("distribution", "variable"),
    [("humble", FASTRTPS), ("iron", FASTRTPS), ("jazzy", FASTRTPS), ("kilted", FASTDDS), ("rolling", FASTDDS)],
)
def test_fast_dds_2_distributions_read_fastrtps_and_later_ones_fastdds(distribution, variable):
    assert dds_profile.profile_variable(distribution) == variable


def test_ros_distro_decides_and_without_it_the_venv_wheels_do():
    assert dds_profile.ros_distribution({"ROS_DISTRO": "humble"}) == "humble"
    expected = os.environ.get("ROS_DISTRO") or os.environ.get("SPLITCOMP_PYPI_ROS", "jazzy")
    if os.environ.get("ROS_DISTRO"):  # a system ROS: its own rclpy need not be a PyPI wheel
        assert dds_profile.ros_distribution(os.environ) == expected
    else:
        assert dds_profile.ros_distribution({}) == dds_profile.venv_distribution() == expected


def test_the_installed_profile_is_the_repository_one():
    installed = dds_profile.installed_profile()
    assert installed.parts[-4:] == ("share", "splitcomp_ros", "config", "fastdds.xml")
    assert installed.read_bytes() == (ROOT / "config" / "fastdds.xml").read_bytes()


def test_a_launch_adds_the_installed_profile_under_the_distributions_variable():
    env = launch_environment({"ROS_DISTRO": "kilted", "PATH": "/bin"})
    assert env == {"ROS_DISTRO": "kilted", "PATH": "/bin", FASTDDS: str(dds_profile.installed_profile())}
    assert launch_environment({"ROS_DISTRO": "humble"})[FASTRTPS] == str(dds_profile.installed_profile())


@pytest.mark.parametrize("variable", PROFILE_VARIABLES)
@pytest.mark.parametrize("choice", ["auto", "none", "config/head.yaml"])
def test_a_profile_the_user_exported_is_never_overridden(variable, choice):
    """Under either name (the test bed exports its UDP-only profile; a Docker image exports the installed one)."""
    exported = {"ROS_DISTRO": "jazzy", variable: "/their/udp_only.xml"}
    assert dds_profile.profile_setting(exported, choice) == {}
    assert launch_environment(exported, choice) == exported


def test_the_argument_opts_out_or_points_elsewhere(tmp_path):
    profile = tmp_path / "mine.xml"
    profile.write_text("<profiles/>")
    for off in ("none", "off"):  # the nodes the launch starts must not take the installed one themselves
        assert dds_profile.profile_setting({"ROS_DISTRO": "jazzy"}, off) == {SWITCH: "none"}
    assert dds_profile.profile_setting({"ROS_DISTRO": "jazzy"}, str(profile)) == {FASTRTPS: str(profile)}
    with pytest.raises(ProfileError, match=r"dds_profile:=.*missing\.xml.* is not a file"):
        dds_profile.profile_setting({"ROS_DISTRO": "jazzy"}, str(tmp_path / "missing.xml"))


def test_an_empty_variable_is_not_a_profile():
    env = launch_environment({"ROS_DISTRO": "jazzy", FASTRTPS: ""})
    assert env[FASTRTPS] == str(dds_profile.installed_profile())


def test_apply_in_launch_changes_the_launch_environment_as_launch_environment_does(tmp_path):
    """The OpaqueFunction body reads two attributes of launch's LaunchContext (launch is not on PyPI; the
    launch files were run with ros2/launch's jazzy branch when this was written): environment, which is the
    launch process's os.environ, and launch_configurations."""
    for environment, configurations in (
        ({"ROS_DISTRO": "jazzy"}, {}),
        ({"ROS_DISTRO": "kilted"}, {"dds_profile": "auto"}),
        ({"ROS_DISTRO": "jazzy"}, {"dds_profile": "none"}),
        ({"ROS_DISTRO": "jazzy", FASTDDS: "/bed.xml"}, {"dds_profile": "auto"}),
    ):
        context = types.SimpleNamespace(environment=dict(environment), launch_configurations=configurations)
        assert dds_profile.apply_in_launch(context) is None
        assert context.environment == launch_environment(environment, configurations.get("dds_profile", "auto"))


def test_a_node_without_an_exported_profile_takes_the_installed_one_and_says_so():
    env = {"ROS_DISTRO": "jazzy"}
    chosen = dds_profile.apply_in_process(env)
    installed = str(dds_profile.installed_profile())
    assert env == {"ROS_DISTRO": "jazzy", FASTRTPS: installed} and not chosen.problem
    assert chosen.line == f"Fast DDS profile: {FASTRTPS}={installed} (the installed one; {SWITCH}=none turns it off)"
    env = {"ROS_DISTRO": "kilted"}
    dds_profile.apply_in_process(env)
    assert env == {"ROS_DISTRO": "kilted", FASTDDS: installed}


@pytest.mark.parametrize("variable", PROFILE_VARIABLES)
def test_a_node_keeps_an_exported_profile(variable, tmp_path):
    mine = tmp_path / "mine.xml"
    mine.write_text("<profiles/>")
    env = {"ROS_DISTRO": "jazzy", variable: str(mine), SWITCH: "none"}
    chosen = dds_profile.apply_in_process(env)
    assert env == {"ROS_DISTRO": "jazzy", variable: str(mine), SWITCH: "none"}
    assert chosen == (f"Fast DDS profile: {variable}={mine} (exported)", False)


def test_the_switch_turns_it_off_or_points_elsewhere(tmp_path):
    mine = tmp_path / "mine.xml"
    mine.write_text("<profiles/>")
    for off in ("none", "off"):
        env = {"ROS_DISTRO": "jazzy", SWITCH: off}
        chosen = dds_profile.apply_in_process(env)
        assert env == {"ROS_DISTRO": "jazzy", SWITCH: "none"}
        assert chosen == (f"Fast DDS profile: none (Fast DDS defaults) ({SWITCH}=none)", False)
    env = {"ROS_DISTRO": "jazzy", SWITCH: str(mine)}
    assert not dds_profile.apply_in_process(env).problem and env[FASTRTPS] == str(mine)
    # a launch's auto means the same as a node's: the switch, else the installed profile
    assert launch_environment({"ROS_DISTRO": "jazzy", SWITCH: str(mine)})[FASTRTPS] == str(mine)
    launched = launch_environment({"ROS_DISTRO": "jazzy"}, "none")  # dds_profile:=none
    assert dds_profile.apply_in_process(launched).line.startswith("Fast DDS profile: none (Fast DDS defaults)")
    assert not set(launched) & set(PROFILE_VARIABLES)


def test_a_profile_file_that_does_not_exist_is_one_line_and_fast_dds_defaults(tmp_path):
    missing = tmp_path / "missing.xml"
    env = {"ROS_DISTRO": "jazzy", SWITCH: str(missing)}
    line, problem = dds_profile.apply_in_process(env)
    assert problem and env == {"ROS_DISTRO": "jazzy", SWITCH: str(missing)}
    assert line.startswith(f"Fast DDS profile: {SWITCH}={missing}: {missing} is not a file")
    assert line.endswith("; running with Fast DDS defaults") and "\n" not in line
    for variable in PROFILE_VARIABLES:  # exported: never replaced, but dropped, so Fast DDS logs no error of its own
        env = {"ROS_DISTRO": "jazzy", variable: str(missing)}
        line, problem = dds_profile.apply_in_process(env)
        assert problem and env == {"ROS_DISTRO": "jazzy"}
        assert line.startswith(f"Fast DDS profile: {variable}={missing} is not a file; running with Fast DDS defaults")


def test_env_sh_names_the_same_fast_dds_2_distributions():
    """scripts/env.sh (bash, for shells) must agree with dds_profile on which distributions read FASTRTPS_..."""
    text = (ROOT / "scripts" / "env.sh").read_text()
    case = re.search(r"^\s*([\w |]+)\)\s*\n\s*export FASTRTPS_DEFAULT_PROFILES_FILE", text, re.M)
    assert case, "env.sh no longer sets FASTRTPS_DEFAULT_PROFILES_FILE in a case branch"
    assert tuple(d.strip() for d in case.group(1).split("|")) == dds_profile.FAST_DDS_2_DISTRIBUTIONS


def shm_segments(pid: int) -> dict[str, int]:
    """Fast DDS shared-memory files the process maps, with the bytes it maps of each.

    Fast DDS 2 (Humble, Jazzy) names them /dev/shm/fastrtps_*, Fast DDS 3 (Kilted) /dev/shm/fastdds_*.
    """
    sizes: dict[str, int] = {}
    for line in pathlib.Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5].startswith(SHM_PREFIXES) and "port" not in fields[5]:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            sizes[fields[5]] = sizes.get(fields[5], 0) + end - start
    return sizes


def test_a_node_started_in_the_launch_environment_carries_the_profile_and_camera_frames_cross_by_shared_memory(
    tmp_path,
):
    frames = 150  # 5 s at 30 fps
    env = launch_environment(without_profile(os.environ))  # a shell that never sourced scripts/env.sh, then launch
    probe = Probe("deploy_camera_probe")
    received: list[int] = []
    probe.node.create_subscription(Image, "image_raw", lambda m: received.append(len(m.data)), qos_profile_sensor_data)
    before = set(shm_segments(os.getpid()))
    log = (tmp_path / "image_source.log").open("w")
    source = local_launch.NodeProcess(
        "splitcomp_tools",
        "image_source",
        {"rate_hz": 30.0, "count": frames, "preload": 30, "wait_for_subscriber": True},
        log=log,
        env=env,
    )
    try:
        assert probe.spin_until(lambda: len(received) >= 30, 60.0), "no frames arrived"
        environ = dict(
            v.split("=", 1) for v in pathlib.Path(f"/proc/{source.process.pid}/environ").read_text().split("\0") if v
        )
        variable = dds_profile.profile_variable(dds_profile.ros_distribution(environ))
        assert environ.get(variable) == str(dds_profile.installed_profile())
        theirs = {name: size for name, size in shm_segments(source.process.pid).items() if name not in before}
        mine = shm_segments(os.getpid())
        probe.spin_until(lambda: len(received) >= frames or not source.running(), 30.0)
        probe.spin_for(0.5)
        assert received == [640 * 480 * 3] * frames, f"{len(received)} of {frames} frames arrived"
        # The source's own segment is the profile's 16 MiB one, and the subscriber (this process) maps it: the
        # frames came through shared memory, not fragmented UDP.
        crossed = [name for name, size in theirs.items() if size >= SEGMENT_BYTES and name in mine]
        assert crossed, f"image_source's segments {theirs}; this process maps {mine}"
    finally:
        probe.close()
        time.sleep(0.1)
        source.stop()
        log.close()


def test_bench_restarts_launch_environment_is_what_the_launch_files_give(monkeypatch):
    from splitcomp_tools.run import bench_restarts

    for name in PROFILE_VARIABLES:  # _environment changes this process's profile variables: put them back after
        monkeypatch.setenv(name, os.environ[name]) if name in os.environ else monkeypatch.delenv(name, raising=False)
    shell = dict(os.environ)
    assert bench_restarts._environment("env.sh", None) == shell
    assert bench_restarts._environment("launch", "none") == {**without_profile(shell), SWITCH: "none"}
    assert bench_restarts._environment("env.sh", "none") == {**without_profile(shell), SWITCH: "none"}
    assert bench_restarts._environment("launch", None) == launch_environment(without_profile(shell))
    assert {k: v for k, v in os.environ.items() if k in PROFILE_VARIABLES} == dds_profile.profile_setting(
        without_profile(shell)
    )  # the probe in this process gets the same profile as the nodes
    for name in PROFILE_VARIABLES:  # a shell without env.sh: the nodes take the installed profile, so does the probe
        monkeypatch.delenv(name, raising=False)
    assert not set(bench_restarts._environment("env.sh", None)) & set(PROFILE_VARIABLES)
    assert {k: v for k, v in os.environ.items() if k in PROFILE_VARIABLES} == dds_profile.profile_setting(
        without_profile(shell)
    )


def test_bench_restarts_refuses_a_missing_profile_before_starting_anything(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "splitcomp_tools.bench",
            "restarts",
            "--environment",
            "launch",
            "--profile",
            str(tmp_path / "missing.xml"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: --profile "), result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("distribution", "variable"), [("humble", FASTRTPS), ("jazzy", FASTRTPS), ("kilted", FASTDDS)])
def test_the_test_bed_exports_its_profile_where_its_distribution_looks_and_a_launch_keeps_it(distribution, variable):
    """From a shell without scripts/env.sh the bed used to pick FASTRTPS_... whatever the distribution: on Kilted,
    Fast DDS 3 ignored it and a launch in the bed kept that dead name, so the nodes ran without the bed's profile."""
    bed = Bed("sc0", {}, {}, {}, {}, "/bed", 7, 10.0)  # names only: nothing is built
    env = bed.ros_env({"ROS_DISTRO": distribution, FASTRTPS: "/from/env.sh.xml", FASTDDS: "/other.xml"})
    assert {k: v for k, v in env.items() if k in PROFILE_VARIABLES} == {variable: "/bed/fastdds.xml"}
    assert launch_environment(env) == env


def _wait_for(path: pathlib.Path, text: str, node: local_launch.NodeProcess, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and node.running():
        log = path.read_text()
        if text in log:
            return log
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in the node's log:\n{path.read_text()}")


@pytest.mark.slow
@pytest.mark.parametrize("switch", [None, "none", "missing"])
def test_a_tail_node_started_by_hand_without_a_profile_takes_the_installed_one_unless_told_otherwise(
    tiny_bundle, tmp_path, switch
):
    """`ros2 run splitcomp_tail_node tail_node` from a shell without scripts/env.sh (issue 27): the process starts
    without the variable (its /proc/PID/environ) and still maps the profile's 16 MiB segment, and says so once;
    SPLITCOMP_DDS_PROFILE=none keeps Fast DDS's defaults; a file that does not exist is one line, and it serves."""
    env = without_profile(os.environ)
    missing = tmp_path / "missing.xml"
    if switch is not None:
        env[SWITCH] = str(missing) if switch == "missing" else switch
    path = tmp_path / "tail.log"
    with path.open("w") as log:
        tail = local_launch.NodeProcess(
            "splitcomp_tail_node", "tail_node", {"bundle": str(tiny_bundle.path)}, log=log, env=env
        )
        try:
            text = _wait_for(path, "tail ready:", tail)
            started_with = pathlib.Path(f"/proc/{tail.process.pid}/environ").read_text().split("\0")
            segments = shm_segments(tail.process.pid)
            assert tail.running()
        finally:
            tail.stop()
    assert not [v for v in started_with if v.split("=", 1)[0] in PROFILE_VARIABLES]
    (line,) = [line for line in text.splitlines() if "Fast DDS profile" in line]
    big = [name for name, size in segments.items() if size >= SEGMENT_BYTES]
    if switch is None:
        variable = dds_profile.profile_variable(dds_profile.ros_distribution(env))
        assert line.startswith("[INFO]") and f"{variable}={dds_profile.installed_profile()}" in line, line
        assert big, f"tail_node maps {segments}, none of them the profile's segment"
    else:
        assert not big and segments, f"tail_node maps {segments}: not Fast DDS's default segment"
        if switch == "none":
            assert line.startswith("[INFO]") and "none (Fast DDS defaults)" in line, line
        else:
            assert line.startswith("[WARN]") and f"{missing} is not a file" in line, line
            assert line.endswith("running with Fast DDS defaults") and "XMLPARSER" not in text, text
