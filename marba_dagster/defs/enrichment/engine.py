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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marba_dagster.connectors.http import (
    ConnectFailed,
    DeadlineExceeded,
    HttpError,
    MalformedResponse,
)
from marba_dagster.connectors.llm import ChatResult, LlmClient, LlmLimits, estimate_tokens
from marba_dagster.core.enrichment import ai
from marba_dagster.core.enrichment.analyzers import SectionResult, analyze
from marba_dagster.core.enrichment.budget import (
    ALERT_RATIO,
    BudgetLedger,
    BudgetStatus,
    PriceError,
    PriceTable,
)
from marba_dagster.core.enrichment.planner import CacheEntry, Decision, ScheduleState, decide
from marba_dagster.core.enrichment.sections import SECTIONS, TTL, check_section
from marba_dagster.defs.enrichment.data import load_section_inputs
from marba_dagster.services.notifications import push_once
from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert
from marba_dagster.store.jobs import write_job_log
from marba_dagster.store.types import utcnow

log = logging.getLogger(__name__)

JOB_NAME = "enrichment_scheduler"
PROVIDER = "llm"
OPERATION_PREFIX = "enrichment."
ANALYZER = "analyzer"
# Brands planned, narrated and written together (bounded memory; see EnrichmentPass.run).
BRANDS_PER_SLICE = 500


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
    job_name: str = JOB_NAME


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


@dataclass
class RunReport:
    outcomes: list[Outcome] = field(default_factory=list)
    ai_calls: int = 0
    ai_tokens: int = 0
    ai_cost_usd: Decimal = Decimal(0)
    llm_counters: dict[str, int] = field(default_factory=dict)
    ai_seconds: float = 0.0  # wall time of the concurrent AI phase

    def by_section(self, section: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.section == section]

    def failed(self, section: str | None = None) -> dict[str, str]:
        return {
            o.brand_id: o.error or "failed"
            for o in self.outcomes
            if o.status == "failed" and (section is None or o.section == section)
        }


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


