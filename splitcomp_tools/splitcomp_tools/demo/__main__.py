"""`python -m splitcomp_tools.demo` runs the demo command (demo/command.py)."""

from splitcomp_tools.demo.command import main

if __name__ == "__main__":
    raise SystemExit(main())
