"""Real node processes and a probe node for the integration tests.

Nodes run as the installed executables (what `ros2 run` would start), each in its own process;
the probe lives in the test process and talks to them over DDS like any other node would.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable

import rclpy
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from splitcomp_tools.run import local_launch


class NodeProcess:
    """An installed node in its own process, logging to a file the test prints on failure."""

    def __init__(
        self,
        package: str,
        name: str,
        params: dict,
        log_dir: pathlib.Path,
        namespace: str = "",
        params_file: str | None = None,
        ros_args: list[str] | None = None,
    ) -> None:
        """`params_file` and `ros_args` (remaps) as a launch file gives them (tests/support/launch_model.Process)."""
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - open while the node runs
        remap = ["-r", f"__ns:={namespace}"] if namespace else []
        self._node = local_launch.NodeProcess(
            package, name, params, log=self._log, params_file=params_file, extra_args=[*remap, *(ros_args or [])]
        )
        self.process = self._node.process

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout: float = 10.0) -> int:
        code = self._node.stop(timeout)
        self._log.close()
        return code


class Probe:
    """A node in the test process with its own context, spun on demand."""

    def __init__(self, name: str = "probe") -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.05)
        return True

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def wait_for_subscriber(self, publisher, timeout: float = 20.0) -> bool:
        return self.spin_until(lambda: publisher.get_subscription_count() > 0, timeout)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


PARAMETER_VALUES = {
    bool: ("bool_value", ParameterType.PARAMETER_BOOL),
    float: ("double_value", ParameterType.PARAMETER_DOUBLE),
    int: ("integer_value", ParameterType.PARAMETER_INTEGER),
    str: ("string_value", ParameterType.PARAMETER_STRING),
}


def set_parameter(probe: Probe, client, name: str, value):
    """`ros2 param set` through a node's set_parameters service (`client`); returns its SetParametersResult."""
    field, kind = PARAMETER_VALUES[type(value)]
    request = SetParameters.Request(
        parameters=[Parameter(name=name, value=ParameterValue(type=kind, **{field: value}))]
    )
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(request)
    assert probe.spin_until(future.done, 10.0)
    return future.result().results[0]


def diagnostics_values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}
