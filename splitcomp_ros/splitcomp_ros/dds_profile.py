"""The Fast DDS profile splitcomp's nodes run with: which variable, which file (the one place that decides).

config/fastdds.xml (installed as share/splitcomp_ros/config/fastdds.xml) enlarges the shared-memory
segment, so 900 KB camera frames stay in shared memory, and tunes discovery, so a restarted node is back
within a second. Fast DDS reads it from an environment variable: FASTRTPS_DEFAULT_PROFILES_FILE on
Fast DDS 2 (Humble, Iron, Jazzy), FASTDDS_DEFAULT_PROFILES_FILE on Fast DDS 3 (Kilted and later, whose
rmw warns at every node start while the old name is set). The distribution is ROS_DISTRO, or where that
is unset (ROS 2 from PyPI wheels) the one the installed rclpy belongs to.

Every node's main (node_support.run_node) calls `apply_in_process` before rclpy creates its participant,
so `ros2 run` by hand gets the profile as a launch does. The launch files (through `apply_in_launch`, an
OpaqueFunction body), local_launch, `bench restarts`, the test bed and the tests ask here too. Nothing
here imports rclpy or `launch` (not on PyPI): it must import wherever a node can start. A profile the
user exported is never overridden; SPLITCOMP_DDS_PROFILE (auto, none or a file) chooses otherwise.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, NamedTuple

from splitcomp_core.errors import SplitcompError

PACKAGE = "splitcomp_ros"  # installs config/fastdds.xml in its share directory
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
SWITCH = "SPLITCOMP_DDS_PROFILE"  # auto (the default), none (or off), or a file: what `auto` means to a node
FAST_DDS_2_DISTRIBUTIONS = ("humble", "iron", "jazzy")  # every later one ships Fast DDS 3
RCLPY_MAJOR = {3: "humble", 4: "iron", 7: "jazzy", 9: "kilted"}  # rclpy's major version per distribution
DEFAULT_DISTRIBUTION = "jazzy"  # the plain ros-* wheels on PyPI (requirements/ros-jazzy.txt)
ARGUMENT = "dds_profile"  # the launch argument: auto (the installed profile), none, or a file
AUTO, NONE = "auto", "none"
OFF = (NONE, "off")
ARGUMENT_DESCRIPTION = (
    f"Fast DDS profile for the nodes: auto ({SWITCH} if set, else share/splitcomp_ros/config/fastdds.xml), "
    "none, or a file; a profile already exported in FASTRTPS_/FASTDDS_DEFAULT_PROFILES_FILE is always kept"
)


class ProfileError(SplitcompError):
    """The profile asked for does not exist; the message names the argument and the file."""


@functools.cache
def venv_distribution() -> str:
    """The ROS 2 distribution of the PyPI wheels this Python runs: a ros-<distro>-rclpy wheel, or rclpy's version."""
    for distro in (*FAST_DDS_2_DISTRIBUTIONS, "kilted", "lyrical", "rolling"):
        try:
            importlib.metadata.version(f"ros-{distro}-rclpy")
            return distro
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        major = int(importlib.metadata.version("ros-rclpy").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return DEFAULT_DISTRIBUTION
    return RCLPY_MAJOR.get(major, "rolling" if major > max(RCLPY_MAJOR) else DEFAULT_DISTRIBUTION)


def ros_distribution(environ: Mapping[str, str]) -> str:
    """ROS_DISTRO when a ROS 2 installation is sourced, else the venv's distribution."""
    return environ.get("ROS_DISTRO") or venv_distribution()


def profile_variable(distribution: str) -> str:
    """The variable this distribution's Fast DDS reads its profile from."""
    return PROFILE_VARIABLES[0] if distribution in FAST_DDS_2_DISTRIBUTIONS else PROFILE_VARIABLES[1]


def installed_profile() -> Path:
    """share/splitcomp_ros/config/fastdds.xml of the installed package (its setup.py installs it there)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(PACKAGE)) / "config" / "fastdds.xml"
    except PackageNotFoundError as exc:
        raise ProfileError(f"{PACKAGE} is not installed here; source the workspace's install/setup.bash") from exc


def exported_profile(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(variable, file) of a profile already in the environment, whichever name it uses."""
    return next(((name, environ[name]) for name in PROFILE_VARIABLES if environ.get(name)), None)


def profile_setting(environ: Mapping[str, str], choice: str = AUTO, given_as: str = f"{ARGUMENT}:=") -> dict[str, str]:
    """The variables a launch adds to `environ` for `choice`: nothing when a profile is exported.

    `auto` is SPLITCOMP_DDS_PROFILE when that is set, else the installed profile; `none` (or `off`) sets
    SPLITCOMP_DDS_PROFILE=none, so the nodes started with it keep Fast DDS's defaults instead of taking
    the installed one themselves. `given_as` names where `choice` came from in the error.
    """
    if exported_profile(environ):
        return {}
    if choice in (AUTO, "") and environ.get(SWITCH):
        choice, given_as = environ[SWITCH], f"{SWITCH}="
    if choice in OFF:
        return {SWITCH: NONE}
    path = installed_profile() if choice in (AUTO, "") else Path(choice).expanduser().absolute()
    if not path.is_file():
        raise ProfileError(
            f"{given_as}{choice}: {path} is not a file; give a Fast DDS XML profile, {AUTO} or {NONE}"
            + ("; rebuild the workspace, which installs config/fastdds.xml" if choice in (AUTO, "") else "")
        )
    return {profile_variable(ros_distribution(environ)): str(path)}


def launch_environment(environ: Mapping[str, str] | None = None, choice: str = AUTO) -> dict[str, str]:
    """The environment a launch file gives its nodes: `environ` (default: this process's) plus the profile."""
    env = dict(os.environ if environ is None else environ)
    env.update(profile_setting(env, choice))
    return env


def without_profile(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` without the profile variables and the switch: a shell with ROS and the workspace, not env.sh."""
    dropped = (*PROFILE_VARIABLES, SWITCH)
    return {k: v for k, v in (os.environ if environ is None else environ).items() if k not in dropped}


def describe(environ: Mapping[str, str]) -> str:
    """One line for logs: the variable and file in use, or that Fast DDS runs on its defaults."""
    found = exported_profile(environ)
    return f"{found[0]}={found[1]}" if found else "none (Fast DDS defaults)"


def apply_in_launch(context: Any, *args: object, **kwargs: object) -> None:
    """OpaqueFunction body for launch files: adds the profile to the environment of the nodes started after it.

    `context` is a launch.LaunchContext; its `environment` is the launch process's os.environ, which every
    process started later inherits. Logs which profile the nodes get, and warns when an exported one is
    under the name this distribution's Fast DDS does not read.
    """
    environment: MutableMapping[str, str] = context.environment
    choice = context.launch_configurations.get(ARGUMENT, AUTO)
    kept = exported_profile(environment)
    environment.update(profile_setting(environment, choice))
    logger = logging.getLogger("launch")
    how = "kept from the environment" if kept else f"{ARGUMENT}:={choice}"
    logger.info(f"Fast DDS profile of the nodes: {describe(environment)} ({how})")  # launch's handler ignores args
    wanted = profile_variable(ros_distribution(environment))
    if kept and kept[0] != wanted:
        logger.warning(f"{kept[0]} is set, but Fast DDS on {ros_distribution(environment)} reads {wanted}")


class Chosen(NamedTuple):
    """What `apply_in_process` decided, as the one line a node logs at start-up (a warning when `problem`)."""

    line: str
    problem: bool


def apply_in_process(environ: MutableMapping[str, str] | None = None) -> Chosen:
    """Give this process the profile when none is exported; call it before rclpy creates the participant.

    `environ` defaults to os.environ, which Fast DDS reads (os.environ writes through to the C environment).
    A profile file that does not exist, exported or in SPLITCOMP_DDS_PROFILE, never stops the node: the
    line says so, the node runs on Fast DDS's defaults (a missing exported file is dropped from this
    process's environment, as Fast DDS would ignore it, with a log of its own).
    """
    env = os.environ if environ is None else environ
    kept = exported_profile(env)
    if kept and not Path(kept[1]).is_file():
        del env[kept[0]]
        return Chosen(
            f"Fast DDS profile: {kept[0]}={kept[1]} is not a file; running with Fast DDS defaults "
            "(export a Fast DDS XML profile there, or unset it for the installed one)",
            True,
        )
    try:
        env.update(profile_setting(env, AUTO, f"{SWITCH}="))
    except ProfileError as exc:
        return Chosen(f"Fast DDS profile: {exc}; running with Fast DDS defaults", True)
    if kept:
        how = "exported"
    elif env.get(SWITCH):
        how = f"{SWITCH}={env[SWITCH]}"
    else:
        how = f"the installed one; {SWITCH}={NONE} turns it off"
    return Chosen(f"Fast DDS profile: {describe(env)} ({how})", False)
