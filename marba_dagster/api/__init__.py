"""The Python API of the MARBA guide, in snake_case.

``BackgroundJobScheduler``, ``EnrichmentEngine``, ``OpportunityDetection`` and
``LearningEngine`` read ``MARBA_DATABASE_URL`` and the Dagster instance like the CLI does.
Imported lazily so that using one does not load the others' dependencies.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BackgroundJobScheduler": "marba_dagster.api.scheduler",
    "EnrichmentEngine": "marba_dagster.api.enrichment",
    "OpportunityDetection": "marba_dagster.api.opportunities",
    "LearningEngine": "marba_dagster.api.learning",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'marba_dagster.api' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
