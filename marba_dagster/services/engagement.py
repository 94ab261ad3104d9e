"""The engagement collector's work without Dagster: read one brand's comments, mentions,
direct messages and reviews, score them, store them, push the urgent ones once.

Each collection reads what the platforms hold up to the end of a window: comments on the
brand's Facebook and Instagram posts of the last ``RECENT_POST_DAYS``, X mentions and direct
messages of the last ``LOOKBACK_HOURS``, and every Google Business Profile review. Rows are
upserted by ``(platform, external_id)``, so overlapping windows and re-runs never duplicate;
the app's ``status`` and the ``notified_at`` mark are never overwritten. Items whose
priority is ``urgent`` are pushed to the webhook once (``services.notifications``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from marba_dagster.connectors.describe import describe_error
from marba_dagster.connectors.engagement import (
    GbpReviews,
    GraphConversations,
    GraphEngagement,
    InboxItem,
    XEngagement,
)
from marba_dagster.connectors.http import HttpError
from marba_dagster.core.priority import URGENT, prioritise
from marba_dagster.core.rows import Problem
from marba_dagster.core.sentiment import analyzer
from marba_dagster.core.tokens import (
    GRAPH_PLATFORMS,
    graph_error_code,
    is_permission_denial,
    is_token_rejection,
)
from marba_dagster.services.notifications import push_once, settled
from marba_dagster.services.rows import checked_accounts
from marba_dagster.store import engagement as store
from marba_dagster.store.accounts import mark_needs_reconnect
from marba_dagster.store.types import utcnow

RECENT_POST_DAYS = 7
LOOKBACK_HOURS = 48
# Platforms whose engagement is read per post (comments).
COMMENTED_PLATFORMS = ("facebook", "instagram")
# Platforms whose direct messages are read through the Graph conversations API (an Instagram
# account's through the brand's linked Facebook Page and its token).
MESSAGED_PLATFORMS = ("facebook", "instagram")
DIRECT_MESSAGES = "direct messages"
# The outside API each platform's engagement is read through.
PLATFORM_APIS = {
    "facebook": "Graph API",
    "instagram": "Graph API",
    "x": "X API",
    "google_business": "Google Business Profile API",
}
AUTHOR_CHARS = 200
ALERT_BODY_CHARS = 280
DEDUP_KEY_CHARS = 200
LOG_LINE_CHARS = 2000

# ``log(brand_id, level, message)``: a line in ``job_logs`` (``BrandBatch.log``).
Log = Callable[[str | None, str, str], None]


def inbox_id(platform: str, external_id: str) -> str:
    return hashlib.sha1(f"{platform}:{external_id}".encode()).hexdigest()


def token_rejected(platform: str, err: HttpError) -> bool:
    """The platform refused the account's token (``core.tokens``: one rule for every caller)."""
    graph_code = graph_error_code(err.error_json) if platform in GRAPH_PLATFORMS else None
    return is_token_rejection(err.status, graph_code)


def permission_denied(platform: str, err: HttpError) -> bool:
    """The token is valid but lacks this capability's permission (``core.tokens``)."""
    graph_code = graph_error_code(err.error_json) if platform in GRAPH_PLATFORMS else None
    return is_permission_denial(err.status, graph_code)


def gbp_location_name(external_account_id: str) -> str:
    """The review location: the id as stored if it is a resource name, else
    ``accounts/{id}/locations/{id}``."""
    if external_account_id.startswith("accounts/") and "/locations/" in external_account_id:
        return external_account_id
    return f"accounts/{external_account_id}/locations/{external_account_id}"


def score_items(items: list[InboxItem], brand_id: str, as_of: datetime) -> list[dict]:
    """``engagement_inbox`` rows for ``items``, with sentiment and priority as of ``as_of``."""
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
                "author": (it.author or None) and it.author[:AUTHOR_CHARS],
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
    conversations: GraphConversations | None = None


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


@dataclasses.dataclass(frozen=True)
class Unavailable:
    """A capability the account's token was not granted (or has no way to reach): the
    account's other items were still collected."""

    platform: str
    account_id: str
    capability: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.platform} account {self.account_id}: {self.capability} unavailable "
            f"({self.reason})"
        )


