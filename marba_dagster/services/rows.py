"""The app's rows checked where they enter the pipeline (rules in ``core.rows``).

Each function takes rows as ``store`` read them and returns the usable rows (cleaned) and
the problems found; the caller reports the problems (``BrandBatch.row_problems``) so the
operator sees each bad row named, and every other row goes on as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from marba_dagster.core.rows import (
    Problem,
    check_brand,
    check_competitor,
    check_platform_account,
)

__all__ = [
    "checked_accounts",
    "checked_brands",
    "checked_competitors",
]


def _checked(
    rows: Iterable[Mapping[str, Any]],
    check: Callable[[Mapping[str, Any]], tuple[dict | None, list[Problem]]],
) -> tuple[list[dict], list[Problem]]:
    kept, problems = [], []
    for row in rows:
        clean, found = check(row)
        problems += found
        if clean is not None:
            kept.append(clean)
    return kept, problems


def checked_brands(
    brands: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, dict], list[Problem]]:
    """``{brand id: row}`` with the unusable rows left out and the others cleaned."""
    kept, problems = _checked(brands.values(), check_brand)
    return {row["id"]: row for row in kept}, problems


def checked_competitors(
    by_brand: Mapping[str, list[Mapping[str, Any]]],
) -> tuple[dict[str, list[dict]], list[Problem]]:
    """Each brand's competitors with the unusable ones left out and the others cleaned."""
    out: dict[str, list[dict]] = {}
    problems: list[Problem] = []
    for brand_id, rows in by_brand.items():
        out[brand_id], found = _checked(rows, check_competitor)
        problems += found
    return out, problems


def checked_accounts(rows: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[Problem]]:
    """Platform account rows with the unusable ones left out."""
    return _checked(rows, check_platform_account)
