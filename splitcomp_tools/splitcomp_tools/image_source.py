"""`python -m splitcomp_tools.image_source` runs splitcomp_tools.nodes.image_source."""

from splitcomp_tools.nodes.image_source import main

if __name__ == "__main__":
    raise SystemExit(main())