@dataclasses.dataclass
class Collected:
    """One brand's scored rows, the accounts that failed and the platforms asked (one entry
    per account a request was made for), and the capabilities some accounts lack."""

    rows: list[dict]
    failures: list[AccountFailure]
    asked: list[str]
    unavailable: list[Unavailable] = dataclasses.field(default_factory=list)
    # Account rows that failed their check at the boundary (``core.rows``), left out.
    problems: list[Problem] = dataclasses.field(default_factory=list)

    def raise_if_failed(self) -> None:
        """A ``RuntimeError`` naming each account not read and its cause (no URL, no token):
        the brand counts as failed, its other items stored."""
        if self.failures:
            raise RuntimeError(
                "; ".join(f"{f.platform} account {f.account_id}: {f.cause}" for f in self.failures)
            )


def _linked_page(accounts: list[dict], acct: dict) -> dict | None:
    """The account whose conversations endpoint serves ``acct``'s direct messages: a
    Facebook Page itself; for Instagram, the brand's Facebook Page (the linked Page)."""
    if acct["platform"] == "facebook":
        return acct
    return next((a for a in accounts if a["platform"] == "facebook"), None)


def _reject_token(
    engine: Engine, brand_id: str, acct: dict, platform: str, err: HttpError, log: Log
) -> None:
    with engine.begin() as conn:
        mark_needs_reconnect(conn, acct["id"], f"engagement collector: {err.message}")
    log(
        brand_id,
        "warning",
        f"{platform} account {acct['id']}: token rejected; flagged for reconnection",
    )


def _direct_messages(
    engine: Engine,
    brand_id: str,
    accounts: list[dict],
    acct: dict,
    c: Collectors,
    start: datetime,
    end: datetime,
    log: Log,
    out: Collected,
    items: list[InboxItem],
) -> str | None:
    """The account's Messenger or Instagram direct messages into ``items``. A token without
    the messaging permission makes only this capability unavailable (``out.unavailable``);
    a rejected token flags its account for reconnection (its id is returned); any other
    failure is the account's failure."""
    platform = acct["platform"]
    page = _linked_page(accounts, acct)
    if c.conversations is None:
        return None
    if page is None:
        out.unavailable.append(
            Unavailable(platform, acct["id"], DIRECT_MESSAGES, "no usable linked Facebook Page")
        )
        return None
    out.asked.append(platform)
    try:
        items += c.conversations.direct_messages(
            platform,
            page["external_account_id"],
            page["access_token"],
            start,
            end,
            own_id=acct["external_account_id"],
        )
    except HttpError as err:
        if token_rejected(platform, err):
            _reject_token(engine, brand_id, page, platform, err, log)
            out.asked.remove(platform)
            return page["id"]  # the brand's other accounts do not try it again
        elif permission_denied(platform, err):
            out.unavailable.append(
                Unavailable(
                    platform,
                    acct["id"],
                    DIRECT_MESSAGES,
                    f"token lacks the messaging permission: {describe_error(err)}",
                )
            )
            out.asked.remove(platform)  # the platform answered: the source is up
        else:
            out.failures.append(AccountFailure(platform, acct["id"], err))
    except (ValueError, KeyError) as err:
        out.failures.append(AccountFailure(platform, acct["id"], err))
    return None


def collect_brand(
    engine: Engine,
    brand_id: str,
    window_end: datetime,
    c: Collectors,
    log: Callable[[str | None, str, str], None],
) -> Collected:
    """Scored rows and failures for one brand up to ``window_end``; accounts whose token
    the platform rejects are flagged ``needs_reconnect`` and skipped (``log(brand, level,
    message)`` says so, as ``BrandBatch.log`` does); a token without the messaging
    permission only leaves out that account's direct messages (``Collected.unavailable``).
    Nothing is written to the inbox (``record_brand`` does), so the calls of several brands
    can overlap."""
    since = window_end - timedelta(days=RECENT_POST_DAYS)
    with engine.connect() as conn:
        accounts, problems = checked_accounts(
            {**row, "brand_id": brand_id} for row in store.engagement_accounts(conn, brand_id)
        )
        posts = store.recent_post_ids(conn, brand_id, COMMENTED_PLATFORMS, since, window_end)

    items: list[InboxItem] = []
    out = Collected([], [], [])
    rejected_ids: set[str] = set()
    start = window_end - timedelta(hours=LOOKBACK_HOURS)
    for acct in accounts:
        platform, token, ext = acct["platform"], acct["access_token"], acct["external_account_id"]
        has_posts = not (platform in posts and not posts[platform])
        rejected = False
        if has_posts:  # no recent post: no comments to ask for
            if platform in PLATFORM_APIS:
                out.asked.append(platform)
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
                if token_rejected(platform, err):
                    _reject_token(engine, brand_id, acct, platform, err, log)
                    out.asked.remove(platform)  # the platform answered: the source is up
                    rejected = True
                    rejected_ids.add(acct["id"])
                else:
                    out.failures.append(AccountFailure(platform, acct["id"], err))
            except (ValueError, KeyError) as err:
                out.failures.append(AccountFailure(platform, acct["id"], err))
        if platform in MESSAGED_PLATFORMS and not rejected:
            live = [a for a in accounts if a["id"] not in rejected_ids]
            page_rejected = _direct_messages(
                engine, brand_id, live, acct, c, start, window_end, log, out, items
            )
            if page_rejected:
                rejected_ids.add(page_rejected)
    kept = [i for i in items if i.received_at < window_end]
    # Two accounts may reach one conversation (a Page and its Instagram account): one row each.
    unique = list({(i.platform, i.external_id): i for i in kept}.values())
    out.rows = score_items(unique, brand_id, window_end)
    out.problems = problems
    return out


