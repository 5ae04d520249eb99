"""`python -m splitcomp_tools.train_shapes` runs splitcomp_tools.shapes.train."""

from splitcomp_tools.shapes.train import main

if __name__ == "__main__":
    raise SystemExit(main())
