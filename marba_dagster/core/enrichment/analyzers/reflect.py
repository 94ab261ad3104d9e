"""reflect: the sentiment trend of the engagement inbox, the urgent items waiting for
an answer and the active opportunities."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from marba_dagster.core.enrichment.analyzers.frames import frame_of, rounded, utc_times
from marba_dagster.core.enrichment.analyzers.result import Frames, SectionResult

OPEN_INBOX_EXCLUDED = frozenset(
    {"resolved", "replied", "archived", "dismissed", "done", "closed", "ignored"}
)


def analyze_reflect(
    brand: Mapping[str, Any],  # noqa: ARG001 (the signature every analyzer has)
    frames: Frames,
    now: datetime,
) -> SectionResult:
    res = SectionResult("reflect")
    inbox = frame_of(frames, "inbox")
    opps = frame_of(frames, "opportunities")
    if inbox.empty and opps.empty:
        return res.no_data(
            ["engagement_inbox", "intelligence_opportunities"],
            "No engagement collected and no opportunities detected yet.",
        )
    trend: dict[str, Any] = {}
    urgent = []
    if not inbox.empty:
        ib = inbox.assign(received=utc_times(inbox["received_at"]))
        scored = ib.dropna(subset=["sentiment_score"])
        last7 = scored[scored["received"] > now - timedelta(days=7)]["sentiment_score"].astype(
            float
        )
        prev7 = scored[
            (scored["received"] <= now - timedelta(days=7))
            & (scored["received"] > now - timedelta(days=14))
        ]["sentiment_score"].astype(float)
        weekly = []
        for w in range(3, -1, -1):
            lo, hi = now - timedelta(days=7 * (w + 1)), now - timedelta(days=7 * w)
            s = scored[(scored["received"] > lo) & (scored["received"] <= hi)][
                "sentiment_score"
            ].astype(float)
            weekly.append(
                {
                    "week_ending": hi.date().isoformat(),
                    "mean": rounded(s.mean(), 3) if len(s) else None,
                    "items": int(len(s)),
                }
            )
        cur, prev = (
            (float(last7.mean()) if len(last7) else None),
            (float(prev7.mean()) if len(prev7) else None),
        )
        direction = "unknown"
        if cur is not None and prev is not None:
            direction = (
                "improving"
                if cur - prev > 0.05
                else ("declining" if prev - cur > 0.05 else "stable")
            )
        labels = (
            ib["sentiment_label"].dropna().value_counts().to_dict()
            if "sentiment_label" in ib
            else {}
        )
        trend = {
            "last_7d": rounded(cur, 3),
            "previous_7d": rounded(prev, 3),
            "direction": direction,
            "weekly": weekly,
            "labels": {str(k): int(v) for k, v in sorted(labels.items())},
            "items": int(len(ib)),
        }
        if cur is None:
            res.insight("Sentiment", "No scored engagement in the last 7 days.")
        else:
            res.insight(
                "Sentiment trend",
                f"Average sentiment {cur:+.2f} over the last 7 days"
                + (
                    f" against {prev:+.2f} the week before: {direction}."
                    if prev is not None
                    else "."
                ),
            )
        if direction == "declining":
            res.recommend(
                "Look into what drives the negative turn in sentiment",
                f"Sentiment fell from {prev:+.2f} to {cur:+.2f} week on week.",
                "high",
            )
        open_mask = ~ib["status"].astype(str).str.lower().isin(OPEN_INBOX_EXCLUDED)
        urg = ib[(ib["priority"] == "urgent") & open_mask]
        urg = (
            urg.sort_values(["priority_score", "received"], ascending=[False, False])
            if "priority_score" in urg
            else urg
        )
        for it in urg.head(5).to_dict("records"):
            urgent.append(
                {
                    "platform": it["platform"],
                    "item_type": it["item_type"],
                    "author": it.get("author"),
                    "received_at": it["received"].isoformat(),
                    "excerpt": str(it.get("body") or "")[:120],
                }
            )
        if len(urg):
            res.insight(
                "Urgent inbox items",
                f"{len(urg)} urgent item(s) wait for an answer; the oldest arrived "
                f"{urg['received'].min().isoformat()}.",
            )
            res.recommend(
                f"Answer the {len(urg)} urgent inbox item(s)",
                "Urgent items are complaints, crises or high-reach mentions.",
                "high",
            )
        else:
            res.insight("Urgent inbox items", "No urgent item is waiting.")
    else:
        res.data_status, res.missing_inputs = "partial", ["engagement_inbox"]
    active = []
    if not opps.empty:
        o = opps[opps["status"] == "active"].copy()
        if not o.empty:
            exp = utc_times(o["expires_at"]) if "expires_at" in o else None
            if exp is not None:
                o = o[exp.isna() | (exp > now)]
            o = o.sort_values(["score", "id"], ascending=[False, True])
            for it in o.head(5).to_dict("records"):
                active.append(
                    {
                        "title": it["title"],
                        "type": it["opportunity_type"],
                        "urgency": it["urgency"],
                        "score": rounded(it["score"], 3),
                        "expires_at": pd.Timestamp(it["expires_at"]).isoformat()
                        if it.get("expires_at") is not None and not pd.isna(it.get("expires_at"))
                        else None,
                    }
                )
        if active:
            res.insight(
                "Active opportunities",
                f"{len(o)} active; best: {active[0]['title']} ({active[0]['urgency']}, score "
                f"{active[0]['score']}).",
            )
            for a in active[:3]:
                res.recommend(
                    f"Act on: {a['title']}",
                    f"{a['type'].replace('_', ' ')} opportunity, urgency {a['urgency']}.",
                    "high" if a["urgency"] in ("critical", "high") else "medium",
                )
        else:
            res.insight("Active opportunities", "No active opportunity right now.")
    else:
        res.insight("Active opportunities", "No opportunities detected yet.")
        if res.data_status == "ok":
            res.data_status, res.missing_inputs = "partial", ["intelligence_opportunities"]
    res.benchmarks = {"sentiment": trend, "urgent_items": urgent, "opportunities": active}
    return res
