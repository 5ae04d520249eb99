"""`python -m splitcomp_tools.bench` runs splitcomp_tools.run.bench."""

from splitcomp_tools.run.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
