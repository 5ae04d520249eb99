"""`python -m splitcomp_tools.testbed` runs splitcomp_tools.run.testbed."""

from splitcomp_tools.run.testbed import main

if __name__ == "__main__":
    raise SystemExit(main())
