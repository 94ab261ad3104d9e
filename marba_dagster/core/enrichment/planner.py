"""Cache decisions: refresh a section now, keep it, or defer it (budget throttling).

An entry is refreshed when it is missing, when its TTL has passed, when the app asked for it
(``refresh_requested_at`` after the entry was made), when another job invalidated it
(``invalidated_at`` after the entry was made) or when its input fingerprint changed. Under
budget throttling only missing and expired entries are refreshed, and the least
time-sensitive sections are deferred a day before they are.

A forced refresh (``force=<reason>``: a person asked, see ``refresh.refresh_mode``)
recomputes the entry whatever its TTL and fingerprint. Budgets and throttling still decide
whether the model is called: when the TTL-aware decision would have refreshed anyway, the
model is allowed as it would have been; otherwise only under a budget that is not
throttled or exhausted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .budget import BudgetStatus
from .sections import DEFER_FOR, DEFERRABLE_SECTIONS, check_section


@dataclass(frozen=True)
class CacheEntry:
    created_at: datetime
    expires_at: datetime
    input_fingerprint: str
    generated_by: str = ""


@dataclass(frozen=True)
class ScheduleState:
    next_refresh_at: datetime | None = None
    refresh_requested_at: datetime | None = None
    invalidated_at: datetime | None = None
    invalidated_reason: str | None = None


@dataclass(frozen=True)
class Decision:
    action: str  # "refresh" | "skip" | "defer"
    reason: str
    allow_ai: bool = False
    defer_until: datetime | None = None
    # For a forced refresh, the reason the TTL-aware decision would have given.
    due_reason: str | None = None

    @property
    def refresh(self) -> bool:
        return self.action == "refresh"


def _after(ts: datetime | None, ref: datetime) -> bool:
    return ts is not None and ts > ref


def decide(
    section: str,
    entry: CacheEntry | None,
    schedule: ScheduleState | None,
    fingerprint: str,
    budget: BudgetStatus,
    now: datetime,
    *,
    force: str | None = None,
) -> Decision:
    if force:
        due = decide(section, entry, schedule, fingerprint, budget, now)
        allow_ai = due.allow_ai if due.refresh else budget.level == "ok"
        due_reason = due.reason if due.action == "refresh" else f"{due.action}: {due.reason}"
        return Decision("refresh", force, allow_ai=allow_ai, due_reason=due_reason)
    check_section(section)
    schedule = schedule or ScheduleState()
    ai_ok = budget.level == "ok" or (
        budget.level == "throttled" and section not in DEFERRABLE_SECTIONS
    )
    if entry is None:
        return Decision("refresh", "missing", allow_ai=ai_ok)
    expired = now >= entry.expires_at
    if budget.level == "throttled":
        if not expired:
            return Decision("skip", "fresh (budget throttled: only expired entries are refreshed)")
        if section in DEFERRABLE_SECTIONS:
            nra = schedule.next_refresh_at
            if nra is None or nra <= entry.expires_at:
                until = now + DEFER_FOR
                return Decision("defer", "expired, deferred (budget throttled)", defer_until=until)
            if now < nra:
                return Decision("skip", "deferred (budget throttled)")
            return Decision("refresh", "expired (deferral over)", allow_ai=False)
        return Decision("refresh", "expired", allow_ai=ai_ok)
    if expired:
        return Decision("refresh", "expired", allow_ai=ai_ok)
    if _after(schedule.refresh_requested_at, entry.created_at):
        return Decision("refresh", "requested", allow_ai=ai_ok)
    if _after(schedule.invalidated_at, entry.created_at):
        why = f": {schedule.invalidated_reason}" if schedule.invalidated_reason else ""
        return Decision("refresh", f"invalidated{why}", allow_ai=ai_ok)
    if entry.input_fingerprint != fingerprint:
        return Decision("refresh", "inputs changed", allow_ai=ai_ok)
    return Decision("skip", "fresh, inputs unchanged")
