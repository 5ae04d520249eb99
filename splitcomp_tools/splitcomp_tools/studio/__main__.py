"""`python -m splitcomp_tools.studio` runs splitcomp_tools.studio.server."""

from splitcomp_tools.studio.server import main

if __name__ == "__main__":
    raise SystemExit(main())
