"""The analytics collector's work without Dagster: collect one brand's platform accounts,
derive its daily metrics.

Collection: each account is fetched completely (every page) before anything is written,
and written in its own transaction, so a failure (malformed page, rate limit after
retries, revoked token) leaves that account's rows exactly as they were while the brand's
other accounts and all other brands go on. A rejected token (HTTP 401, Graph error 190)
marks the account ``needs_reconnect`` with a reason and a ``job_logs`` warning; the token
itself never appears in any message.

Daily metrics: engagement rate, click-through rate and follower growth per brand, platform
and UTC day (definitions in ``core.analytics``), from the stored posts and followers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from marba_dagster.connectors.describe import describe_error
from marba_dagster.connectors.graph import GraphClient
from marba_dagster.connectors.http import HttpError
from marba_dagster.connectors.social import AccountSnapshot, PlatformPost, TokenRejected
from marba_dagster.connectors.x import XClient
from marba_dagster.core.analytics import daily_brand_metrics
from marba_dagster.core.rows import Problem
from marba_dagster.services.rows import checked_accounts
from marba_dagster.store import analytics as store
from marba_dagster.store.accounts import mark_needs_reconnect
from marba_dagster.store.types import utcnow

# The outside API each platform is read through (a source shared by every brand).
PLATFORM_APIS = {"facebook": "Graph API", "instagram": "Graph API", "x": "X API"}
# A post's metrics keep growing for days: each day's run re-reads the posts of this many
# days (the day itself included) and stores their lifetime totals as that day's snapshot.
LOOKBACK_DAYS = 7
# Follower growth is measured over up to this many days.
FOLLOWER_HISTORY_DAYS = 30
NO_TOKEN = "no access token stored"

# ``log(brand_id, level, message)``: a line in ``job_logs`` (``BrandBatch.log``).
Log = Callable[[str | None, str, str], None]


def post_row_id(platform: str, external_post_id: str) -> str:
    """A stable id for a post first seen by the collector (seeded rows keep theirs)."""
    digest = hashlib.sha1(f"{platform}:{external_post_id}".encode()).hexdigest()[:24]
    return f"post-{digest}"


def day_start(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


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

    def raise_if_failed(self) -> None:
        """``AccountsFailed`` naming each account not collected and its cause (the brand's
        other accounts are written; the brand still counts as failed)."""
        if self.failed:
            raise AccountsFailed(
                "; ".join(f"{a.platform} account {a.account_id}: {a.cause}" for a in self.failed)
            )


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
    store.upsert_posts(
        conn,
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
    )
    owners = store.post_owners(conn, platform, [p.external_post_id for p in posts])
    # An id that belongs to another brand's account is never written across brands.
    ids = {ext: pid for ext, (pid, owner) in owners.items() if owner == brand_id}
    metric_rows = []
    for p in posts:
        pid = ids.get(p.external_post_id)
        if pid is None:
            continue
        published = p.published_at.date()
        for d in days:
            if published <= d < published + timedelta(days=LOOKBACK_DAYS):
                metric_rows.append(
                    {"post_id": pid, "metric_date": d, **p.metrics(), "collected_at": now}
                )
    store.upsert_post_metrics(conn, metric_rows)
    if followers is not None and follower_days:
        store.upsert_followers(
            conn,
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
    # Account rows that failed their check at the boundary (``core.rows``), left out.
    problems: list[Problem] = field(default_factory=list)


def fetch_brand(
    brand_id: str,
    *,
    engine: Engine,
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
    with engine.connect() as conn:
        accounts, problems = checked_accounts(
            {**row, "brand_id": brand_id} for row in store.collected_accounts(conn, brand_id)
        )
    out = []
    for acct in accounts:
        fetched = FetchedAccount(acct)
        if acct["access_token"]:
            try:
                fetched.posts, fetched.followers = fetch_account(graph, x, acct, since, until)
            except (TokenRejected, HttpError) as err:
                fetched.error = err
        out.append(fetched)
    return FetchedBrand(brand_id, out, problems)


def write_brand(
    fetched: FetchedBrand, *, engine: Engine, days: list[date], today: date, log: Log
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
            result.status, result.error = "reconnect", NO_TOKEN
            with engine.begin() as conn:
                mark_needs_reconnect(conn, acct["id"], result.error)
            log(
                brand_id,
                "warning",
                f"{platform} account {acct['id']} has no token: marked for reconnection",
            )
        elif isinstance(f.error, TokenRejected):
            result.status, result.error = "reconnect", f.error.reason
            with engine.begin() as conn:
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
            with engine.begin() as conn:
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
            if a.status == "reconnect" and a.error == NO_TOKEN:
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


def derive_daily_metrics(engine: Engine, brand_id: str, days: list[date]) -> list[dict]:
    """Compute and upsert the brand's ``brand_daily_metrics`` rows for ``days`` (sorted UTC
    dates) in one transaction; returns the rows written."""
    start = day_start(days[0])
    end = day_start(days[-1] + timedelta(days=1))
    with engine.begin() as conn:
        posts = store.posts_with_latest_metrics(conn, [brand_id], start, end)
        followers = store.follower_history(
            conn, brand_id, days[0] - timedelta(days=FOLLOWER_HISTORY_DAYS), days[-1]
        )
        daily = daily_brand_metrics(posts, followers, days)
        now = utcnow()
        rows = [
            {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in r.items()}
            | {"computed_at": now}
            for r in daily.to_dict("records")
        ]
        for r in rows:
            r["followers"] = None if r["followers"] is None else int(r["followers"])
        store.upsert_daily_metrics(conn, rows)
    return rows
