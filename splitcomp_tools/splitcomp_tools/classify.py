"""`python -m splitcomp_tools.classify` runs splitcomp_tools.model.classify."""

from splitcomp_tools.model.classify import main

if __name__ == "__main__":
    raise SystemExit(main())
