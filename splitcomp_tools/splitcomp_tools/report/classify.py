"""classify's rows for people: one line per frame with its top classes, its bytes and the two stages' times."""

from __future__ import annotations

from collections.abc import Iterable

from splitcomp_tools.cli import format_table
from splitcomp_tools.model.classify import Judged
from splitcomp_tools.report import agreement


def format_rows(rows: Iterable[dict]) -> str:
    """One line per row of model.classify: "name: label 97.5%, ...  (4096 B, head 0.9 ms, tail 0.5 ms)"."""
    lines = []
    for row in rows:
        best = ", ".join(f"{r['label']} {r['score']:.1%}" for r in row["results"])
        lines.append(
            f"{row['image']}: {best}  ({row['feature_bytes']} B, head {row['head_ms']:.1f} ms, "
            f"tail {row['tail_ms']:.1f} ms)"
        )
    return "\n".join(lines)


def format_judged(judged: Judged, encoding: str) -> str:
    """The rows, then the encoding's agreement with the unsplit model beside JPEG-95 of the full frame's."""
    rows = [[encoding, *agreement.cells(judged.split)], ["jpeg of the full frame (q95)", *agreement.cells(judged.jpeg)]]
    return "\n".join(
        [
            format_rows(judged.rows),
            "",
            agreement.legend(judged.confidence, judged.split),
            format_table(["on these frames", *agreement.HEADER], rows),
        ]
    )
