"""reimagine: positioning against competitors: their recent moves, pricing changes, the
open competitive gaps and the competitors that could not be monitored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from marba_dagster.core.enrichment.analyzers.frames import WINDOW_DAYS, frame_of, rounded
from marba_dagster.core.enrichment.analyzers.result import Frames, SectionResult


def _priority(score: float) -> str:
    return "high" if score >= 0.7 else ("medium" if score >= 0.4 else "low")


def analyze_reimagine(
    brand: Mapping[str, Any],  # noqa: ARG001 (the signature every analyzer has)
    frames: Frames,
    now: datetime,  # noqa: ARG001 (the signature every analyzer has)
) -> SectionResult:
    res = SectionResult("reimagine")
    competitors = frame_of(frames, "competitors")
    gaps = frame_of(frames, "gaps")
    signals = frame_of(frames, "competitor_signals")
    if competitors.empty:
        return res.no_data(
            ["competitors"],
            "No competitors are configured for this brand: add some to see positioning and gaps.",
        )
    active = (
        competitors[competitors["is_active"].astype(bool)]
        if "is_active" in competitors
        else competitors
    )
    names = dict(zip(competitors["id"], competitors["name"], strict=True))
    activity: dict[str, dict[str, int]] = {}
    recent_moves = []
    if not signals.empty:
        for sig in signals.sort_values(["observed_at", "id"], ascending=[False, True]).to_dict(
            "records"
        ):
            payload = sig.get("payload") if isinstance(sig.get("payload"), dict) else {}
            comp = (
                payload.get("competitor_name")
                or names.get(payload.get("competitor_id"))
                or sig.get("source")
                or "unknown"
            )
            change = payload.get("change_type") or "other"
            activity.setdefault(comp, {}).setdefault(change, 0)
            activity[comp][change] += 1
            if len(recent_moves) < 10:
                recent_moves.append(
                    {
                        "competitor": comp,
                        "change_type": change,
                        "title": sig["title"],
                        "observed_at": pd.Timestamp(sig["observed_at"]).isoformat(),
                        "strength": rounded(sig.get("strength"), 3),
                    }
                )
    unreachable = []
    if "reachability" in active:
        unreachable = sorted(active.loc[active["reachability"] != "ok", "name"].tolist())
    most_active = sorted(activity.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    if most_active:
        comp, counts = most_active[0]
        detail = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
        res.insight(
            "Most active competitor",
            f"{comp} made the most moves in the last {WINDOW_DAYS} days ({detail}).",
        )
    else:
        res.insight(
            "Competitor activity",
            f"No competitor moves were recorded in the last {WINDOW_DAYS} days across "
            f"{len(active)} watched competitor(s).",
        )
    pricing = [m for m in recent_moves if m["change_type"] == "pricing_change"]
    if pricing:
        res.insight(
            "Pricing moves",
            f"{len(pricing)} competitor pricing change(s), latest: {pricing[0]['title']} "
            f"({pricing[0]['competitor']}).",
        )
        res.recommend(
            "Review your pricing message against the competitor price moves",
            f"{len(pricing)} pricing change(s) in the last {WINDOW_DAYS} days.",
            "high",
        )
    open_gaps = gaps[gaps["status"] == "open"] if not gaps.empty and "status" in gaps else gaps
    gap_rows = []
    if not open_gaps.empty:
        for g in (
            open_gaps.sort_values(["score", "gap_key"], ascending=[False, True])
            .head(5)
            .to_dict("records")
        ):
            gap_rows.append(
                {
                    "gap_type": g["gap_type"],
                    "gap_key": g["gap_key"],
                    "score": rounded(g["score"], 3),
                }
            )
            res.recommend(
                f"Close the {g['gap_type']} gap: {g['gap_key']}",
                f"Competitors cover '{g['gap_key']}' and the brand does not (gap score "
                f"{float(g['score']):.2f}).",
                _priority(float(g["score"])),
                gap_type=g["gap_type"],
                gap_key=g["gap_key"],
            )
        res.insight(
            "Competitive gaps",
            f"{len(open_gaps)} open gap(s); the largest is {gap_rows[0]['gap_type']} "
            f"'{gap_rows[0]['gap_key']}'.",
        )
    else:
        res.insight("Competitive gaps", "No open competitive gaps were found.")
        if gaps.empty:
            res.data_status, res.missing_inputs = "partial", ["competitive_gaps"]
    if unreachable:
        res.insight(
            "Unreachable competitors", f"Could not be monitored recently: {', '.join(unreachable)}."
        )
    res.benchmarks = {
        "competitors": int(len(active)),
        "activity": dict(most_active),
        "recent_moves": recent_moves,
        "gaps": gap_rows,
        "unreachable": unreachable,
    }
    return res
