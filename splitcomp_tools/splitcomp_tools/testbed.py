"""testbed: `testbed up RATE [--loss PCT]` builds a robot and an edge joined by a link shaped to RATE Mbit/s
that drops PCT % of packets at random each way (run/testbed.py) and keeps it until Ctrl-C; `testbed cleanup PREFIX` removes what a SIGKILLed bed left behind."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence

from splitcomp_tools.cli import ToolParser, run_cli
from splitcomp_tools.run import link_loss, testbed


def build_parser() -> ToolParser:
    parser = ToolParser(prog="testbed", description=testbed.__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="build a bed at RATE Mbit/s, print its names, remove it on Ctrl-C")
    up.add_argument("rate", type=float, metavar="RATE")
    up.add_argument(
        "--loss",
        type=link_loss.checked_loss,
        metavar="PCT",
        help="drop this share of packets (percent, 0 <= PCT < 100) at random each way, in the kernel",
    )
    clean = commands.add_parser("cleanup", help="remove what a SIGKILLed bed with PREFIX (sc<pid>) left behind")
    clean.add_argument("prefix", metavar="PREFIX")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "cleanup":
        left = testbed.cleanup(args.prefix)
        print(f"removed the bed {args.prefix}" + (f"; still there: {left}" if left else ""))
        return 1 if left else 0
    with testbed.Testbed(args.rate, loss_pct=args.loss) as bed:
        print(json.dumps(dataclasses.asdict(bed)), flush=True)
        print(f"run a command inside: ip netns exec {bed.namespaces['robot']} ...  (Ctrl-C removes the bed)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    print(f"removed the bed {bed.prefix}; left: {bed.leftovers()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
