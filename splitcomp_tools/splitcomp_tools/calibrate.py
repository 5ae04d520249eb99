"""`python -m splitcomp_tools.calibrate` runs splitcomp_tools.model.calibrate."""

from splitcomp_tools.model.calibrate import main

if __name__ == "__main__":
    raise SystemExit(main())