def store_rows(engine: Engine, rows: list[dict]) -> int:
    with engine.begin() as conn:
        return store.upsert_items(conn, rows)


def push_urgent(engine: Engine, webhook_url: str | None, brand_id: str) -> int:
    """Push every urgent, not yet notified item of the brand once; returns how many were sent.

    An item is marked notified only once its alert is delivered (or logged with no webhook):
    a push that failed leaves it unmarked, so the next run tries again (``push_once`` bounds
    the attempts)."""
    with engine.connect() as conn:
        urgent = store.urgent_unnotified(conn, brand_id)
    pushed = 0
    for r in urgent:
        stars = f" ({r['rating']}★)" if r["rating"] else ""
        text = (
            f":rotating_light: Urgent {r['platform']} {r['item_type']}{stars} for brand {brand_id} "
            f'from {r["author"] or "someone"}: "{(r["body"] or "")[:ALERT_BODY_CHARS]}"'
        )
        key = f"engagement-urgent:{r['platform']}:{r['external_id']}"[:DEDUP_KEY_CHARS]
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
            store.mark_notified(conn, r["id"], utcnow())
    return pushed


@dataclasses.dataclass
class BrandTotals:
    """What one brand's collection stored and pushed."""

    items: int = 0
    urgent: int = 0
    negative: int = 0
    pushed: int = 0


def record_brand(
    engine: Engine, webhook_url: str | None, brand_id: str, collected: Collected, log: Log
) -> BrandTotals:
    """Store what ``collect_brand`` read for the brand, push its urgent items, and log each
    account that could not be read (``job_logs``: the full error, its URL redacted)."""
    rows = collected.rows
    store_rows(engine, rows)
    totals = BrandTotals(
        items=len(rows),
        urgent=sum(r["priority"] == URGENT for r in rows),
        negative=sum(r["sentiment_label"] == "negative" for r in rows),
        pushed=push_urgent(engine, webhook_url, brand_id),
    )
    for f in collected.failures:
        log(
            brand_id,
            "error",
            f"{f.platform} account {f.account_id} not collected: {f}"[:LOG_LINE_CHARS],
        )
    for gap in collected.unavailable:  # once per account and run: one collection per brand
        log(
            brand_id,
            "warning",
            f"{gap}; its other items were collected"[:LOG_LINE_CHARS],
        )
    return totals


@dataclasses.dataclass
class ApiTally:
    """Which platform APIs were asked and which failed, over a run's brands."""

    asked: dict[str, int] = dataclasses.field(default_factory=dict)
    failed: dict[str, list[tuple[str, AccountFailure]]] = dataclasses.field(default_factory=dict)

    def add(self, brand_id: str, collected: Collected) -> None:
        for platform in collected.asked:
            api = PLATFORM_APIS[platform]
            self.asked[api] = self.asked.get(api, 0) + 1
        for f in collected.failures:
            self.failed.setdefault(PLATFORM_APIS.get(f.platform, f.platform), []).append(
                (brand_id, f)
            )

    def lost(self) -> dict[str, tuple[str, list[str]]]:
        """APIs that failed for every account asked: ``{api: (first cause, brands)}``. One
        failing account among answering ones is that brand's failure, not a lost source."""
        return {
            api: (fails[0][1].cause, sorted({b for b, _ in fails}))
            for api, fails in sorted(self.failed.items())
            if len(fails) >= self.asked.get(api, 0)
        }
