"""classify's rows for people: one line per frame with its top classes, its bytes and the two stages' times."""

from __future__ import annotations

from collections.abc import Iterable


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
