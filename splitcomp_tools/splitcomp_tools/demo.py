"""`python -m splitcomp_tools.demo` runs splitcomp_tools.run.demo."""

from splitcomp_tools.run.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
