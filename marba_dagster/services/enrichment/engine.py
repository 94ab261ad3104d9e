"""One enrichment pass over a set of brands and sections: read, decide, analyze, narrate, write.

Used by the Dagster assets (one run covering every brand) and by the Python API. For each
section the inputs of every brand are read in a few batched queries; each (brand, section)
is then decided (refresh, keep, defer: ``core.enrichment.planner``), analyzed by the
built-in analyzer, optionally narrated by the model (concurrently, within the rate limits
and the budgets), and written in its own transaction: ``enrichment_cache``,
``enrichment_schedule``, ``enrichment_logs`` and, for every AI call, ``api_billing_tracker``.
One brand's failure is recorded and never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from marba_dagster.connectors.http import HttpError
from marba_dagster.connectors.llm import ChatResult, LlmClient, estimate_tokens
from marba_dagster.core.enrichment import ai
from marba_dagster.core.enrichment.analyzers import SectionResult, analyze
from marba_dagster.core.enrichment.budget import (
    ALERT_RATIO,
    BudgetLedger,
    BudgetStatus,
    PriceError,
)
from marba_dagster.core.enrichment.planner import CacheEntry, Decision, ScheduleState, decide
from marba_dagster.core.enrichment.sections import SECTIONS, TTL, check_section
from marba_dagster.services.enrichment.config import EngineConfig
from marba_dagster.services.enrichment.inputs import Peers, load_section_inputs
from marba_dagster.services.enrichment.outcomes import (
    AI_BUDGET,
    AI_FALLBACK,
    AI_NARRATED,
    Outcome,
    RunReport,
    ai_failure_cause,
)
from marba_dagster.services.notifications import push_once
from marba_dagster.store import enrichment as store_enrichment
from marba_dagster.store.brands import active_brand_ids, brands_by_id, existing_brand_ids
from marba_dagster.store.jobs import write_job_log
from marba_dagster.store.types import utcnow

log = logging.getLogger(__name__)

OPERATION_PREFIX = "enrichment."
ANALYZER = "analyzer"
# Brands planned, narrated and written together (bounded memory; see EnrichmentPass.run).
BRANDS_PER_SLICE = 500


class Log(Protocol):
    """Where a pass says what it does: a ``logging.Logger`` or Dagster's ``context.log``."""

    def info(self, msg: str) -> Any: ...
    def warning(self, msg: str) -> Any: ...
    def error(self, msg: str) -> Any: ...


@dataclass
class _Task:
    brand: dict[str, Any]
    section: str
    fingerprint: str
    decision: Decision
    entry: CacheEntry | None = None
    schedule: ScheduleState | None = None
    result: SectionResult | None = None
    chat: ChatResult | None = None
    ai_error: str | None = None
    ai: str | None = None
    ai_cause: str | None = None
    narrative: dict[str, Any] | None = None
    reserved: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _dec(v: Any) -> Decimal:
    return Decimal(str(v)) if v is not None else Decimal(0)


def enrich_brands(
    engine: Engine,
    config: EngineConfig,
    brand_ids: Sequence[str],
    sections: Sequence[str],
    *,
    run_id: str | None = None,
    force: str | None = None,
    log: Log | None = None,
) -> RunReport:
    """A pass over the active brands among ``brand_ids``; every (brand, section) of a brand
    that is not active (inactive or deleted) is a failed outcome naming why, and the brand
    is listed in ``report.not_active``."""
    with engine.connect() as conn:
        active = set(active_brand_ids(conn))
        known = existing_brand_ids(conn, [b for b in brand_ids if b not in active])
    report = EnrichmentPass(engine, config, run_id=run_id, log=log).run(
        [b for b in brand_ids if b in active], sections, force=force
    )
    report.not_active = [b for b in brand_ids if b not in active]
    for b in report.not_active:
        why = (
            "brand is inactive: not enriched"
            if b in known
            else "brand does not exist (deleted): not enriched"
        )
        report.outcomes += [Outcome(b, s, "failed", error=why) for s in sections]
    return report


