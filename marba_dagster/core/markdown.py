"""Markdown tables for materialization previews (the Dagster UI renders them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def markdown_table(rows: Sequence[dict[str, Any]], columns: Iterable[str], limit: int = 20) -> str:
    """A small Markdown table for materialization previews."""
    cols = list(columns)
    if not rows:
        return "_no rows_"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows[:limit]:
        cells = []
        for c in cols:
            v = row.get(c, "")
            if isinstance(v, float):
                v = f"{v:.3g}"
            cells.append(str(v).replace("|", "\\|").replace("\n", " ")[:80])
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > limit:
        lines.append(f"\n_{len(rows) - limit} more rows_")
    return "\n".join(lines)
