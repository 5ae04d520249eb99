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
from collections.abc import Sequence

import rclpy

from splitcomp_tools.cli import ToolParser, float_in, int_in, run_cli
from splitcomp_tools.run import ros_verbs

DISCOVERY_TIMEOUT_S = 10.0


def build_parser() -> ToolParser:
    p = ToolParser(prog="ros", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--timeout",
        type=float_in(0.0, 300.0, low_open=True),
        default=DISCOVERY_TIMEOUT_S,
        help="seconds to wait for the node or topic (default: 10)",
    )
    commands = p.add_subparsers(dest="verb", required=True, parser_class=ToolParser)
    topic = commands.add_parser("topic", help="topic echo TOPIC")
    topic.add_argument("action", choices=("echo",))
    topic.add_argument("topic", help="e.g. splitcomp/classification or /diagnostics")
    topic.add_argument("--count", type=int_in(0, 1_000_000), default=0, help="stop after N messages (default: never)")
    param = commands.add_parser("param", help="param set NODE NAME VALUE")
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
            ros_verbs.echo(node, args.topic, args.count, args.timeout)
        else:
            print(ros_verbs.set_parameter(node, args.node, args.name, args.value, args.timeout))
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
    raise SystemExit(main())
