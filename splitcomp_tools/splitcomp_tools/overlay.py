"""`python -m splitcomp_tools.overlay` runs splitcomp_tools.nodes.overlay."""

from splitcomp_tools.nodes.overlay import main

if __name__ == "__main__":
    raise SystemExit(main())