def month_start(now: datetime) -> datetime:
    return now.astimezone(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _dec(v: Any) -> Decimal:
    return Decimal(str(v)) if v is not None else Decimal(0)


class EnrichmentPass:
    """One pass; ``run()`` returns what happened to every (brand, section)."""

    def __init__(
        self,
        engine: Engine,
        config: EngineConfig,
        *,
        run_id: str | None = None,
        now: datetime | None = None,
        logger: Callable[[str, str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.run_id = run_id
        self.now = now or utcnow()
        self._logger = logger
        self._llm: LlmClient | None = None
        self._force: str | None = None

    # -- logging -------------------------------------------------------------------------

    def _say(self, level: str, message: str) -> None:
        if self._logger:
            self._logger(level, message)
        else:
            getattr(log, level if level in ("info", "warning", "error") else "info")(message)

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
        since = month_start(self.now)
        t = s.api_billing_tracker
        with self.engine.connect() as conn:
            per_brand = (
                dict(
                    conn.execute(
                        sa.select(t.c.brand_id, sa.func.coalesce(sa.func.sum(t.c.cost_usd), 0))
                        .where(
                            t.c.provider == PROVIDER,
                            t.c.occurred_at >= since,
                            t.c.brand_id.in_(list(brands)),
                        )
                        .group_by(t.c.brand_id)
                    ).all()
                )
                if brands
                else {}
            )
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(t.c.cost_usd), 0)).where(
                    t.c.provider == PROVIDER, t.c.occurred_at >= since
                )
            ).scalar()
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
        g = ledger.global_budget
        if g is not None and g > 0 and ledger.global_spent / g >= ALERT_RATIO:
            pct = ledger.global_spent / g * 100
            kind = "ai_budget_100" if pct >= 100 else "ai_budget_80"
            self._alert(
                kind,
                None,
                f"Global AI budget at {pct:.0f}% this month ({ledger.global_spent:.2f} of {g:.2f} USD): "
                + ("AI is off until next month." if pct >= 100 else "enrichment is throttled."),
            )
        for b in brands:
            st = ledger.status(b)
            statuses[b] = st
            budget = ledger.brand_budgets.get(b)
            if budget is not None and budget > 0:
                ratio = ledger.brand_spent.get(b, Decimal(0)) / budget
                if ratio >= ALERT_RATIO:
                    kind = "ai_budget_100" if ratio >= 1 else "ai_budget_80"
                    self._alert(
                        kind,
                        b,
                        f"AI budget of brand {b} at {ratio * 100:.0f}% this month "
                        f"({ledger.brand_spent[b]:.2f} of {budget:.2f} USD): "
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
            rows = (
                conn.execute(sa.select(s.brands).where(s.brands.c.id.in_(list(brand_ids))))
                .mappings()
                .all()
                if brand_ids
                else []
            )
        brands = {r["id"]: dict(r) for r in rows}
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
        peers: dict[str, Any] = {}
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
                        t.ai_error = (
                            None  # no endpoint configured: the analyzer is the intended author
                        )
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
        peers: dict[str, Any] | None = None,
    ) -> list[_Task]:
        ids = list(brands)
        try:
            with self.engine.connect() as conn:
                inputs = load_section_inputs(conn, section, brands, self.now, peers)
                cache = {
                    r["brand_id"]: r
                    for r in conn.execute(
                        sa.select(
                            s.enrichment_cache.c.brand_id,
                            s.enrichment_cache.c.created_at,
                            s.enrichment_cache.c.expires_at,
                            s.enrichment_cache.c.input_fingerprint,
                            s.enrichment_cache.c.generated_by,
                        ).where(
                            s.enrichment_cache.c.section == section,
                            s.enrichment_cache.c.brand_id.in_(ids),
                        )
                    ).mappings()
                }
                sched = {
                    r["brand_id"]: r
                    for r in conn.execute(
                        sa.select(s.enrichment_schedule).where(
                            s.enrichment_schedule.c.section == section,
                            s.enrichment_schedule.c.brand_id.in_(ids),
                        )
                    ).mappings()
                }
        except Exception as exc:  # the batch read failed: every brand of this section fails
            msg = f"could not read the {section} inputs: {type(exc).__name__}: {exc}"
            self._say("error", msg)
            for b in ids:
                report.outcomes.append(self._fail(b, section, msg, logged=False))
            return []
        tasks = []
        for b, brand in brands.items():
            frames, fp = inputs[b]
            c = cache.get(b)
            entry = (
                CacheEntry(
                    c["created_at"], c["expires_at"], c["input_fingerprint"], c["generated_by"]
                )
                if c
                else None
            )
            sc = sched.get(b)
            state = (
                ScheduleState(
                    sc["next_refresh_at"],
                    sc["refresh_requested_at"],
                    sc["invalidated_at"],
                    sc["invalidated_reason"],
                )
                if sc
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

    def _fail(self, brand_id: str, section: str, error: str, logged: bool = False) -> Outcome:
        started = self.now
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    s.enrichment_logs.insert().values(
                        brand_id=brand_id,
                        section=section,
                        status="failed",
                        generated_by=None,
                        tokens=0,
                        cost_usd=Decimal(0),
                        error=error[:2000],
                        run_id=self.run_id,
                        started_at=started,
                        finished_at=utcnow(),
                    )
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
            jobs = [
                lambda c, m=m: c.chat(m, max_tokens=cfg.max_output_tokens) for _t, m in runnable
            ]
            results = client.chat_many(jobs, concurrency=cfg.concurrency)
        finally:
            report.ai_seconds += time.monotonic() - started
            report.llm_counters = dict(client.counters)
        for (t, _m), res in zip(runnable, results):
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
                conn.execute(
                    s.api_billing_tracker.insert().values(
                        brand_id=t.brand["id"],
                        provider=PROVIDER,
                        operation=f"{OPERATION_PREFIX}{t.section}",
                        model=res.model,
                        input_tokens=res.prompt_tokens,
                        output_tokens=res.completion_tokens,
                        cost_usd=t.cost,
                        run_id=self.run_id,
                        occurred_at=self.now,
                    )
                )
        except Exception as exc:  # the call happened; say loudly that its cost was not stored
            self.job_log(
                "error",
                f"could not record the cost of an AI call ({t.cost} USD): {exc}",
                brand_id=t.brand["id"],
            )

    # -- writing -------------------------------------------------------------------------

    def _write(self, t: _Task) -> Outcome:
        b, section, d = t.brand["id"], t.section, t.decision
        now = self.now
        if not d.refresh:
            status = "deferred" if d.action == "defer" else "skipped"
            try:
                with self.engine.begin() as conn:
                    if d.action == "defer":
                        upsert(
                            conn,
                            s.enrichment_schedule,
                            [{"brand_id": b, "section": section, "next_refresh_at": d.defer_until}],
                            ["brand_id", "section"],
                        )
                    conn.execute(
                        s.enrichment_logs.insert().values(
                            brand_id=b,
                            section=section,
                            status=status,
                            generated_by=None,
                            tokens=0,
                            cost_usd=Decimal(0),
                            error=None if status == "skipped" else d.reason,
                            run_id=self.run_id,
                            started_at=now,
                            finished_at=utcnow(),
                        )
                    )
            except Exception as exc:
                return self._fail(b, section, f"could not record the {status} entry: {exc}")
            e = t.entry  # a skipped or deferred entry always exists
            until = d.defer_until or (t.schedule.next_refresh_at if t.schedule else None)
            expired = e is not None and now >= e.expires_at
            return Outcome(
                b,
                section,
                status,
                reason=d.reason,
                fingerprint=e.input_fingerprint if e else None,
                created_at=e.created_at if e else None,
                expires_at=e.expires_at if e else None,
                generated_by=e.generated_by if e else None,
                expired=expired,
                deferred_until=until if expired else None,
            )
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
                upsert(
                    conn,
                    s.enrichment_cache,
                    [
                        {
                            "brand_id": b,
                            "section": section,
                            "payload": payload,
                            "generated_by": generated_by,
                            "input_fingerprint": t.fingerprint,
                            "created_at": now,
                            "expires_at": expires,
                        }
                    ],
                    ["brand_id", "section"],
                )
                upsert(
                    conn,
                    s.enrichment_schedule,
                    [
                        {
                            "brand_id": b,
                            "section": section,
                            "next_refresh_at": expires,
                            "last_refreshed_at": now,
                        }
                    ],
                    ["brand_id", "section"],
                )
                conn.execute(
                    s.enrichment_logs.insert().values(
                        brand_id=b,
                        section=section,
                        status="refreshed",
                        generated_by=generated_by,
                        tokens=tokens,
                        cost_usd=t.cost,
                        error=(f"AI fallback: {t.ai_error}" if t.ai_error else None)[:2000]
                        if t.ai_error
                        else None,
                        run_id=self.run_id,
                        started_at=now,
                        finished_at=utcnow(),
                    )
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
