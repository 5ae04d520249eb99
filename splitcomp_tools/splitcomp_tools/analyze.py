"""`python -m splitcomp_tools.analyze` runs splitcomp_tools.model.analyze."""

from splitcomp_tools.model.analyze import main

if __name__ == "__main__":
    raise SystemExit(main())
