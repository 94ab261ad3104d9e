"""The enrichment engine's I/O: a pass over brands and sections reads each section's
inputs (``inputs``), decides, analyzes, narrates with the model within the budgets and
writes the cache (``engine``), and reports what happened to every (brand, section)
(``outcomes``); ``config`` says where the model is and how to use it. No Dagster."""

from marba_dagster.services.enrichment.config import AiConfig, EngineConfig
from marba_dagster.services.enrichment.engine import EnrichmentPass, enrich_brands, month_start
from marba_dagster.services.enrichment.outcomes import (
    AI_BUDGET,
    AI_FALLBACK,
    AI_NARRATED,
    ModelUse,
    Outcome,
    RunReport,
)

__all__ = [
    "AI_BUDGET",
    "AI_FALLBACK",
    "AI_NARRATED",
    "AiConfig",
    "EngineConfig",
    "EnrichmentPass",
    "ModelUse",
    "Outcome",
    "RunReport",
    "enrich_brands",
    "month_start",
]
