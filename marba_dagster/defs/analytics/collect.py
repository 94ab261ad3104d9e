"""Collecting one brand's platform accounts: fetch, then write each account atomically.

Each account is fetched completely (every page) before anything is written, and written in
its own transaction, so a failure (malformed page, rate limit after retries, revoked token)
leaves that account's rows exactly as they were while the brand's other accounts and all
other brands go on. A rejected token (HTTP 401, Graph error 190) marks the account
``needs_reconnect`` with a reason and a ``job_logs`` warning; the token itself never appears
in any message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa

from marba_dagster.connectors.describe import describe_error
from marba_dagster.connectors.graph import GraphClient
from marba_dagster.connectors.http import HttpError
from marba_dagster.connectors.social import AccountSnapshot, PlatformPost, TokenRejected
from marba_dagster.connectors.x import XClient
from marba_dagster.store import schema as s
from marba_dagster.store.accounts import mark_needs_reconnect
from marba_dagster.store.db import upsert
from marba_dagster.store.types import utcnow

COLLECTED_PLATFORMS = ("facebook", "instagram", "x")
# The outside API each platform is read through (a source shared by every brand).
PLATFORM_APIS = {"facebook": "Graph API", "instagram": "Graph API", "x": "X API"}
# A post's metrics keep growing for days: each day's run re-reads the posts of this many
# days (the day itself included) and stores their lifetime totals as that day's snapshot.
LOOKBACK_DAYS = 7


def post_row_id(platform: str, external_post_id: str) -> str:
    """A stable id for a post first seen by the collector (seeded rows keep theirs)."""
    digest = hashlib.sha1(f"{platform}:{external_post_id}".encode()).hexdigest()[:24]
    return f"post-{digest}"


def day_start(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=timezone.utc)


class AccountsFailed(Exception):
    """Some of a brand's accounts could not be collected (the others were written)."""


@dataclass
class AccountOutcome:
    account_id: str
    platform: str
    status: str  # ok, reconnect, failed
    posts: int = 0
    metric_rows: int = 0
    followers: int | None = None
    error: str | None = None
    cause: str | None = None  # one line for checks: HTTP status, timeout, malformed answer


