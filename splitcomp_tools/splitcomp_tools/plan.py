"""`python -m splitcomp_tools.plan` runs splitcomp_tools.model.plan."""

from splitcomp_tools.model.plan import main

if __name__ == "__main__":
    raise SystemExit(main())
