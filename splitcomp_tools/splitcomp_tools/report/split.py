"""How `split` tells what it wrote: the bundle's cut and input, then how closely head + tail match the model."""

from __future__ import annotations

from collections.abc import Sequence

from splitcomp_core.bundle import Bundle
from splitcomp_tools.model.split import Verification


def split_summary(bundle: Bundle, cut: Sequence[str], check: Verification) -> str:
    """Two lines: what the bundle holds, and the verification it passed."""
    spec = bundle.manifest.input
    return (
        f"wrote {bundle.path}: cut {', '.join(cut)}; input {spec.name} {spec.height}x{spec.width} "
        f"{spec.color_order} ({spec.resize}); {len(bundle.labels) if bundle.labels else 'no'} class names\n"
        f"verified on {check.random_samples} random inputs and {check.image_samples} images: max abs "
        f"difference {check.max_abs_diff:.3g} ({check.relative_diff:.3g} of the output range)"
    )
