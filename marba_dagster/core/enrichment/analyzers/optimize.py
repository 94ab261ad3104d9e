"""optimize: the best and worst content, and the recommendations of the learning
patterns whose confidence is above the threshold and whose lift beats the baseline."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marba_dagster.core.enrichment.analyzers.frames import (
    CONFIDENCE_THRESHOLD,
    confident_patterns,
    frame_of,
    percent,
    rounded,
)
from marba_dagster.core.enrichment.analyzers.result import Frames, SectionResult


def analyze_optimize(
    brand: Mapping[str, Any],  # noqa: ARG001 (the signature every analyzer has)
    frames: Frames,
    now: datetime,  # noqa: ARG001 (the signature every analyzer has)
) -> SectionResult:
    res = SectionResult("optimize")
    patterns = frame_of(frames, "patterns")
    perf = frame_of(frames, "post_performance")  # one row per post: latest metrics
    if patterns.empty and perf.empty:
        return res.no_data(
            ["learning_patterns", "content_posts"],
            "No published posts with metrics and no learning patterns yet: nothing to optimise "
            "from.",
        )
    top, bottom = [], []
    if not perf.empty:
        p = perf[perf["impressions"] > 0].copy()
        p["engagements"] = p[["likes", "comments", "shares", "saves"]].sum(axis=1)
        p["engagement_rate"] = p["engagements"] / p["impressions"]
        p = p.sort_values(["engagement_rate", "id"], ascending=[False, True])
        cols = ["id", "platform", "format", "engagement_rate", "impressions", "body"]

        def rows(df):
            return [
                {
                    "post_id": r["id"],
                    "platform": r["platform"],
                    "format": r["format"],
                    "engagement_rate": rounded(r["engagement_rate"], 6),
                    "impressions": int(r["impressions"]),
                    "excerpt": str(r["body"] or "")[:80],
                }
                for r in df[cols].to_dict("records")
            ]

        n = min(3, len(p) // 2) if len(p) >= 2 else len(p)
        top = rows(p.head(n))
        bottom = rows(p.tail(n).iloc[::-1]) if len(p) >= 2 else []
        if top:
            t = top[0]
            res.insight(
                "Best content",
                f"Top post: {t['format']} on {t['platform']} at {percent(t['engagement_rate'])} "
                f"engagement ('{t['excerpt']}').",
            )
        if bottom:
            b = bottom[0]
            res.insight(
                "Weakest content",
                f"Weakest post: {b['format']} on {b['platform']} at "
                f"{percent(b['engagement_rate'])} engagement ('{b['excerpt']}').",
            )
        if not top:
            res.insight("Content", "Posts have no impressions yet: no ranking possible.")
    else:
        res.data_status, res.missing_inputs = "partial", ["content_posts"]
    good = confident_patterns(patterns)
    pattern_recs = []
    if not good.empty:
        good = good.sort_values(
            ["confidence", "lift", "pattern_type", "pattern_key"],
            ascending=[False, False, True, True],
        )
        verbs = {
            "best_posting_time": "Post at {k}h local time",
            "content_format": "Use the {k} format",
            "topic": "Post about {k}",
            "power_word": "Use the word '{k}'",
            "hashtag": "Use {k}",
        }
        for pr in good.to_dict("records"):
            lift = float(pr["lift"])
            if lift <= 1.0:
                continue  # a pattern that does worse than baseline is not a recommendation
            action = (
                verbs.get(pr["pattern_type"], "Use {k}").format(k=pr["pattern_key"])
                + f" on {pr['platform']}"
            )
            pattern_recs.append(
                {
                    "pattern_type": pr["pattern_type"],
                    "key": pr["pattern_key"],
                    "platform": pr["platform"],
                    "lift": rounded(lift, 3),
                    "confidence": rounded(pr["confidence"], 2),
                    "data_points": int(pr["data_points"]),
                }
            )
            res.recommend(
                action,
                f"{lift:.2f}x the brand's baseline over {int(pr['data_points'])} posts.",
                "high" if lift >= 1.3 and float(pr["confidence"]) >= 0.7 else "medium",
                confidence=rounded(pr["confidence"], 2),
            )
            if len(pattern_recs) >= 8:
                break
    if patterns.empty:
        res.insight(
            "Recommendations", "No learning patterns yet, so no data-backed recommendations."
        )
        res.data_status, res.missing_inputs = (
            "partial",
            sorted(set(res.missing_inputs) | {"learning_patterns"}),
        )
    elif not pattern_recs:
        res.insight(
            "Recommendations",
            f"No pattern has confidence above {CONFIDENCE_THRESHOLD} and a lift over the baseline "
            "yet.",
        )
    res.benchmarks = {"top_posts": top, "bottom_posts": bottom, "patterns_used": pattern_recs}
    return res
