"""The built-in analyzer: what each MIRROR section says, computed from the data alone.

One module per section: ``analyze_<section>(brand, frames, now)`` takes the brand (a dict
with at least ``id``, ``industry``, ``timezone``) and the input frames loaded for that
section, and returns a :class:`SectionResult`. Deterministic: the same frames and ``now``
give the same result. A section whose inputs do not exist says so (``data_status="no_data"``)
instead of inventing content. Inputs that cannot be right (a non-finite target, an unknown
timezone) raise :class:`InputError`: the brand fails for that section and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from marba_dagster.core.enrichment.analyzers.frames import percentile_rank
from marba_dagster.core.enrichment.analyzers.intend import analyze_intend
from marba_dagster.core.enrichment.analyzers.measure import analyze_measure, industry_kpis
from marba_dagster.core.enrichment.analyzers.optimize import analyze_optimize
from marba_dagster.core.enrichment.analyzers.reach import analyze_reach
from marba_dagster.core.enrichment.analyzers.reflect import analyze_reflect
from marba_dagster.core.enrichment.analyzers.reimagine import analyze_reimagine
from marba_dagster.core.enrichment.analyzers.result import Frames, InputError, SectionResult

__all__ = [
    "ANALYZERS",
    "Frames",
    "InputError",
    "SectionResult",
    "analyze",
    "industry_kpis",
    "percentile_rank",
]

ANALYZERS: dict[str, Callable[[Mapping[str, Any], Frames, datetime], SectionResult]] = {
    "measure": analyze_measure,
    "intend": analyze_intend,
    "reimagine": analyze_reimagine,
    "reach": analyze_reach,
    "optimize": analyze_optimize,
    "reflect": analyze_reflect,
}


def analyze(section: str, brand: Mapping[str, Any], frames: Frames, now: datetime) -> SectionResult:
    return ANALYZERS[section](brand, frames, now)
