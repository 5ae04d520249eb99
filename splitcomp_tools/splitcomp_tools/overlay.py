"""overlay: the node that draws each classification on its camera frame (nodes/overlay.py), for rviz.

`ros2 run splitcomp_tools overlay` spins the node. With `--example PNG` it starts nothing of ROS and
only draws a realistic result on a generated 640x480 frame, written to PNG (docs/overlay.png is one):

    python -m splitcomp_tools.overlay --example docs/overlay.png
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import cv2

from splitcomp_core.errors import SplitcompError
from splitcomp_ros.node_support import run_node
from splitcomp_tools.cli import ToolParser, run_cli
from splitcomp_tools.draw.annotate import annotate, result_lines, write_png
from splitcomp_tools.frames.generator import GeneratorSource
from splitcomp_tools.frames.shapes import CLASS_NAMES
from splitcomp_tools.nodes.overlay import HELP, Overlay

EXAMPLE = "--example"


def write_example(path: Path) -> None:
    """A 640x480 demo frame with a realistic result, written to `path` (PNG) in one atomic step."""
    source = GeneratorSource(640, 480, seed=0)
    frame = source.read()
    truth = source.last_label
    assert truth is not None  # read() sets it
    runners_up = [CLASS_NAMES[(truth + k) % len(CLASS_NAMES)] for k in (1, 2)]
    scores = [(CLASS_NAMES[truth], 0.962), (runners_up[0], 0.021), (runners_up[1], 0.008)]
    image = annotate(frame, result_lines(scores, latency_ms=23.4, feature_bytes=1568, fps=29.8))
    write_png(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _example(argv: Sequence[str] | None) -> int:
    parser = ToolParser(prog="overlay --example", description="Draw an example overlay on a generated frame.")
    parser.add_argument(
        EXAMPLE,
        type=Path,
        required=True,
        metavar="PNG",
        help="write an example overlay of a generated 640x480 frame to this PNG file",
    )
    args = parser.parse_args(argv)
    if args.example.suffix.lower() != ".png":
        raise SplitcompError(f"--example writes a PNG; give a path ending in .png, not {args.example}")
    if not args.example.parent.is_dir():
        raise FileNotFoundError(f"{args.example.parent} is not a directory; create it first")
    write_example(args.example)
    print(f"wrote {args.example}")
    return 0


def main(args: Sequence[str] | None = None) -> int:
    """Spin the overlay node until Ctrl-C (`args` as sys.argv); with --example, only write the example PNG."""
    argv = list(sys.argv if args is None else args)
    if any(a == EXAMPLE or a.startswith(EXAMPLE + "=") for a in argv[1:]):
        return run_cli(_example, argv[1:])
    return run_node(Overlay, argv, HELP)


if __name__ == "__main__":
    raise SystemExit(main())
