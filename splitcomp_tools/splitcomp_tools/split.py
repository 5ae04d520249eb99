"""`python -m splitcomp_tools.split` runs splitcomp_tools.model.split."""

from splitcomp_tools.model.split import main

if __name__ == "__main__":
    raise SystemExit(main())
