"""engagement_collector: comments, mentions, direct messages and reviews into
``engagement_inbox`` with sentiment and priority (group ``engagement``, hourly partitions).

Each hourly partition collects what the platforms hold up to the end of its hour:
comments on the brand's Facebook and Instagram posts of the last ``RECENT_POST_DAYS``,
X mentions and direct messages of the last ``LOOKBACK_HOURS``, and every Google Business
Profile review. Rows are upserted by ``(platform, external_id)``, so overlapping windows and
re-runs never duplicate; the app's ``status`` and the ``notified_at`` mark are never
overwritten. Items whose priority is ``urgent`` are pushed to the webhook once.

A brand with an account that could not be read shows in ``all_brands_processed``; a platform
API that failed for every account asked shows in ``sources_available``; ``inbox_items_valid``
checks the sentiment and priority of the items collected in the last day.
"""

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg
import sqlalchemy as sa

from marba_dagster.connectors.describe import describe_error
from marba_dagster.connectors.engagement import GbpReviews, GraphEngagement, InboxItem, XEngagement
from marba_dagster.connectors.http import HttpError
from marba_dagster.core import priority as prio_rules
from marba_dagster.core import sentiment as sentiment_rules
from marba_dagster.core.priority import URGENT, prioritise
from marba_dagster.core.sentiment import analyzer
from marba_dagster.defs import pools
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.metadata import markdown_table
from marba_dagster.defs.partitions import hourly_partitions
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.defs.retries import ENGAGEMENT_RETRY
from marba_dagster.services.notifications import push_once, settled
from marba_dagster.services.prefetch import prefetch
from marba_dagster.store import schema as s
from marba_dagster.store.accounts import mark_needs_reconnect
from marba_dagster.store.db import upsert
from marba_dagster.store.types import utcnow

RECENT_POST_DAYS = 7
LOOKBACK_HOURS = 48
# The outside API each platform's engagement is read through.
PLATFORM_APIS = {
    "facebook": "Graph API",
    "instagram": "Graph API",
    "x": "X API",
    "google_business": "Google Business Profile API",
}
# Columns a new collection may change; status (the app's) and notified_at are left alone.
UPDATE_COLUMNS = [
    "body",
    "author",
    "author_followers",
    "rating",
    "sentiment_score",
    "sentiment_label",
    "priority",
    "priority_score",
    "parent_external_id",
    "collected_at",
]


def inbox_id(platform: str, external_id: str) -> str:
    return hashlib.sha1(f"{platform}:{external_id}".encode()).hexdigest()


def token_rejected(err: HttpError) -> bool:
    if err.status == 401:
        return True
    data = err.error_json
    return (
        isinstance(data, dict)
        and isinstance(data.get("error"), dict)
        and data["error"].get("code") in (190, 102)
    )


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
        prio = prioritise(
            text=it.body,
            sentiment_score=sent.score,
            item_type=it.item_type,
            rating=it.rating,
            author_followers=it.author_followers,
            age_hours=age_h,
        )
        rows.append(
            {
                "id": inbox_id(it.platform, it.external_id),
                "brand_id": brand_id,
                "platform": it.platform,
                "item_type": it.item_type,
                "external_id": it.external_id,
                "parent_external_id": it.parent_external_id,
                "author": (it.author or None) and it.author[:200],
                "author_followers": it.author_followers,
                "body": it.body,
                "rating": it.rating,
                "received_at": it.received_at,
                "sentiment_score": sent.score,
                "sentiment_label": sent.label,
                "priority": prio.label,
                "priority_score": prio.score,
                "status": "new",
                "collected_at": utcnow(),
            }
        )
    return rows


@dataclasses.dataclass
class Collectors:
    graph: GraphEngagement
    x: XEngagement
    gbp: GbpReviews


@dataclasses.dataclass
class AccountFailure:
    """An account whose items could not be read (its other accounts still were)."""

    platform: str
    account_id: str
    error: Exception

    @property
    def cause(self) -> str:
        """One line: HTTP status, timeout or malformed answer; no URL, no token."""
        if isinstance(self.error, HttpError):
            return describe_error(self.error)
        return describe_error(self.error).replace(
            f"{type(self.error).__name__}:", "malformed answer:", 1
        )

    def __str__(self) -> str:
        if isinstance(self.error, HttpError):
            return f"{self.platform}: {self.error}"
        return f"{self.platform}: {type(self.error).__name__}: {self.error}"


