"""`python -m splitcomp_tools.export` runs splitcomp_tools.model.export."""

from splitcomp_tools.model.export import main

if __name__ == "__main__":
    raise SystemExit(main())
