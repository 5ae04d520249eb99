"""image_source: publishes image_raw from photos, a folder, a video, a camera or the generator (nodes/image_source.py).

ros2 run splitcomp_tools image_source --ros-args -p source:=photos:test -p rate_hz:=10
"""

from __future__ import annotations

from collections.abc import Sequence

from splitcomp_ros.node_support import run_node
from splitcomp_tools.nodes.image_source import HELP, ImageSource


def main(args: Sequence[str] | None = None) -> int:
    """Spin the node until Ctrl-C (`args` as sys.argv); `--help` lists its parameters without starting ROS."""
    return run_node(ImageSource, None if args is None else list(args), HELP)


if __name__ == "__main__":
    raise SystemExit(main())