@dataclasses.dataclass
class Collected:
    """One brand's scored rows, the accounts that failed and the platforms asked (one entry
    per account a request was made for)."""

    rows: list[dict]
    failures: list[AccountFailure]
    asked: list[str]


def collect_brand(
    engine, brand_id: str, window_end: datetime, c: Collectors, warn: Callable[[str], None]
) -> Collected:
    """Scored rows and failures for one brand up to ``window_end``; accounts whose token
    the platform rejects are flagged ``needs_reconnect`` and skipped."""
    pa, cp, sc = s.platform_accounts, s.content_posts, s.scheduled_content
    since = window_end - timedelta(days=RECENT_POST_DAYS)
    with engine.connect() as conn:
        accounts = (
            conn.execute(
                sa.select(
                    pa.c.id, pa.c.platform, pa.c.external_account_id, pa.c.access_token
                ).where(
                    pa.c.brand_id == brand_id,
                    pa.c.is_active.is_(True),
                    pa.c.needs_reconnect.is_(False),
                    pa.c.access_token.is_not(None),
                )
            )
            .mappings()
            .all()
        )
        posts: dict[str, set[str]] = {"facebook": set(), "instagram": set()}
        for platform, ext in conn.execute(
            sa.select(cp.c.platform, cp.c.external_post_id).where(
                cp.c.brand_id == brand_id,
                cp.c.platform.in_(list(posts)),
                cp.c.published_at >= since,
                cp.c.published_at < window_end,
            )
        ):
            posts[platform].add(ext)
        for platform, ext in conn.execute(
            sa.select(sc.c.platform, sc.c.external_post_id).where(
                sc.c.brand_id == brand_id,
                sc.c.platform.in_(list(posts)),
                sc.c.status == "published",
                sc.c.external_post_id.is_not(None),
                sc.c.published_at >= since,
                sc.c.published_at < window_end,
            )
        ):
            posts[platform].add(ext)

    items: list[InboxItem] = []
    failures: list[AccountFailure] = []
    asked: list[str] = []
    start = window_end - timedelta(hours=LOOKBACK_HOURS)
    for acct in accounts:
        platform, token, ext = acct["platform"], acct["access_token"], acct["external_account_id"]
        if platform in posts and not posts[platform]:
            continue  # no recent post: nothing to ask
        if platform in PLATFORM_APIS:
            asked.append(platform)
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
                    mark_needs_reconnect(conn, acct["id"], f"engagement collector: {err.message}")
                warn(f"{platform} account {acct['id']}: token rejected; flagged for reconnection")
                asked.remove(platform)  # the platform answered: the source is up
            else:
                failures.append(AccountFailure(platform, acct["id"], err))
        except (ValueError, KeyError) as err:
            failures.append(AccountFailure(platform, acct["id"], err))
    kept = [i for i in items if i.received_at < window_end]
    return Collected(score_items(kept, brand_id, window_end), failures, asked)


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
        urgent = (
            conn.execute(
                sa.select(
                    ei.c.id,
                    ei.c.platform,
                    ei.c.item_type,
                    ei.c.external_id,
                    ei.c.author,
                    ei.c.body,
                    ei.c.rating,
                    ei.c.priority_score,
                )
                .where(
                    ei.c.brand_id == brand_id, ei.c.priority == URGENT, ei.c.notified_at.is_(None)
                )
                .order_by(ei.c.priority_score.desc())
            )
            .mappings()
            .all()
        )
    pushed = 0
    for r in urgent:
        stars = f" ({r['rating']}★)" if r["rating"] else ""
        text = (
            f":rotating_light: Urgent {r['platform']} {r['item_type']}{stars} for brand {brand_id} "
            f'from {r["author"] or "someone"}: "{(r["body"] or "")[:280]}"'
        )
        key = f"engagement-urgent:{r['platform']}:{r['external_id']}"[:200]
        status = push_once(
            engine,
            webhook_url,
            dedup_key=key,
            kind="engagement_urgent",
            text=text,
            brand_id=brand_id,
        )
        pushed += status == "sent"
        if status not in ("sent", "logged") and not (
            status == "duplicate" and settled(engine, key)
        ):
            continue
        with engine.begin() as conn:
            conn.execute(
                sa.update(ei)
                .where(ei.c.id == r["id"], ei.c.notified_at.is_(None))
                .values(notified_at=utcnow())
            )
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
        "(emoji-aware) and a priority; urgent items are pushed to the webhook once. Brands with "
        "an account that could not be read, and platform APIs that failed for every account "
        "asked, are named by WARN checks."
    ),
    check_specs=completeness_check_specs("engagement_inbox", sources=True),
    retry_policy=ENGAGEMENT_RETRY,
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
    with (
        graph_api.client("graph_engagement") as g,
        x_api.client("x_engagement") as x,
        gbp_api.client("gbp_reviews") as gb,
    ):
        collectors = Collectors(GraphEngagement(g), XEngagement(x), GbpReviews(gb))

        def fetch(brand_id: str) -> Collected:
            return collect_brand(
                engine,
                brand_id,
                window_end,
                collectors,
                lambda m: batch.log(brand_id, "warning", m),
            )

        asked: dict[str, int] = {}
        failed: dict[str, list[tuple[str, AccountFailure]]] = {}

        # The platform calls of several brands overlap (threads); storing, pushing and the
        # per-brand bookkeeping run here, one brand at a time, in the brands' order.
        for brand_id, fetched in prefetch(brands, fetch):

            def work(brand_id=brand_id, fetched=fetched):
                collected = fetched.result()
                rows, failures = collected.rows, collected.failures
                for platform in collected.asked:
                    asked[PLATFORM_APIS[platform]] = asked.get(PLATFORM_APIS[platform], 0) + 1
                for f in failures:
                    failed.setdefault(PLATFORM_APIS.get(f.platform, f.platform), []).append(
                        (brand_id, f)
                    )
                store_rows(engine, rows)
                totals["items"] += len(rows)
                totals["urgent"] += sum(r["priority"] == URGENT for r in rows)
                totals["negative"] += sum(r["sentiment_label"] == "negative" for r in rows)
                totals["pushed"] += push_urgent(engine, notifier.webhook_url, brand_id)
                preview.extend(rows)
                if failures:
                    for f in failures:  # the full error (redacted URL included) for job_logs
                        batch.log(
                            brand_id,
                            "error",
                            f"{f.platform} account {f.account_id} not collected: {f}"[:2000],
                        )
                    raise RuntimeError(
                        "; ".join(
                            f"{f.platform} account {f.account_id}: {f.cause}" for f in failures
                        )
                    )

            batch.run(brand_id, work)
        # A platform API that failed for every account asked is a lost source.
        for api, fails in sorted(failed.items()):
            if len(fails) >= asked.get(api, 0):
                batch.lose_source(api, fails[0][1].cause, sorted({b for b, _ in fails}))
    batch.finish()
    preview.sort(key=lambda r: -r["priority_score"])
    return dg.MaterializeResult(
        metadata={
            **batch.metadata(),
            "items": totals["items"],
            "urgent_items": totals["urgent"],
            "negative_items": totals["negative"],
            "urgent_pushed": totals["pushed"],
            "preview": dg.MetadataValue.md(
                markdown_table(
                    preview,
                    [
                        "platform",
                        "item_type",
                        "priority",
                        "priority_score",
                        "sentiment_label",
                        "body",
                    ],
                )
            ),
        },
        check_results=batch.check_results("engagement_inbox", sources=True),
    )


