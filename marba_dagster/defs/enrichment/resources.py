"""The ``enrichment_settings`` resource: global AI budget, price table and rate limits.

Environment variables (read when Dagster loads the code location, never at import):
``MARBA_AI_MONTHLY_BUDGET_USD`` (global monthly AI budget in USD; unset = no global cap),
``MARBA_LLM_PRICES`` (JSON price table, USD per million tokens), ``MARBA_LLM_RPM`` and
``MARBA_LLM_TPM`` (the provider's requests/tokens per minute; unset = no client-side limit).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import dagster as dg
from pydantic import Field

from marba_dagster import settings
from marba_dagster.connectors.llm import LlmLimits
from marba_dagster.core.enrichment.budget import PriceTable
from marba_dagster.defs.enrichment.engine import AiConfig, EngineConfig
from marba_dagster.defs.resources import LlmSettings, Notifier, bind


class EnrichmentSettings(dg.ConfigurableResource):
    """Budgets, prices and rate limits of the enrichment engine's AI calls.

    Strings so that environment variables bind directly; parsed (with clear errors) when a
    run starts. ``monthly_budget_usd`` unset = no global cap (each brand's
    ``monthly_ai_budget_usd`` still applies).
    """

    monthly_budget_usd: str | None = Field(default=None, description="MARBA_AI_MONTHLY_BUDGET_USD")
    prices_json: str | None = Field(
        default=None,
        description='MARBA_LLM_PRICES: {"model": {"input_per_mtok": x, "output_per_mtok": y}}',
    )
    requests_per_minute: str | None = Field(default=None, description="MARBA_LLM_RPM")
    tokens_per_minute: str | None = Field(default=None, description="MARBA_LLM_TPM")
    window_seconds: float = 60.0
    concurrency: int = 8
    request_timeout: float = 30.0
    max_output_tokens: int = 700

    def _number(self, name: str, value: str | None, kind=Decimal):
        if value is None or str(value).strip() == "":
            return None
        try:
            n = kind(str(value).strip())
        except (InvalidOperation, ValueError):
            raise dg.Failure(
                description=f"enrichment setting {name} is not a number: {value!r}"
            ) from None
        if n < 0:
            raise dg.Failure(description=f"enrichment setting {name} must be >= 0, got {value!r}")
        return n

    def engine_config(self, llm: LlmSettings, notifier: Notifier | None) -> EngineConfig:
        try:
            prices = PriceTable.parse(self.prices_json)
        except ValueError as exc:
            raise dg.Failure(description=f"MARBA_LLM_PRICES: {exc}") from None
        rpm = self._number("MARBA_LLM_RPM", self.requests_per_minute, int)
        tpm = self._number("MARBA_LLM_TPM", self.tokens_per_minute, int)
        return EngineConfig(
            ai=AiConfig(
                base_url=llm.base_url,
                api_key=llm.api_key,
                model=llm.model,
                prices=prices,
                limits=LlmLimits(
                    rpm=rpm or None, tpm=tpm or None, window_seconds=self.window_seconds
                ),
                concurrency=self.concurrency,
                request_timeout=self.request_timeout,
                deadline=llm.deadline,
                max_attempts=min(3, llm.max_attempts),
                max_output_tokens=self.max_output_tokens,
            ),
            global_budget_usd=self._number("MARBA_AI_MONTHLY_BUDGET_USD", self.monthly_budget_usd),
            notify_webhook_url=notifier.webhook_url if notifier is not None else None,
        )


def build_settings() -> EnrichmentSettings:
    return EnrichmentSettings(
        monthly_budget_usd=bind(settings.AI_MONTHLY_BUDGET_USD),
        prices_json=bind(settings.LLM_PRICES),
        requests_per_minute=bind(settings.LLM_RPM),
        tokens_per_minute=bind(settings.LLM_TPM),
    )


@dg.definitions
def enrichment_resources() -> dg.Definitions:
    return dg.Definitions(
        resources={"enrichment_settings": build_settings()},
    )
