"""What `distill` prints and stores: per trained bottleneck, its training, its cost on the robot, and its curve."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from splitcomp_tools.cli import format_table
from splitcomp_tools.model.distill.build import Distilled
from splitcomp_tools.model.distill.judge import Point
from splitcomp_tools.report import agreement


def curve_table(results: Sequence[tuple[Distilled, Point | None]]) -> str:
    """One row per bottleneck: setting, training time, encoder share of the head's FLOPs, bytes, agreement."""
    rows = []
    for made, point in results:
        cells = agreement.cells(point.agreement if point else None)
        rows.append(
            [
                made.settings.name,
                made.settings.channels,
                f"{made.settings.lam:g}",
                f"{made.seconds:.0f} ({made.cpu_seconds:.0f} CPU)",
                f"{100 * made.encoder_share:.1f} %",
                f"{point.bytes_per_frame:.0f}" if point else "-",
                *cells,
            ]
        )
    header = ("bottleneck", "channels", "lambda", "train s (CPU s)", "encoder FLOPs", "B/frame", *agreement.HEADER)
    return format_table(header, rows)


def curve_json(
    results: Sequence[tuple[Distilled, Point | None]], training: dict[str, Any], judged: dict[str, Any]
) -> str:
    """The curve with what it was trained and judged on (the two never overlap: the caller checks)."""
    entries = []
    for made, point in results:
        entries.append(
            {
                "name": made.settings.name,
                "channels": made.settings.channels,
                "lambda": made.settings.lam,
                "bits": made.settings.bits,
                "mse_weight": made.settings.mse_weight,
                "train_seconds": made.seconds,
                "train_cpu_seconds": made.cpu_seconds,
                "encoder_flops": made.encoder_flops,
                "head_flops": made.head_flops,
                "encoder_share": made.encoder_share,
                "history": made.history,
                "bytes_per_frame": point.bytes_per_frame if point else None,
                "stats": point.agreement.to_json() if point else None,
            }
        )
    return json.dumps({"training": training, "judged": judged, "bottlenecks": entries}, indent=1) + "\n"