# Items checked: those collected (inserted or refreshed) within this window.
CHECK_WINDOW = timedelta(days=1)
CHECK_EXAMPLES = 10
# Scores are stored rounded to 4 decimals; a label decided on the unrounded value may sit
# this close to a threshold on the other side.
LABEL_TOLERANCE = 1e-3
SENTIMENT_LABELS = ("positive", "neutral", "negative")


def inbox_problems(conn, since: datetime) -> tuple[int, dict[str, int], list[dict]]:
    """(items checked, count per problem, examples) for the items collected since ``since``."""
    ei = s.engagement_inbox
    score, label = ei.c.sentiment_score, ei.c.sentiment_label
    pscore, plabel = ei.c.priority_score, ei.c.priority
    pos, neg, tol = (
        sentiment_rules.POSITIVE_THRESHOLD,
        sentiment_rules.NEGATIVE_THRESHOLD,
        LABEL_TOLERANCE,
    )
    bands = dict(prio_rules.THRESHOLDS)
    problems = {
        "sentiment_out_of_range": sa.or_(score.is_(None), score < -1, score > 1),
        "sentiment_label_invalid": sa.or_(
            label.is_(None),
            label.not_in(SENTIMENT_LABELS),
            sa.and_(label == "positive", score < pos - tol),
            sa.and_(label == "negative", score > neg + tol),
            sa.and_(label == "neutral", sa.or_(score > pos + tol, score < neg - tol)),
        ),
        "priority_invalid": sa.or_(
            plabel.is_(None),
            plabel.not_in(s.INBOX_PRIORITIES),
            pscore.is_(None),
            pscore < 0,
            pscore > 1,
            sa.and_(plabel == prio_rules.URGENT, pscore < bands[prio_rules.URGENT] - tol),
            sa.and_(
                plabel == prio_rules.HIGH,
                sa.or_(
                    pscore < bands[prio_rules.HIGH] - tol, pscore > bands[prio_rules.URGENT] + tol
                ),
            ),
            sa.and_(
                plabel == prio_rules.NORMAL,
                sa.or_(
                    pscore < bands[prio_rules.NORMAL] - tol, pscore > bands[prio_rules.HIGH] + tol
                ),
            ),
            sa.and_(plabel == prio_rules.LOW, pscore > bands[prio_rules.NORMAL] + tol),
        ),
        "rating_out_of_range": sa.and_(
            ei.c.rating.is_not(None), sa.or_(ei.c.rating < 1, ei.c.rating > 5)
        ),
    }
    scope = ei.c.collected_at >= since
    counts = {
        name: int(n)
        for name, n in zip(
            problems,
            conn.execute(
                sa.select(*[sa.func.count().filter(cond) for cond in problems.values()]).where(
                    scope
                )
            ).one(),
        )
    }
    checked = int(conn.execute(sa.select(sa.func.count()).where(scope)).scalar_one())
    examples: list[dict] = []
    for name, cond in problems.items():
        if counts[name] and len(examples) < CHECK_EXAMPLES:
            for r in conn.execute(
                sa.select(
                    ei.c.brand_id, ei.c.platform, ei.c.external_id, score, label, plabel, pscore
                )
                .where(scope, cond)
                .order_by(ei.c.id)
                .limit(CHECK_EXAMPLES - len(examples))
            ):
                examples.append(
                    {
                        "problem": name,
                        "brand_id": r.brand_id,
                        "platform": r.platform,
                        "external_id": r.external_id,
                        "sentiment_score": r.sentiment_score,
                        "sentiment_label": r.sentiment_label,
                        "priority": r.priority,
                        "priority_score": r.priority_score,
                    }
                )
    return checked, counts, examples


