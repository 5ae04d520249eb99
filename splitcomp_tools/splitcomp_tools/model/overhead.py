"""The per-frame transport overhead as a model of the payload: overhead ms = a + b x kilobytes, fitted by least squares.

The overhead is what a frame's latency holds beyond the head's and the tail's stages and the link's rate:
camera transport and image conversion on the robot (the same for every cut), then serialization, DDS
fragmentation and reassembly, and the copies on both sides (more for a larger message). One term per
kilobyte covers the second part: Fast DDS cuts a message into fragments of a fixed size, so a cost per
fragment is a cost per byte in steps, and a separate fragment term only parts from the per-byte one where the
samples straddle a fragment boundary, which a plan's handful of candidates cannot pin down. Both coefficients
are kept non-negative: a negative cost per byte or per frame is noise, not transport.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from splitcomp_core.errors import SplitcompError


@dataclasses.dataclass(frozen=True)
class OverheadFit:
    """overhead ms = `intercept_ms` + `per_kb_ms` x bytes / 1000, with how well it fitted its samples."""

    intercept_ms: float
    per_kb_ms: float = 0.0
    samples: int = 0  # 0: not fitted (a fixed overhead given by the user)
    rms_ms: float = 0.0  # root mean square of the residuals
    max_residual_ms: float = 0.0  # the largest |residual|

    def at(self, nbytes: float) -> float:
        """The overhead of a message of `nbytes` bytes on the wire."""
        return self.intercept_ms + self.per_kb_ms * nbytes * 1e-3

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OverheadFit:
        floats = {k: float(data[k]) for k in ("intercept_ms", "per_kb_ms", "rms_ms", "max_residual_ms") if k in data}
        return cls(samples=int(data.get("samples", 0)), **floats)


def fit_overhead(samples: Sequence[tuple[float, float]]) -> OverheadFit:
    """Least squares of (bytes, overhead ms) samples, with both coefficients >= 0 (the best feasible of the full
    fit and the two one-term fits); one distinct payload size gives the constant alone."""
    data = np.array([(float(b), float(ms)) for b, ms in samples], dtype=float).reshape(-1, 2)
    if len(data) == 0 or not np.isfinite(data).all():
        raise SplitcompError("the transport overhead needs at least one finite (bytes, ms) sample to fit")
    kb, ms = data[:, 0] * 1e-3, data[:, 1]
    fits = [(float(np.mean(ms)), 0.0)]
    if np.ptp(kb) > 0:
        (a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(kb), kb], axis=1), ms, rcond=None)
        fits.append((float(a), float(b)))
        fits.append((0.0, float(kb @ ms / (kb @ kb))))
    feasible = [(a, b) for a, b in fits if a >= 0 and b >= 0] or [(max(0.0, fits[0][0]), 0.0)]
    a, b = min(feasible, key=lambda f: float(np.sum((ms - f[0] - f[1] * kb) ** 2)))
    residuals = ms - a - b * kb
    return OverheadFit(
        intercept_ms=a,
        per_kb_ms=b,
        samples=len(data),
        rms_ms=float(math.sqrt(np.mean(residuals**2))),
        max_residual_ms=float(np.max(np.abs(residuals))),
    )
