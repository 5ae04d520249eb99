"""Whether a bundle's tail can run many frames in one call, and the command that makes a bundle whose tail can.

A tail batches when the input and every cut tensor lead with a dynamic dim (-1 in the manifest). A
static-batch bundle is remade from the model it was split from with `split --dynamic-batch` (a
multi-cut bundle with `plan --dynamic-batch`); the tools and the tail node say that command.
"""

from __future__ import annotations

from splitcomp_core.bundle.manifest import Bundle
from splitcomp_core.bundle.schema import DYNAMIC


def takes_any_batch(bundle: Bundle) -> bool:
    """Whether every cut's tail takes any batch: the input and every cut tensor lead with a dynamic dim."""
    return all(
        c.manifest.input.shape[0] == DYNAMIC and all(t.shape[0] == DYNAMIC for t in c.manifest.cut)
        for c in bundle.all_cuts()
    )


def dynamic_batch_command(bundle: Bundle) -> str:
    """The command that makes a dynamic-batch bundle of this one, from the model it was split from."""
    m = bundle.manifest
    if bundle.cuts:
        return f"plan {m.source} --dynamic-batch --out {bundle.path}-batch ..."
    return f"split {m.source} --at {','.join(t.name for t in m.cut)} --out {bundle.path}-batch --dynamic-batch"
