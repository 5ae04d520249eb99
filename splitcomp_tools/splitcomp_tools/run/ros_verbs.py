"""`topic echo` and `param set` over rclpy, as the ros2 command line does them (the `ros` command's verbs).

`echo` prints each message as `ros2 topic echo` would (YAML, then `---`); `set_parameter` takes a value
in the same YAML syntax (`2`, `2.5`, `true`, `zstd`, `[cuda, cpu]`) and answers as `ros2 param set` does.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import rclpy
import yaml
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter

from splitcomp_core.errors import SplitcompError
from splitcomp_ros.echo import message_to_yaml


def message_type(node: Node, topic: str, timeout: float) -> Any:
    """The message class published on `topic`, once the graph shows a publisher of it."""
    name = node.resolve_topic_name(topic)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        types = dict(node.get_topic_names_and_types()).get(name)
        if types:
            package, _, kind = types[0].split("/")
            return getattr(importlib.import_module(f"{package}.msg"), kind)
        rclpy.spin_once(node, timeout_sec=0.1)
    raise SplitcompError(f"no publisher on {name} within {timeout:g} s; is the node running (same ROS_DOMAIN_ID)?")


def echo(node: Node, topic: str, count: int, timeout: float) -> None:
    kind = message_type(node, topic, timeout)
    seen = [0]

    def show(msg: Any) -> None:
        print(message_to_yaml(msg), flush=True)
        seen[0] += 1

    node.create_subscription(kind, topic, show, 10)
    while rclpy.ok() and (count == 0 or seen[0] < count):
        rclpy.spin_once(node, timeout_sec=0.1)


def set_parameter(node: Node, target: str, name: str, text: str, timeout: float) -> str:
    """Ask `target` to set `name` to the YAML value `text`; the answer as `ros2 param set` words it."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SplitcompError(f"value {text!r} is not YAML: {exc}") from None
    client: Any = node.create_client(SetParameters, f"{target.rstrip('/')}/set_parameters")  # rclpy types it by srv
    if not client.wait_for_service(timeout_sec=timeout):
        raise SplitcompError(f"no node {target} answers within {timeout:g} s (same ROS_DOMAIN_ID?)")
    try:
        parameter = Parameter(name, value=value).to_parameter_msg()
    except TypeError as exc:
        raise SplitcompError(f"value {text!r}: {exc}") from None
    future = client.call_async(SetParameters.Request(parameters=[parameter]))
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    response = future.result() if future.done() else None
    if response is None:
        raise SplitcompError(f"{target} did not answer within {timeout:g} s")
    result = response.results[0]
    if not result.successful:
        raise SplitcompError(f"setting {name} failed: {result.reason}")
    return "Set parameter successful"
