"""What a pass did to each (brand, section), and the run's totals."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from marba_dagster.connectors.http import (
    ConnectFailed,
    DeadlineExceeded,
    HttpError,
    MalformedResponse,
)

# What happened to the model call of a refreshed entry (Outcome.ai).
AI_NARRATED = "narrated"  # the model answered and its narrative was kept
AI_FALLBACK = "fallback"  # a call was due but failed or was unusable: the analyzer's text was kept
AI_BUDGET = "budget"  # a call was due but the budget ran out during the pass


@dataclass
class Outcome:
    brand_id: str
    section: str
    status: str  # refreshed | skipped | deferred | failed
    reason: str = ""
    generated_by: str | None = None
    tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    error: str | None = None
    data_status: str | None = None
    expires_at: datetime | None = None
    ai_fallback: str | None = None
    # The entry now stored: its input fingerprint (the data version) and when it was made.
    fingerprint: str | None = None
    created_at: datetime | None = None
    # Skipped and deferred entries: whether the kept entry has expired, and until when a
    # deferred one waits.
    expired: bool = False
    deferred_until: datetime | None = None
    # Forced refreshes: what the TTL-aware decision would have been.
    due_reason: str | None = None
    # None when no model call was due (analyzer only, no data, budget policy); else one of
    # AI_NARRATED, AI_FALLBACK, AI_BUDGET, with ``ai_cause`` naming a fallback's cause in a
    # few words and no secrets ("HTTP 401 from the model endpoint").
    ai: str | None = None
    ai_cause: str | None = None


@dataclass(frozen=True)
class ModelUse:
    """A section's model calls in a run: how many were made, which brands fell back to the
    analyzer and why, and how many the budget left to the analyzer."""

    calls: int
    fallback_brands: list[str]
    causes: Counter
    budget_skipped: int


@dataclass
class RunReport:
    outcomes: list[Outcome] = field(default_factory=list)
    ai_calls: int = 0
    ai_tokens: int = 0
    ai_cost_usd: Decimal = Decimal(0)
    llm_counters: dict[str, int] = field(default_factory=dict)
    ai_seconds: float = 0.0  # wall time of the concurrent AI phase
    # Brands asked for that are not active (inactive or deleted): failed, nothing enriched.
    not_active: list[str] = field(default_factory=list)

    def by_section(self, section: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.section == section]

    def failed(self, section: str | None = None) -> dict[str, str]:
        return {
            o.brand_id: o.error or "failed"
            for o in self.outcomes
            if o.status == "failed" and (section is None or o.section == section)
        }

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        return counts

    def summary(self, brands: int, sections: int) -> str:
        """The run's one log line: what happened, and what the model cost."""
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.status_counts().items()))
        return (
            f"enrichment: {brands} brand(s) x {sections} section(s): {counts}; "
            f"{self.ai_calls} AI call(s), {self.ai_tokens} tokens, {self.ai_cost_usd} USD"
        )

    def model_use(self, section: str) -> ModelUse:
        outcomes = self.by_section(section)
        calls = [o for o in outcomes if o.ai in (AI_NARRATED, AI_FALLBACK)]
        fell = [o for o in calls if o.ai == AI_FALLBACK]
        return ModelUse(
            calls=len(calls),
            fallback_brands=sorted(o.brand_id for o in fell),
            causes=Counter(o.ai_cause or "unknown cause" for o in fell),
            budget_skipped=sum(1 for o in outcomes if o.ai == AI_BUDGET),
        )

    def failure_description(self, sections: list[str]) -> str:
        """The step's failure: the failed brands of each section, and the partitions of
        brands that are not active."""
        by_section = {s: sorted(self.failed(s)) for s in sections if self.failed(s)}
        names = "; ".join(f"{s}: {', '.join(bs)}" for s, bs in by_section.items())
        tail = (
            "; not active (inactive or deleted), nothing enriched: "
            + ", ".join(sorted(self.not_active))
            if self.not_active
            else ""
        )
        return f"{len(self.failed())} brand(s) failed ({names}){tail}"

    def errors(self) -> dict[str, str | None]:
        """``section/brand`` -> error of every failed (brand, section)."""
        return {f"{o.section}/{o.brand_id}": o.error for o in self.outcomes if o.status == "failed"}


def ai_failure_cause(error: BaseException) -> str:
    """A model call's failure in a few words, never with a URL, header or key in it."""
    if isinstance(error, MalformedResponse):
        return "malformed answers from the model endpoint"
    if isinstance(error, ConnectFailed):
        return "model endpoint unreachable"
    if isinstance(error, DeadlineExceeded):
        return "model endpoint timed out"
    if isinstance(error, HttpError) and error.status is not None:
        return f"HTTP {error.status} from the model endpoint"
    return f"{type(error).__name__} calling the model endpoint"
