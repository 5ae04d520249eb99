"""Write the lock of a virtual environment that setup.sh made: every distribution in it, pinned exactly.

The requirement files pin what the project imports; the lock pins everything those pull in, so that a
fresh clone installs the same versions next month as today (PyPI keeps releasing the transitive ones).
setup.sh applies it with `pip -c` when one exists for the ROS distribution and the interpreter's Python.

    source scripts/env.sh
    python scripts/lock.py .venv                 # writes requirements/lock/ros-jazzy-py311.txt
    python scripts/lock.py .venv-kilted          # writes requirements/lock/ros-kilted-py311.txt

To upgrade: delete the lock, `make clean`, `make setup` (resolves afresh from the direct pins), run
this, run the tests, and commit the lock with the change.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write_text
from splitcomp_tools.cli import ToolParser, run_cli

ROOT = Path(__file__).resolve().parents[1]
LOCK_DIR = ROOT / "requirements" / "lock"


def installed(venv: Path) -> tuple[str, dict[str, str]]:
    """(pyXY, {name: version}) of the venv, with local labels (torch's `+cpu`) dropped: they name a build."""
    if not (venv / "bin" / "python").exists():
        raise SplitcompError(f"{venv} is not a virtual environment; run scripts/setup.sh first")
    script = (
        "import json, sys, importlib.metadata as m;"
        "print(json.dumps([f'py{sys.version_info[0]}{sys.version_info[1]}',"
        "{d.metadata['Name']: d.version for d in m.distributions()}]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the venv alone, not a sourced install space
    out = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        said = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise SplitcompError(f"{venv}/bin/python could not list its distributions ({said}); run scripts/setup.sh")
    python, versions = json.loads(out.stdout)
    return python, {n: v.split("+")[0] for n, v in versions.items() if n not in ("pip", "setuptools", "wheel")}


def ros_distribution(versions: dict[str, str]) -> str | None:
    """Which PyPI ROS 2 the venv holds: Kilted's wheels come under ros-kilted-* meta-packages, Jazzy's are plain ros-*."""
    names = {n.lower() for n in versions}
    if "ros-kilted-rclpy" in names:
        return "kilted"
    return "jazzy" if "ros-rclpy" in names else None


def build_parser() -> ToolParser:
    p = ToolParser(prog="lock.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("venv", type=Path, help="a virtual environment made by scripts/setup.sh from PyPI ROS 2")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    python, versions = installed(args.venv)
    distro = ros_distribution(versions)
    if distro is None:
        raise SplitcompError(f"{args.venv} holds no ROS 2 from PyPI; locks are for the venvs scripts/setup.sh makes")
    out = LOCK_DIR / f"ros-{distro}-{python}.txt"
    lines = [f"{name}=={versions[name]}" for name in sorted(versions, key=str.lower)]
    header = f"# Written by scripts/lock.py from {args.venv.name}; setup.sh installs with it as constraints.\n"
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, header + "\n".join(lines) + "\n")
    print(f"{out.relative_to(ROOT)}: {len(lines)} distributions")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
