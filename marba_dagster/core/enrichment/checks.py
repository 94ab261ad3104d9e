"""The one-line descriptions of the enrichment checks: what was lost, in words an operator
reads at a glance (no secrets: causes are short phrases, never error messages)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# How many brand ids a description names (metadata names more; counts are exact).
NAMED_IN_TEXT = 5


def _names(sample: Sequence[str], total: int) -> str:
    shown = ", ".join(sample[:NAMED_IN_TEXT])
    more = total - min(len(sample), NAMED_IN_TEXT)
    return f"{shown} and {more} more" if more > 0 else shown


def entries_summary(
    section: str, active: int, missing: int, expired: int, deferred: int, sample: Sequence[str]
) -> str:
    """``all_entries_current``: active brands without a current entry of ``section``."""
    stale = missing + expired
    if active == 0:
        return "no active brand"
    if stale == 0:
        return f"all {active} active brand(s) have a current {section} entry"
    parts = []
    if expired:
        parts.append(
            f"{expired} expired"
            + (f", {deferred} of them deferred by budget throttling" if deferred else "")
        )
    if missing:
        parts.append(f"{missing} missing")
    return (
        f"{stale} of {active} active brand(s) have no current {section} entry "
        f"({'; '.join(parts)}): {_names(sample, stale)}"
    )


def fallback_summary(
    section: str, calls: int, causes: Mapping[str, int], budget_skipped: int = 0
) -> str:
    """``sources_available`` for the model: how many of the run's model calls for
    ``section`` fell back to the analyzer, and why (most frequent cause first)."""
    budget = (
        f"; {budget_skipped} more left to the analyzer by the AI budget" if budget_skipped else ""
    )
    fell = sum(causes.values())
    if calls == 0:
        return f"no model call was made for {section}{budget}"
    if fell == 0:
        return f"all {calls} {section} model call(s) answered{budget}"
    ranked = sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) == 1:
        return (
            f"{ranked[0][0]}: {fell} of {calls} {section} call(s) fell back to the analyzer{budget}"
        )
    listed = "; ".join(f"{cause}: {n}" for cause, n in ranked)
    return f"{fell} of {calls} {section} call(s) fell back to the analyzer ({listed}){budget}"