class EnrichmentPass:
    """One pass; ``run()`` returns what happened to every (brand, section)."""

    def __init__(
        self,
        engine: Engine,
        config: EngineConfig,
        *,
        run_id: str | None = None,
        now: datetime | None = None,
        log: Log | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.run_id = run_id
        self.now = now or utcnow()
        self._log = log
        self._llm: LlmClient | None = None
        self._force: str | None = None

    # -- logging -------------------------------------------------------------------------

    def _say(self, level: str, message: str) -> None:
        getattr(self._log or log, level if level in ("info", "warning", "error") else "info")(
            message
        )

    def job_log(self, level: str, message: str, brand_id: str | None = None, **ctx: Any) -> None:
        try:
            with self.engine.begin() as conn:
                write_job_log(
                    conn,
                    self.config.job_name,
                    level,
                    message,
                    run_id=self.run_id,
                    brand_id=brand_id,
                    context=ctx or None,
                )
        except Exception as exc:  # logging must not turn a success into a failure
            self._say("warning", f"could not write job_logs: {exc}")

    # -- budget --------------------------------------------------------------------------

    def _ledger(self, brands: dict[str, dict[str, Any]]) -> BudgetLedger:
        with self.engine.connect() as conn:
            per_brand, total = store_enrichment.ai_spend(conn, list(brands), month_start(self.now))
        return BudgetLedger(
            brand_budgets={b: _dec(row.get("monthly_ai_budget_usd")) for b, row in brands.items()},
            brand_spent={b: _dec(per_brand.get(b)) for b in brands},
            global_budget=self.config.global_budget_usd,
            global_spent=_dec(total),
        )

    def _alert(self, kind: str, brand_id: str | None, text: str) -> bool:
        """Record and push an alert once per key per month; True if it was new."""
        key = f"{kind}:{brand_id or 'global'}:{self.now:%Y-%m}"
        status = push_once(
            self.engine,
            self.config.notify_webhook_url,
            dedup_key=key,
            kind=kind,
            text=text,
            brand_id=brand_id,
        )
        if status == "duplicate":
            return False  # already alerted this month (or being sent)
        self.job_log("warning", text, brand_id=brand_id, alert=kind)
        self._say("warning", text)
        if status == "failed":
            self.job_log(
                "error", "could not send the alert (the next run tries again)", brand_id=brand_id
            )
        return True

    def _budget_alerts(
        self, ledger: BudgetLedger, brands: Sequence[str]
    ) -> dict[str, BudgetStatus]:
        statuses = {}
        budget = ledger.global_budget
        if budget is not None and budget > 0 and ledger.global_spent / budget >= ALERT_RATIO:
            pct = ledger.global_spent / budget * 100
            kind = "ai_budget_100" if pct >= 100 else "ai_budget_80"
            self._alert(
                kind,
                None,
                f"Global AI budget at {pct:.0f}% this month "
                f"({ledger.global_spent:.2f} of {budget:.2f} USD): "
                + ("AI is off until next month." if pct >= 100 else "enrichment is throttled."),
            )
        for b in brands:
            statuses[b] = ledger.status(b)
            brand_budget = ledger.brand_budgets.get(b)
            if brand_budget is not None and brand_budget > 0:
                ratio = ledger.brand_spent.get(b, Decimal(0)) / brand_budget
                if ratio >= ALERT_RATIO:
                    kind = "ai_budget_100" if ratio >= 1 else "ai_budget_80"
                    self._alert(
                        kind,
                        b,
                        f"AI budget of brand {b} at {ratio * 100:.0f}% this month "
                        f"({ledger.brand_spent[b]:.2f} of {brand_budget:.2f} USD): "
                        + (
                            "analyzer only until next month."
                            if ratio >= 1
                            else "enrichment is throttled."
                        ),
                    )
        return statuses

    # -- the pass ------------------------------------------------------------------------

    def run(
        self,
        brand_ids: Sequence[str],
        sections: Sequence[str] = SECTIONS,
        *,
        force: str | None = None,
    ) -> RunReport:
        """What happened to every (brand, section). ``force`` (the reason, e.g. "requested
        by a person") recomputes every entry whatever its TTL and fingerprint."""
        sections = [check_section(x) for x in sections]
        self._force = force
        report = RunReport()
        with self.engine.connect() as conn:
            brands = brands_by_id(conn, list(brand_ids))
        for b in brand_ids:
            if b not in brands:
                report.outcomes += [
                    Outcome(b, sec, "failed", error=f"unknown brand {b}") for sec in sections
                ]
        if not brands:
            return report
        ledger = self._ledger(brands)
        statuses = self._budget_alerts(ledger, list(brands))
        ids = list(brands)
        peers: Peers = {}
        try:
            # Brands in slices: memory holds one slice's inputs and results, not every
            # brand's; the model client (and its rate limiter) and the budget ledger span
            # the whole pass.
            for start in range(0, len(ids), BRANDS_PER_SLICE):
                part = {b: brands[b] for b in ids[start : start + BRANDS_PER_SLICE]}
                tasks: list[_Task] = []
                for section in sections:
                    tasks += self._plan_section(section, part, statuses, report, peers)
                ai_tasks = [
                    t
                    for t in tasks
                    if t.decision.allow_ai
                    and t.result is not None
                    and t.result.data_status != "no_data"
                ]
                if ai_tasks and self.config.ai.configured:
                    for t in ai_tasks:
                        t.ai = AI_FALLBACK  # until the model's narrative is kept
                    self._narrate(ai_tasks, ledger, report)
                elif ai_tasks:
                    for t in ai_tasks:
                        # no endpoint configured: the analyzer is the intended author
                        t.ai_error = None
                for t in tasks:
                    report.outcomes.append(self._write(t))
                del tasks, ai_tasks
        finally:
            if self._llm is not None:
                report.llm_counters = dict(self._llm.counters)
                self._llm.close()
                self._llm = None
        return report

    def _plan_section(
        self,
        section: str,
        brands: dict[str, dict[str, Any]],
        statuses: dict[str, BudgetStatus],
        report: RunReport,
        peers: Peers | None = None,
    ) -> list[_Task]:
        ids = list(brands)
        try:
            with self.engine.connect() as conn:
                inputs = load_section_inputs(conn, section, brands, self.now, peers)
                cache = store_enrichment.cache_entries(conn, section, ids)
                schedule = store_enrichment.schedule_states(conn, section, ids)
        except Exception as exc:  # the batch read failed: every brand of this section fails
            msg = f"could not read the {section} inputs: {type(exc).__name__}: {exc}"
            self._say("error", msg)
            for b in ids:
                report.outcomes.append(self._fail(b, section, msg))
            return []
        tasks = []
        for b, brand in brands.items():
            frames, fp = inputs[b]
            cached = cache.get(b)
            entry = (
                CacheEntry(
                    cached["created_at"],
                    cached["expires_at"],
                    cached["input_fingerprint"],
                    cached["generated_by"],
                )
                if cached
                else None
            )
            row = schedule.get(b)
            state = (
                ScheduleState(
                    row["next_refresh_at"],
                    row["refresh_requested_at"],
                    row["invalidated_at"],
                    row["invalidated_reason"],
                )
                if row
                else None
            )
            decision = decide(section, entry, state, fp, statuses[b], self.now, force=self._force)
            task = _Task(brand, section, fp, decision, entry=entry, schedule=state)
            if decision.refresh:
                try:
                    task.result = analyze(section, brand, frames, self.now)
                except Exception as exc:
                    report.outcomes.append(self._fail(b, section, f"{type(exc).__name__}: {exc}"))
                    continue
            tasks.append(task)
        return tasks

    def _fail(self, brand_id: str, section: str, error: str) -> Outcome:
        try:
            with self.engine.begin() as conn:
                store_enrichment.record_log(
                    conn,
                    brand_id,
                    section,
                    "failed",
                    run_id=self.run_id,
                    started_at=self.now,
                    finished_at=utcnow(),
                    error=error,
                )
        except Exception as exc:
            self._say("warning", f"could not write enrichment_logs: {exc}")
        self.job_log(
            "error",
            f"{section} failed for brand {brand_id}: {error}",
            brand_id=brand_id,
            section=section,
        )
        return Outcome(brand_id, section, "failed", error=error)

    # -- AI ------------------------------------------------------------------------------

    def _narrate(self, tasks: list[_Task], ledger: BudgetLedger, report: RunReport) -> None:
        cfg = self.config.ai
        try:
            price = cfg.prices.price_for(cfg.model)
        except PriceError as exc:
            self.job_log("error", f"AI disabled for this run: {exc}")
            for t in tasks:
                t.ai_error = str(exc)
                t.ai_cause = str(exc)
            return
        runnable: list[tuple[_Task, list[dict[str, str]]]] = []
        for t in tasks:
            messages = ai.build_messages(t.brand, t.result)
            worst = price.cost(estimate_tokens(messages), cfg.max_output_tokens)
            if not ledger.reserve(t.brand["id"], worst):
                t.ai_error = "AI budget exhausted for this month"
                t.ai = AI_BUDGET
                continue
            t.reserved = worst
            runnable.append((t, messages))
        if not runnable:
            return
        if self._llm is None:  # one client per pass: its rate limiter spans every slice
            self._llm = LlmClient(
                cfg.base_url,
                cfg.api_key,
                cfg.model,
                limits=cfg.limits,
                max_attempts=cfg.max_attempts,
                request_timeout=cfg.request_timeout,
                deadline=cfg.deadline,
            )
        client = self._llm
        started = time.monotonic()
        try:
            calls = [
                partial(_chat, messages=m, max_tokens=cfg.max_output_tokens) for _t, m in runnable
            ]
            results = client.chat_many(calls, concurrency=cfg.concurrency)
        finally:
            report.ai_seconds += time.monotonic() - started
            report.llm_counters = dict(client.counters)
        for (t, _m), res in zip(runnable, results, strict=True):
            b = t.brand["id"]
            if isinstance(res, ChatResult):
                t.chat = res
                t.cost = price.cost(res.prompt_tokens, res.completion_tokens)
                ledger.settle(b, t.reserved, t.cost)
                report.ai_calls += 1
                report.ai_tokens += res.total_tokens
                report.ai_cost_usd += t.cost
                self._bill(t, res)
                if res.refusal:
                    t.ai_error = f"model refused: {res.refusal[:200]}"
                    t.ai_cause = "the model refused"
                elif res.finish_reason == "length":
                    t.ai_error = "model answer cut at the output token limit"
                    t.ai_cause = "answers cut at the output token limit"
                elif res.finish_reason == "content_filter":
                    t.ai_error = "model answer withheld by its content filter"
                    t.ai_cause = "answers withheld by the model's content filter"
                else:
                    try:
                        t.narrative = ai.parse_answer(res.content)
                        t.ai = AI_NARRATED
                    except ai.InvalidAnswer as exc:
                        t.ai_error = f"invalid model answer: {exc}"
                        t.ai_cause = "invalid answers from the model"
            else:
                ledger.settle(b, t.reserved, Decimal(0))
                t.ai_error = (
                    f"AI call failed: {res}"
                    if isinstance(res, HttpError)
                    else f"AI call failed: {type(res).__name__}: {res}"
                )
                t.ai_cause = ai_failure_cause(res)

    def _bill(self, t: _Task, res: ChatResult) -> None:
        try:
            with self.engine.begin() as conn:
                store_enrichment.record_ai_call(
                    conn,
                    t.brand["id"],
                    f"{OPERATION_PREFIX}{t.section}",
                    model=res.model,
                    input_tokens=res.prompt_tokens,
                    output_tokens=res.completion_tokens,
                    cost_usd=t.cost,
                    run_id=self.run_id,
                    occurred_at=self.now,
                )
        except Exception as exc:  # the call happened; say loudly that its cost was not stored
            self.job_log(
                "error",
                f"could not record the cost of an AI call ({t.cost} USD): {exc}",
                brand_id=t.brand["id"],
            )

    # -- writing -------------------------------------------------------------------------

    def _write(self, t: _Task) -> Outcome:
        if not t.decision.refresh:
            return self._keep(t)
        b, section, d = t.brand["id"], t.section, t.decision
        now = self.now
        result = t.result
        if t.narrative is not None and t.chat is not None:
            payload = ai.merge(result, t.narrative, t.chat.model)
            generated_by = f"llm:{t.chat.model}"
        else:
            payload = result.payload()
            generated_by = ANALYZER
        payload["generated_at"] = now.isoformat()
        payload["refresh_reason"] = d.reason
        if t.ai_error:
            payload["ai_fallback"] = t.ai_error
        expires = now + TTL[section]
        tokens = t.chat.total_tokens if t.chat else 0
        try:
            with self.engine.begin() as conn:
                store_enrichment.store_entry(
                    conn,
                    b,
                    section,
                    payload=payload,
                    generated_by=generated_by,
                    fingerprint=t.fingerprint,
                    created_at=now,
                    expires_at=expires,
                )
                store_enrichment.record_log(
                    conn,
                    b,
                    section,
                    "refreshed",
                    run_id=self.run_id,
                    started_at=now,
                    finished_at=utcnow(),
                    generated_by=generated_by,
                    tokens=tokens,
                    cost_usd=t.cost,
                    error=f"AI fallback: {t.ai_error}" if t.ai_error else None,
                )
        except Exception as exc:
            return self._fail(
                b, section, f"could not store the section: {type(exc).__name__}: {exc}"
            )
        if t.ai_error:
            self.job_log(
                "warning",
                f"{section} for brand {b}: analyzer output kept ({t.ai_error})",
                brand_id=b,
                section=section,
            )
        return Outcome(
            b,
            section,
            "refreshed",
            reason=d.reason,
            generated_by=generated_by,
            tokens=tokens,
            cost_usd=t.cost,
            data_status=result.data_status,
            expires_at=expires,
            ai_fallback=t.ai_error,
            fingerprint=t.fingerprint,
            created_at=now,
            due_reason=d.due_reason,
            ai=t.ai,
            ai_cause=t.ai_cause if t.ai == AI_FALLBACK else None,
        )

    def _keep(self, t: _Task) -> Outcome:
        """An entry kept (fresh, or deferred under budget throttling): recorded as such."""
        b, section, d = t.brand["id"], t.section, t.decision
        now = self.now
        status = "deferred" if d.action == "defer" else "skipped"
        try:
            with self.engine.begin() as conn:
                if d.action == "defer":
                    store_enrichment.defer_refresh(conn, b, section, d.defer_until)
                store_enrichment.record_log(
                    conn,
                    b,
                    section,
                    status,
                    run_id=self.run_id,
                    started_at=now,
                    finished_at=utcnow(),
                    error=None if status == "skipped" else d.reason,
                )
        except Exception as exc:
            return self._fail(b, section, f"could not record the {status} entry: {exc}")
        entry = t.entry  # a skipped or deferred entry always exists
        until = d.defer_until or (t.schedule.next_refresh_at if t.schedule else None)
        expired = entry is not None and now >= entry.expires_at
        return Outcome(
            b,
            section,
            status,
            reason=d.reason,
            fingerprint=entry.input_fingerprint if entry else None,
            created_at=entry.created_at if entry else None,
            expires_at=entry.expires_at if entry else None,
            generated_by=entry.generated_by if entry else None,
            expired=expired,
            deferred_until=until if expired else None,
        )


def _chat(client: LlmClient, *, messages: list[dict[str, str]], max_tokens: int) -> ChatResult:
    return client.chat(messages, max_tokens=max_tokens)
