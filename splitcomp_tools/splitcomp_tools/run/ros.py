"""ros: `topic echo` and `param set` as the ros2 command line does them, for where it is absent.

ROS 2 from PyPI (this project's venv) has rclpy but no `ros2` command, so monitoring and changing a
running node would need a system ROS install. This tool does the two things the README shows:

    python -m splitcomp_tools.ros topic echo splitcomp/classification [--count N]
    python -m splitcomp_tools.ros param set /head_node bits 2

`topic echo` prints each message as `ros2 topic echo` would (YAML, then `---`); `param set` takes
a value in the same YAML syntax (`2`, `2.5`, `true`, `zstd`, `[cuda, cpu]`) and prints the answer.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import rclpy
import yaml
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter

from splitcomp_core.errors import SplitcompError
from splitcomp_ros.echo import message_to_yaml
from splitcomp_tools.cli import ToolParser, float_in, int_in, run_cli

DISCOVERY_TIMEOUT_S = 10.0


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


def build_parser() -> ToolParser:
    p = ToolParser(prog="ros", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--timeout",
        type=float_in(0.0, 300.0, low_open=True),
        default=DISCOVERY_TIMEOUT_S,
        help="seconds to wait for the node or topic (default: 10)",
    )
    verbs = p.add_subparsers(dest="verb", required=True, parser_class=ToolParser)
    topic = verbs.add_parser("topic", help="topic echo TOPIC")
    topic.add_argument("action", choices=("echo",))
    topic.add_argument("topic", help="e.g. splitcomp/classification or /diagnostics")
    topic.add_argument("--count", type=int_in(0, 1_000_000), default=0, help="stop after N messages (default: never)")
    param = verbs.add_parser("param", help="param set NODE NAME VALUE")
    param.add_argument("action", choices=("set",))
    param.add_argument("node", help="e.g. /head_node")
    param.add_argument("name", help="e.g. bits")
    param.add_argument("value", help="e.g. 2, zstd, true, [cuda, cpu]")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    rclpy.init()
    node = rclpy.create_node("splitcomp_ros_cli")
    try:
        if args.verb == "topic":
            echo(node, args.topic, args.count, args.timeout)
        else:
            print(set_parameter(node, args.node, args.name, args.value, args.timeout))
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