PROBLEM_TEXT = {
    "sentiment_out_of_range": "with a sentiment score missing or outside [-1, 1]",
    "sentiment_label_invalid": "with a sentiment label missing, unknown or not matching its score",
    "priority_invalid": "with a priority missing, unknown or not matching its score",
    "rating_out_of_range": "with a rating outside 1..5",
}


@dg.asset_check(
    asset=engagement_inbox,
    blocking=False,
    description="Items collected in the last day have a sentiment score in [-1, 1] with the label its "
    "score implies (VADER's ±0.05), a known priority matching its score's band, and a rating "
    "in 1..5 if any. (One row per platform and external id is enforced by a unique constraint.)",
)
def inbox_items_valid(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    with marba_db.connect() as conn:
        checked, counts, examples = inbox_problems(conn, utcnow() - CHECK_WINDOW)
    bad = {k: v for k, v in counts.items() if v}
    if bad:
        description = (
            f"{sum(bad.values())} problem(s) in {checked} inbox item(s): "
            + ", ".join(f"{n} {PROBLEM_TEXT[k]}" for k, n in bad.items())
            + " (e.g. "
            + ", ".join(
                list(dict.fromkeys(f"{e['platform']}/{e['external_id']}" for e in examples))[:3]
            )
            + ")"
        )
    else:
        description = f"{checked} inbox item(s) valid"
    return dg.AssetCheckResult(
        passed=not bad,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"items_checked": checked, **counts, "examples": dg.MetadataValue.json(examples)},
    )
