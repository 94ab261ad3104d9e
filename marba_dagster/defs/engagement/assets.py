"""engagement_collector: comments, mentions, direct messages and reviews into
``engagement_inbox`` with sentiment and priority (group ``engagement``, hourly partitions).

Each hourly partition collects what the platforms hold up to the end of its hour:
comments on the brand's Facebook and Instagram posts of the last ``RECENT_POST_DAYS``,
X mentions and direct messages of the last ``LOOKBACK_HOURS``, and every Google Business
Profile review. Rows are upserted by ``(platform, external_id)``, so overlapping windows and
re-runs never duplicate; the app's ``status`` and the ``notified_at`` mark are never
overwritten. Items whose priority is ``urgent`` are pushed to the webhook once.
"""

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg
import sqlalchemy as sa

from marba_dagster.connectors.engagement import GbpReviews, GraphEngagement, InboxItem, XEngagement
from marba_dagster.connectors.http import HttpError
from marba_dagster.core.priority import URGENT, prioritise
from marba_dagster.core.sentiment import analyzer
from marba_dagster.defs import pools
from marba_dagster.defs.common import BrandBatch, markdown_table, prefetch, scoped_brand_ids
from marba_dagster.defs.partitions import hourly_partitions
from marba_dagster.defs.publishing.alerts import push_once, settled
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert
from marba_dagster.store.types import utcnow

RECENT_POST_DAYS = 7
LOOKBACK_HOURS = 48
# Columns a new collection may change; status (the app's) and notified_at are left alone.
UPDATE_COLUMNS = [
    "body", "author", "author_followers", "rating", "sentiment_score", "sentiment_label",
    "priority", "priority_score", "parent_external_id", "collected_at",
]


def inbox_id(platform: str, external_id: str) -> str:
    return hashlib.sha1(f"{platform}:{external_id}".encode()).hexdigest()


def token_rejected(err: HttpError) -> bool:
    if err.status == 401:
        return True
    data = err.error_json
    return isinstance(data, dict) and isinstance(data.get("error"), dict) and data["error"].get("code") in (190, 102)


def gbp_location_name(external_account_id: str) -> str:
    """The review location: the id as stored if it is a resource name, else accounts/{id}/locations/{id}."""
    if external_account_id.startswith("accounts/") and "/locations/" in external_account_id:
        return external_account_id
    return f"accounts/{external_account_id}/locations/{external_account_id}"


def score_items(items: list[InboxItem], brand_id: str, as_of: datetime) -> list[dict]:
    sa_ = analyzer()
    rows = []
    for it in items:
        sent = sa_.score(it.body)
        age_h = max(0.0, (as_of - it.received_at).total_seconds() / 3600)
        prio = prioritise(text=it.body, sentiment_score=sent.score, item_type=it.item_type,
                          rating=it.rating, author_followers=it.author_followers, age_hours=age_h)
        rows.append({
            "id": inbox_id(it.platform, it.external_id), "brand_id": brand_id, "platform": it.platform,
            "item_type": it.item_type, "external_id": it.external_id,
            "parent_external_id": it.parent_external_id, "author": (it.author or None) and it.author[:200],
            "author_followers": it.author_followers, "body": it.body, "rating": it.rating,
            "received_at": it.received_at, "sentiment_score": sent.score, "sentiment_label": sent.label,
            "priority": prio.label, "priority_score": prio.score, "status": "new", "collected_at": utcnow(),
        })
    return rows


@dataclasses.dataclass
class Collectors:
    graph: GraphEngagement
    x: XEngagement
    gbp: GbpReviews


def collect_brand(engine, brand_id: str, window_end: datetime, c: Collectors,
                  warn: Callable[[str], None]) -> tuple[list[dict], list[str]]:
    """(scored rows, errors) for one brand up to ``window_end``; accounts whose token the
    platform rejects are flagged ``needs_reconnect`` and skipped."""
    pa, cp, sc = s.platform_accounts, s.content_posts, s.scheduled_content
    since = window_end - timedelta(days=RECENT_POST_DAYS)
    with engine.connect() as conn:
        accounts = conn.execute(
            sa.select(pa.c.id, pa.c.platform, pa.c.external_account_id, pa.c.access_token)
            .where(pa.c.brand_id == brand_id, pa.c.is_active.is_(True), pa.c.needs_reconnect.is_(False),
                   pa.c.access_token.is_not(None))
        ).mappings().all()
        posts: dict[str, set[str]] = {"facebook": set(), "instagram": set()}
        for platform, ext in conn.execute(
            sa.select(cp.c.platform, cp.c.external_post_id).where(
                cp.c.brand_id == brand_id, cp.c.platform.in_(list(posts)),
                cp.c.published_at >= since, cp.c.published_at < window_end)
        ):
            posts[platform].add(ext)
        for platform, ext in conn.execute(
            sa.select(sc.c.platform, sc.c.external_post_id).where(
                sc.c.brand_id == brand_id, sc.c.platform.in_(list(posts)), sc.c.status == "published",
                sc.c.external_post_id.is_not(None), sc.c.published_at >= since, sc.c.published_at < window_end)
        ):
            posts[platform].add(ext)

    items: list[InboxItem] = []
    errors: list[str] = []
    start = window_end - timedelta(hours=LOOKBACK_HOURS)
    for acct in accounts:
        platform, token, ext = acct["platform"], acct["access_token"], acct["external_account_id"]
        try:
            if platform == "facebook":
                for post_id in sorted(posts["facebook"]):
                    items += c.graph.facebook_comments(post_id, token)
            elif platform == "instagram":
                for media_id in sorted(posts["instagram"]):
                    items += c.graph.instagram_comments(media_id, token)
            elif platform == "x":
                items += c.x.mentions(ext, token, start, window_end)
                items += c.x.direct_messages(ext, token, start, window_end)
            elif platform == "google_business":
                items += c.gbp.reviews(gbp_location_name(ext), token)
        except HttpError as err:
            if token_rejected(err):
                with engine.begin() as conn:
                    conn.execute(sa.update(pa).where(pa.c.id == acct["id"]).values(
                        needs_reconnect=True, reconnect_reason=f"engagement collector: {err.message}"[:500]))
                warn(f"{platform} account {acct['id']}: token rejected; flagged for reconnection")
            else:
                errors.append(f"{platform}: {err}")
        except (ValueError, KeyError) as err:
            errors.append(f"{platform}: {type(err).__name__}: {err}")
    kept = [i for i in items if i.received_at < window_end]
    return score_items(kept, brand_id, window_end), errors