@dataclass
class BrandOutcome:
    brand_id: str
    accounts: list[AccountOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[AccountOutcome]:
        return [a for a in self.accounts if a.status == "failed"]


def brand_accounts(conn, brand_id: str) -> list[dict]:
    pa = s.platform_accounts
    rows = conn.execute(
        sa.select(pa.c.id, pa.c.platform, pa.c.external_account_id, pa.c.access_token)
        .where(
            pa.c.brand_id == brand_id,
            pa.c.platform.in_(COLLECTED_PLATFORMS),
            pa.c.is_active.is_(True),
            pa.c.needs_reconnect.is_(False),
        )
        .order_by(pa.c.platform)
    ).mappings()
    return [dict(r) for r in rows]


def fetch_account(
    graph: GraphClient | None, x: XClient | None, account: dict, since: datetime, until: datetime
) -> tuple[list[PlatformPost], AccountSnapshot]:
    platform, ext, token = (
        account["platform"],
        account["external_account_id"],
        account["access_token"],
    )
    if platform == "x":
        return x.posts(ext, token, since, until), x.followers(ext, token)
    return graph.posts(platform, ext, token, since, until), graph.followers(platform, ext, token)


def write_account(
    conn,
    brand_id: str,
    platform: str,
    posts: list[PlatformPost],
    followers: AccountSnapshot | None,
    days: list[date],
    follower_days: list[date],
) -> tuple[int, int]:
    """Upsert posts, their snapshot per day and the follower count; (posts, metric rows)."""
    now = utcnow()
    if posts:
        upsert(
            conn,
            s.content_posts,
            [
                {
                    "id": post_row_id(platform, p.external_post_id),
                    "brand_id": brand_id,
                    "platform": platform,
                    "external_post_id": p.external_post_id,
                    "body": p.body,
                    "format": p.format,
                    "published_at": p.published_at,
                    "permalink": p.permalink,
                    "collected_at": now,
                }
                for p in posts
            ],
            ["platform", "external_post_id"],
            ["body", "format", "published_at", "permalink", "collected_at"],
        )
    ids: dict[str, str] = {}
    ext_ids = [p.external_post_id for p in posts]
    for start in range(0, len(ext_ids), 500):
        chunk = ext_ids[start : start + 500]
        for ext, pid, owner in conn.execute(
            sa.select(
                s.content_posts.c.external_post_id, s.content_posts.c.id, s.content_posts.c.brand_id
            ).where(
                s.content_posts.c.platform == platform,
                s.content_posts.c.external_post_id.in_(chunk),
            )
        ):
            if owner == brand_id:
                ids[ext] = pid
    metric_rows = []
    for p in posts:
        pid = ids.get(p.external_post_id)
        if pid is None:  # the id belongs to another brand's account: never cross brands
            continue
        published = p.published_at.date()
        for d in days:
            if published <= d < published + timedelta(days=LOOKBACK_DAYS):
                metric_rows.append(
                    {"post_id": pid, "metric_date": d, **p.metrics(), "collected_at": now}
                )
    upsert(conn, s.post_metrics, metric_rows, ["post_id", "metric_date"])
    if followers is not None and follower_days:
        upsert(
            conn,
            s.account_metrics,
            [
                {
                    "brand_id": brand_id,
                    "platform": platform,
                    "metric_date": d,
                    "followers": followers.followers,
                    "collected_at": now,
                }
                for d in follower_days
            ],
            ["brand_id", "platform", "metric_date"],
        )
    return len(ids), len(metric_rows)


@dataclass
class FetchedAccount:
    """One account's answer: its posts and follower count, or the error that stopped it."""

    account: dict
    posts: list[PlatformPost] | None = None
    followers: AccountSnapshot | None = None
    error: Exception | None = None


@dataclass
class FetchedBrand:
    brand_id: str
    accounts: list[FetchedAccount]


def fetch_brand(
    brand_id: str,
    *,
    begin: Callable,
    graph: GraphClient | None,
    x: XClient | None,
    days: list[date],
) -> FetchedBrand:
    """Read one brand's connected accounts and fetch each completely; nothing is written.

    Only the platform calls happen here, so the fetches of several brands can overlap in
    threads while writes stay on the caller's thread (``write_brand``). A token that is
    missing or rejected and an HTTP failure are kept per account, never raised.
    """
    since = day_start(days[0] - timedelta(days=LOOKBACK_DAYS - 1))
    until = day_start(days[-1] + timedelta(days=1))
    with begin() as conn:
        accounts = brand_accounts(conn, brand_id)
    out = []
    for acct in accounts:
        fetched = FetchedAccount(acct)
        if acct["access_token"]:
            try:
                fetched.posts, fetched.followers = fetch_account(graph, x, acct, since, until)
            except (TokenRejected, HttpError) as err:
                fetched.error = err
        out.append(fetched)
    return FetchedBrand(brand_id, out)


def write_brand(
    fetched: FetchedBrand,
    *,
    begin: Callable,
    days: list[date],
    today: date,
    log: Callable[[str | None, str, str], None],
) -> BrandOutcome:
    """Write what ``fetch_brand`` got, one transaction per account; record the failures.

    Followers are a point-in-time count: they are written only for days within a day of
    ``today`` (a backfill of older days keeps the stored history).
    """
    brand_id = fetched.brand_id
    follower_days = [d for d in days if d >= today - timedelta(days=1)]
    outcome = BrandOutcome(brand_id)
    for f in fetched.accounts:
        acct, platform = f.account, f.account["platform"]
        result = AccountOutcome(acct["id"], platform, "ok")
        outcome.accounts.append(result)
        if not acct["access_token"]:
            result.status, result.error = "reconnect", "no access token stored"
            with begin() as conn:
                mark_needs_reconnect(conn, acct["id"], result.error)
            log(
                brand_id,
                "warning",
                f"{platform} account {acct['id']} has no token: marked for reconnection",
            )
        elif isinstance(f.error, TokenRejected):
            result.status, result.error = "reconnect", f.error.reason
            with begin() as conn:
                mark_needs_reconnect(conn, acct["id"], f.error.reason)
            log(
                brand_id,
                "warning",
                f"{platform} account {acct['id']} needs reconnection: {f.error.reason}",
            )
        elif f.error is not None:
            result.status, result.error = "failed", f"{type(f.error).__name__}: {f.error}"
            result.cause = describe_error(f.error)
            log(brand_id, "error", f"{platform} account {acct['id']} not collected: {result.error}")
        else:
            with begin() as conn:
                result.posts, result.metric_rows = write_account(
                    conn, brand_id, platform, f.posts, f.followers, days, follower_days
                )
            result.followers = f.followers.followers
    return outcome


def lost_apis(outcomes: list[BrandOutcome]) -> dict[str, tuple[str, list[str]]]:
    """APIs that failed for every account the run asked them about: ``{api: (first cause,
    brands)}``. An account whose token was rejected got an answer, so it keeps its API
    counted as available; one failing account among answering ones is that brand's
    failure, not a lost source."""
    asked: dict[str, int] = {}
    failed: dict[str, list[tuple[str, AccountOutcome]]] = {}
    for o in outcomes:
        for a in o.accounts:
            if a.status == "reconnect" and a.error == "no access token stored":
                continue  # never asked
            api = PLATFORM_APIS[a.platform]
            asked[api] = asked.get(api, 0) + 1
            if a.status == "failed":
                failed.setdefault(api, []).append((o.brand_id, a))
    return {
        api: (fails[0][1].cause or fails[0][1].error or "failed", sorted({b for b, _ in fails}))
        for api, fails in failed.items()
        if len(fails) == asked[api]
    }


def collect_brand(
    brand_id: str,
    *,
    begin: Callable,
    graph: GraphClient | None,
    x: XClient | None,
    days: list[date],
    today: date,
    log: Callable[[str | None, str, str], None],
) -> BrandOutcome:
    """Collect every connected account of one brand for ``days`` (sorted UTC dates):
    ``fetch_brand`` then ``write_brand`` on this thread."""
    fetched = fetch_brand(brand_id, begin=begin, graph=graph, x=x, days=days)
    return write_brand(fetched, begin=begin, days=days, today=today, log=log)
