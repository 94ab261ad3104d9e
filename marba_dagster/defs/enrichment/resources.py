"""The ``enrichment_settings`` resource: global AI budget, price table and rate limits.

Settings (``marba_dagster.settings``), bound when Dagster loads the code location and parsed
when a run starts: ``MARBA_AI_MONTHLY_BUDGET_USD`` (global monthly AI budget in USD; unset =
no global cap), ``MARBA_LLM_PRICES`` (JSON price table, USD per million tokens),
``MARBA_LLM_RPM`` and ``MARBA_LLM_TPM`` (the provider's requests/tokens per minute; unset =
no client-side limit). A value that cannot work fails the step at once (``InvalidSetting``).
"""

from __future__ import annotations

from decimal import Decimal

import dagster as dg
from pydantic import Field

from marba_dagster import settings
from marba_dagster.connectors.llm import LlmLimits
from marba_dagster.core.enrichment.budget import PriceError, PriceTable
from marba_dagster.defs.resources import (
    InvalidSetting,
    LlmSettings,
    Notifier,
    bind,
    parse_setting,
)
from marba_dagster.services.enrichment import AiConfig, EngineConfig
from marba_dagster.settings import Setting


def _parsed(setting: Setting, text: str | None):
    """The bound text parsed by its setting; ``None`` when unset or blank."""
    if text is None or not str(text).strip():
        return None
    return parse_setting(setting, str(text).strip())


class EnrichmentSettings(dg.ConfigurableResource):
    """Budgets, prices and rate limits of the enrichment engine's AI calls.

    Strings so that environment variables bind directly; parsed (with clear errors) when a
    run starts. ``monthly_budget_usd`` unset = no global cap (each brand's
    ``monthly_ai_budget_usd`` still applies).
    """

    monthly_budget_usd: str | None = Field(
        default=None, description=settings.AI_MONTHLY_BUDGET_USD.name
    )
    prices_json: str | None = Field(
        default=None,
        description=f"{settings.LLM_PRICES.name}: "
        '{"model": {"input_per_mtok": x, "output_per_mtok": y}}',
    )
    requests_per_minute: str | None = Field(default=None, description=settings.LLM_RPM.name)
    tokens_per_minute: str | None = Field(default=None, description=settings.LLM_TPM.name)
    window_seconds: float = 60.0
    concurrency: int = 8
    request_timeout: float = 30.0
    max_output_tokens: int = 700

    def prices(self) -> PriceTable:
        """The built-in price table, overridden by ``MARBA_LLM_PRICES``."""
        _parsed(settings.LLM_PRICES, self.prices_json)  # a JSON object, or InvalidSetting
        try:
            return PriceTable.parse(self.prices_json)
        except PriceError as exc:
            raise InvalidSetting(settings.LLM_PRICES.name, self.prices_json, str(exc)) from None

    def global_budget(self) -> Decimal | None:
        budget = _parsed(settings.AI_MONTHLY_BUDGET_USD, self.monthly_budget_usd)
        return None if budget is None else Decimal(str(self.monthly_budget_usd).strip())

    def engine_config(self, llm: LlmSettings, notifier: Notifier | None) -> EngineConfig:
        prices = self.prices()
        rpm = _parsed(settings.LLM_RPM, self.requests_per_minute)
        tpm = _parsed(settings.LLM_TPM, self.tokens_per_minute)
        return EngineConfig(
            ai=AiConfig(
                base_url=llm.base_url,
                api_key=llm.api_key,
                model=llm.model,
                prices=prices,
                limits=LlmLimits(rpm=rpm, tpm=tpm, window_seconds=self.window_seconds),
                concurrency=self.concurrency,
                request_timeout=self.request_timeout,
                deadline=llm.deadline,
                max_attempts=min(3, llm.max_attempts),
                max_output_tokens=self.max_output_tokens,
            ),
            global_budget_usd=self.global_budget(),
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
