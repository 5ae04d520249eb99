"""calibrate's entropy codec rows: a probability model fitted on the calibration frames' codes, and the bytes
it codes the judged frames' codes in (key frames), beside zstd and LZ4 over the packed codes.

The model is splitcomp_core.entropy's per-channel table, fitted by splitcomp_core.entropy.fit_table on the
codes the head's quantizer makes (splitcomp_core.codec.quantize, the head's own arithmetic); calibrate keeps
the tables of every encoding so that the one the head sends by default can be written into the bundle
(entropy.json), for the head and the tail to share. Where constriction is not installed there are no rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from splitcomp_core import entropy
from splitcomp_core.codec import QuantParams, quantize
from splitcomp_core.entropy import EntropyTable, encode_symbols, fit_table

ENTROPY_CODEC = "entropy"


def available() -> bool:
    """Whether this machine can code with entropy models (constriction is a pip-only, guarded import)."""
    return entropy.constriction is not None


def fit_tables(
    fit: Mapping[str, np.ndarray], params: Mapping[str, QuantParams | None], mode: str
) -> dict[str, EntropyTable] | None:
    """One table per tensor from the codes of the fitting frames (stacked per tensor, in their order);
    None for raw floats or where the coder is missing. `mode` is the head's range mode the codes come from."""
    if not available() or any(p is None for p in params.values()):
        return None
    tables = {}
    for name, frames in fit.items():
        p = params[name]
        assert p is not None
        tables[name] = fit_table(name, p.bits, mode, [quantize(x, p) for x in frames])
    return tables


def coded_bytes(x: np.ndarray, params: QuantParams, table: EntropyTable) -> int:
    """The bytes of one frame's tensor as a key frame under `table`: what the head's codec entropy sends."""
    return len(encode_symbols(quantize(x, params), table, delta=False))
