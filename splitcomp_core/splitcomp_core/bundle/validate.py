"""Checks on a manifest as a JSON document, before any dataclass is built from it.

The schema is chosen by `format_version`, so a bundle from a newer splitcomp gets an "upgrade" message
rather than a schema dump; numbers must be finite, because no range or statistic can be NaN or infinite
and no other JSON reader would accept them. Every message names the file and the JSON path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import jsonschema
import numpy as np
from jsonschema.exceptions import best_match

from splitcomp_core.bundle.schema import FORMAT_VERSION, NEWEST_FORMAT_VERSION, SCHEMAS
from splitcomp_core.errors import BundleError


def check_schema(data: Any, origin: str) -> None:
    """Pick the schema by format_version, so a newer bundle gets an 'upgrade' message, not a schema dump."""
    if not isinstance(data, dict):
        raise BundleError(f"{origin}: the manifest must be a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > NEWEST_FORMAT_VERSION:
        raise BundleError(
            f"{origin}: this bundle was written by a newer splitcomp (format_version {version}); this "
            f"splitcomp reads format_version {FORMAT_VERSION} to {NEWEST_FORMAT_VERSION}: upgrade splitcomp, or "
            f"re-run split with this version"
        )
    schema = SCHEMAS.get(version) if isinstance(version, int) and not isinstance(version, bool) else None
    if schema is None:
        raise BundleError(
            f"{origin}: format_version must be an integer from 1 to {NEWEST_FORMAT_VERSION}, got {version!r}"
        )
    error = best_match(jsonschema.Draft7Validator(schema).iter_errors(data))
    if error is not None:
        raise BundleError(f"{origin}: {where(error.absolute_path)}: {error.message}")


def reject_non_finite(name: str) -> None:
    """Python's json reads NaN and Infinity, which no other JSON reader accepts and no range may be."""
    raise ValueError(f"{name} is not valid JSON; ranges and statistics must be finite numbers")


def check_finite(data: Any, origin: str) -> None:
    """Refuse infinite numbers, which Python's json gives for literals beyond the float range such as 1e400."""
    try:
        json.dumps(data, allow_nan=False, default=json_default)  # finds one fast; the walk below only names it
    except ValueError:
        path = _non_finite_path(data) or []
        raise BundleError(
            f"{origin}: {where(path)}: must be a finite number (a literal beyond the float range, like 1e400, reads as "
            f"infinity)"
        ) from None


def _non_finite_path(value: Any) -> list[str | int] | None:
    """Keys leading to the first non-finite number in a JSON-like value, or None if it has none."""
    if isinstance(value, (float, np.floating)):
        return None if math.isfinite(value) else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        path = _non_finite_path(item)
        if path is not None:
            return [key, *path]
    return None


def where(path: Sequence[str | int]) -> str:
    """A JSON path as the messages write it: input.std[1]; "manifest" for the whole document."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "manifest"


def json_default(value: Any) -> Any:
    """Let numpy scalars and arrays (as calibrate produces) serialise as plain JSON numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