def store_rows(engine, rows: list[dict]) -> int:
    with engine.begin() as conn:
        return upsert(conn, s.engagement_inbox, rows, ["platform", "external_id"], UPDATE_COLUMNS)


def push_urgent(engine, webhook_url: str | None, brand_id: str) -> int:
    """Push every urgent, not yet notified item of the brand once; returns how many were sent.

    An item is marked notified only once its alert is delivered (or logged with no webhook):
    a push that failed leaves it unmarked, so the next run tries again (``push_once`` bounds
    the attempts)."""
    ei = s.engagement_inbox
    with engine.connect() as conn:
        urgent = conn.execute(
            sa.select(ei.c.id, ei.c.platform, ei.c.item_type, ei.c.external_id, ei.c.author, ei.c.body,
                      ei.c.rating, ei.c.priority_score)
            .where(ei.c.brand_id == brand_id, ei.c.priority == URGENT, ei.c.notified_at.is_(None))
            .order_by(ei.c.priority_score.desc())
        ).mappings().all()
    pushed = 0
    for r in urgent:
        stars = f" ({r['rating']}★)" if r["rating"] else ""
        text = (f":rotating_light: Urgent {r['platform']} {r['item_type']}{stars} for brand {brand_id} "
                f"from {r['author'] or 'someone'}: \"{(r['body'] or '')[:280]}\"")
        key = f"engagement-urgent:{r['platform']}:{r['external_id']}"[:200]
        status = push_once(engine, webhook_url, dedup_key=key, kind="engagement_urgent", text=text, brand_id=brand_id)
        pushed += status == "sent"
        if status not in ("sent", "logged") and not (status == "duplicate" and settled(engine, key)):
            continue
        with engine.begin() as conn:
            conn.execute(sa.update(ei).where(ei.c.id == r["id"], ei.c.notified_at.is_(None)).values(notified_at=utcnow()))
    return pushed


@dg.asset(
    name="engagement_inbox",
    group_name="engagement",
    partitions_def=hourly_partitions,
    kinds={"python", "sql"},
    pool=pools.PLATFORM_READS,
    description=(
        "Comments (Facebook, Instagram), X mentions and direct messages, and Google Business "
        "Profile reviews, upserted into engagement_inbox by external id, with VADER sentiment "
        "(emoji-aware) and a priority; urgent items are pushed to the webhook once."
    ),
    retry_policy=dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
)
def engagement_inbox(
    context: dg.AssetExecutionContext,
    marba_db: MarbaDatabase,
    graph_api: ApiEndpoint,
    x_api: ApiEndpoint,
    gbp_api: ApiEndpoint,
    notifier: Notifier,
) -> dg.MaterializeResult:
    window = context.partition_time_window
    window_end = window.end
    engine = marba_db.engine
    brands = scoped_brand_ids(context, marba_db)
    batch = BrandBatch(context, marba_db)
    totals = {"items": 0, "urgent": 0, "negative": 0, "pushed": 0}
    preview: list[dict] = []
    with graph_api.client("graph_engagement") as g, x_api.client("x_engagement") as x, gbp_api.client("gbp_reviews") as gb:
        collectors = Collectors(GraphEngagement(g), XEngagement(x), GbpReviews(gb))

        def fetch(brand_id: str) -> tuple[list[dict], list[str]]:
            return collect_brand(engine, brand_id, window_end, collectors,
                                 lambda m: batch.log(brand_id, "warning", m))

        # The platform calls of several brands overlap (threads); storing, pushing and the
        # per-brand bookkeeping run here, one brand at a time, in the brands' order.
        for brand_id, fetched in prefetch(brands, fetch):
            def work(brand_id=brand_id, fetched=fetched):
                rows, errors = fetched.result()
                store_rows(engine, rows)
                totals["items"] += len(rows)
                totals["urgent"] += sum(r["priority"] == URGENT for r in rows)
                totals["negative"] += sum(r["sentiment_label"] == "negative" for r in rows)
                totals["pushed"] += push_urgent(engine, notifier.webhook_url, brand_id)
                preview.extend(rows)
                if errors:
                    raise RuntimeError("; ".join(errors)[:1000])

            batch.run(brand_id, work)
    batch.finish()
    preview.sort(key=lambda r: -r["priority_score"])
    return dg.MaterializeResult(metadata={
        **batch.metadata(),
        "items": totals["items"],
        "urgent_items": totals["urgent"],
        "negative_items": totals["negative"],
        "urgent_pushed": totals["pushed"],
        "preview": dg.MetadataValue.md(markdown_table(
            preview, ["platform", "item_type", "priority", "priority_score", "sentiment_label", "body"])),
    })

