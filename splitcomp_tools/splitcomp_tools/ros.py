"""`python -m splitcomp_tools.ros` runs splitcomp_tools.run.ros."""

from splitcomp_tools.run.ros import main

if __name__ == "__main__":
    raise SystemExit(main())
