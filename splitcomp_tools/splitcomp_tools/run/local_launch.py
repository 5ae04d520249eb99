"""Start installed node executables as separate processes, as `ros2 launch` would.

The ros2 CLI and launch are not on PyPI, so the demo, the pipeline benchmark and the tests start
`<prefix>/lib/<package>/<executable>` (exactly what `ros2 run` starts) with `--ros-args`, in the
environment the launch files give their nodes (dds_profile.launch_environment: this process's, plus
the installed Fast DDS profile unless one is exported).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from ament_index_python.packages import PackageNotFoundError, get_package_prefix

from splitcomp_core.errors import SplitcompError
from splitcomp_ros.dds_profile import launch_environment


def executable_path(package: str, executable: str) -> Path:
    try:
        path = Path(get_package_prefix(package)) / "lib" / package / executable
    except PackageNotFoundError as exc:
        raise SplitcompError(
            f"package {package} is not installed; run `make build` and `source scripts/env.sh`"
        ) from exc
    if not path.is_file():
        raise SplitcompError(f"{path} is missing; run `make build`")
    return path


def ros_arguments(params: Mapping[str, object], params_file: str | None = None) -> list[str]:
    """`--ros-args -p name:=value ...` with lists and booleans in ROS syntax."""
    args = ["--ros-args"]
    if params_file:
        args += ["--params-file", str(params_file)]
    for key, value in params.items():
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, (list, tuple)):
            value = "[" + ",".join(str(v) for v in value) + "]"
        args += ["-p", f"{key}:={value}"]
    return args


class NodeProcess:
    """One node in its own process; stop() sends SIGINT like Ctrl-C in a launch terminal."""

    def __init__(
        self,
        package: str,
        executable: str,
        params: Mapping[str, object],
        log: IO | None = None,
        params_file: str | None = None,
        extra_args: Sequence[str] = (),
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`prefix` goes before the command, e.g. the test bed's `ip netns exec ...` (it must exec, keeping the PID).

        `env` is the node's whole environment; by default the one a launch file would give it.
        """
        self.name = executable
        cmd = [
            *prefix,
            sys.executable,
            str(executable_path(package, executable)),
            *ros_arguments(params, params_file),
            *extra_args,
        ]
        self.process = subprocess.Popen(
            cmd,
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else launch_environment(),
        )

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> int:
        """SIGKILL, as a crash or `kill -9` would end it: no clean-up, no goodbye to its DDS peers."""
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()

    def stop(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
