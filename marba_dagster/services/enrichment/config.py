"""How an enrichment pass runs: where the model is, its prices, rate limits and budgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from marba_dagster.connectors.llm import LlmLimits
from marba_dagster.core.catalog import ENRICHMENT_JOB
from marba_dagster.core.enrichment import ai
from marba_dagster.core.enrichment.budget import PriceTable


@dataclass(frozen=True)
class AiConfig:
    """Where the model is and how to use it; ``None`` base URL = analyzer only."""

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    prices: PriceTable = field(default_factory=lambda: PriceTable.parse(None))
    limits: LlmLimits = field(default_factory=LlmLimits)
    concurrency: int = 8
    request_timeout: float = 30.0
    deadline: float = 60.0
    max_attempts: int = 3
    max_output_tokens: int = ai.MAX_OUTPUT_TOKENS

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.api_key and self.model)


@dataclass(frozen=True)
class EngineConfig:
    ai: AiConfig = field(default_factory=AiConfig)
    global_budget_usd: Decimal | None = None
    notify_webhook_url: str | None = None
    job_name: str = ENRICHMENT_JOB
