"""Rows for the enrichment tests: every input of the six sections, relative to a given now."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from marba_dagster.store import schema
from marba_dagster.store.db import insert_many


def seed_brands(
    engine,
    now: datetime,
    brand_ids=("b1", "b2", "b3"),
    *,
    industry: str = "cafe",
    budget: str = "100",
    timezones: dict | None = None,
) -> None:
    timezones = timezones or {}
    today = now.date()
    with engine.begin() as conn:
        insert_many(
            conn,
            schema.brands,
            [
                {
                    "id": b,
                    "name": f"Brand {b}",
                    "industry": industry,
                    "keywords": ["coffee"],
                    "timezone": timezones.get(b, "Europe/Paris"),
                    "monthly_ai_budget_usd": Decimal(budget),
                }
                for b in brand_ids
            ],
        )
        daily, account, patterns, posts, metrics, inbox, opps, comps, gaps, sigs, objs = (
            [] for _ in range(11)
        )
        for i, b in enumerate(brand_ids):
            for d in range(1, 15):
                day = today - timedelta(days=d)
                impressions = 1000 + 10 * d
                daily.append(
                    {
                        "brand_id": b,
                        "platform": "instagram",
                        "metric_date": day,
                        "posts": 1,
                        "impressions": impressions,
                        "reach": impressions // 2,
                        "engagements": int(impressions * (0.02 + 0.01 * i)),
                        "clicks": 5 + i,
                        "followers": 5000 + 20 * (14 - d) + 100 * i,
                        "computed_at": now,
                    }
                )
                account.append(
                    {
                        "brand_id": b,
                        "platform": "instagram",
                        "metric_date": day,
                        "followers": 5000 + 20 * (14 - d) + 100 * i,
                        "collected_at": now,
                    }
                )
            patterns += [
                {
                    "brand_id": b,
                    "platform": "instagram",
                    "pattern_type": "best_posting_time",
                    "pattern_key": "18",
                    "lift": 1.4,
                    "data_points": 120,
                    "confidence": 0.9,
                    "computed_at": now,
                },
                {
                    "brand_id": b,
                    "platform": "instagram",
                    "pattern_type": "content_format",
                    "pattern_key": "reel",
                    "lift": 1.2,
                    "data_points": 40,
                    "confidence": 0.7,
                    "computed_at": now,
                },
                {
                    "brand_id": b,
                    "platform": "instagram",
                    "pattern_type": "hashtag",
                    "pattern_key": "#latte",
                    "lift": 1.5,
                    "data_points": 5,
                    "confidence": 0.3,
                    "computed_at": now,
                },
            ]
            for p in range(4):
                pid = f"{b}-p{p}"
                posts.append(
                    {
                        "id": pid,
                        "brand_id": b,
                        "platform": "instagram",
                        "external_post_id": pid,
                        "body": f"post {p} of {b}",
                        "format": "reel" if p % 2 else "image",
                        "published_at": now - timedelta(days=2 + p),
                        "collected_at": now,
                    }
                )
                metrics.append(
                    {
                        "post_id": pid,
                        "metric_date": today,
                        "impressions": 1000,
                        "reach": 800,
                        "likes": 10 + 20 * p,
                        "comments": 2,
                        "shares": 1,
                        "saves": 1,
                        "clicks": 3,
                        "video_views": 0,
                        "collected_at": now,
                    }
                )
            for k in range(6):
                inbox.append(
                    {
                        "id": f"{b}-i{k}",
                        "brand_id": b,
                        "platform": "instagram",
                        "item_type": "comment",
                        "external_id": f"{b}-ext{k}",
                        "author": f"user{k}",
                        "body": f"comment {k}",
                        "received_at": now - timedelta(days=k * 2, hours=1),
                        "sentiment_score": 0.5 - 0.1 * k,
                        "sentiment_label": "positive",
                        "priority": "urgent" if k == 0 else "normal",
                        "priority_score": 0.9 if k == 0 else 0.3,
                        "status": "new",
                        "collected_at": now,
                    }
                )
            opps.append(
                {
                    "id": f"{b}-o1",
                    "brand_id": b,
                    "opportunity_type": "weather",
                    "title": "Heatwave: iced coffee",
                    "description": "",
                    "urgency": "high",
                    "score": 0.8,
                    "detected_at": now,
                    "updated_at": now,
                    "expires_at": now + timedelta(days=30),
                    "status": "active",
                    "dedup_key": f"{b}-heat",
                    "evidence": {},
                    "suggested_actions": [],
                }
            )
            comps.append(
                {
                    "id": f"{b}-c1",
                    "brand_id": b,
                    "name": "Rival Roasters",
                    "watch_urls": [],
                    "social_accounts": {},
                }
            )
            gaps.append(
                {
                    "id": f"{b}-g1",
                    "brand_id": b,
                    "gap_type": "product",
                    "gap_key": "oat milk",
                    "score": 0.75,
                    "evidence": {},
                    "detected_at": now,
                    "status": "open",
                }
            )
            sigs.append(
                {
                    "id": f"{b}-s1",
                    "brand_id": b,
                    "signal_type": "competitor",
                    "source": "competitive_monitoring",
                    "title": "Rival Roasters cut latte price",
                    "dedup_key": f"{b}-price",
                    "payload": {"change_type": "pricing_change", "competitor_id": f"{b}-c1"},
                    "observed_at": now - timedelta(days=1),
                    "strength": 0.7,
                }
            )
            objs.append(
                {
                    "id": f"{b}-obj1",
                    "brand_id": b,
                    "metric": "followers",
                    "target_value": 6000.0,
                    "baseline_value": 5000.0,
                    "deadline": today + timedelta(days=60),
                }
            )
        insert_many(conn, schema.brand_daily_metrics, daily)
        insert_many(conn, schema.account_metrics, account)
        insert_many(conn, schema.learning_patterns, patterns)
        insert_many(conn, schema.content_posts, posts)
        insert_many(conn, schema.post_metrics, metrics)
        insert_many(conn, schema.engagement_inbox, inbox)
        insert_many(conn, schema.intelligence_opportunities, opps)
        insert_many(conn, schema.competitors, comps)
        insert_many(conn, schema.competitive_gaps, gaps)
        insert_many(conn, schema.intelligence_signals, sigs)
        insert_many(conn, schema.brand_objectives, objs)
