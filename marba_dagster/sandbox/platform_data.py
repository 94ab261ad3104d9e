"""The platforms' own data, as the sandbox's Graph API and X API routes serve it.

One in-memory store per sandbox (``platform_data(state)``), shared by every platform route
module (the read routes here, publishing and engagement routes elsewhere): accounts with
their access tokens and follower counts, and posts with their lifetime metrics. Tests fill
it directly (``add_account`` / ``add_post``); the demo loads it from a MARBA database that
``marba demo seed`` wrote (``load_from_database``), so the sandbox serves "the demo data"
and a collector run finds the very posts (same external ids) the seed stored.

Tokens are secrets: they are compared here and never echoed in a response or a repr.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

GRAPH_PLATFORMS = ("facebook", "instagram")
PLATFORMS = ("facebook", "instagram", "x")


@dataclass
class Account:
    platform: str
    account_id: str
    access_token: str = field(repr=False)
    followers: int = 0
    handle: str | None = None
    token_expires_at: datetime | None = None
    revoked: bool = False
    # X: whether the token was granted the owner-only (non-public) metrics.
    non_public_metrics: bool = True
    brand_id: str | None = None
    # Permissions the token was not granted (e.g. ``pages_messaging``); empty: all of them.
    denied: frozenset[str] = frozenset()


@dataclass
class Post:
    platform: str
    account_id: str
    post_id: str  # the platform's id (content_posts.external_post_id)
    published_at: datetime
    body: str = ""
    format: str = "text"
    permalink: str | None = None
    impressions: int = 0
    reach: int = 0
    likes: int = 0
    comments: int = 0
    shares: int = 0
    saves: int = 0
    clicks: int = 0
    video_views: int = 0


class TokenProblem(Exception):
    """The token is unknown, revoked or expired (``reason`` says which; never the token)."""

    def __init__(self, reason: str, expired_at: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired_at = expired_at


class PlatformData:
    """Accounts and posts per platform; thread-safe (routes run on the server thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self._accounts: dict[tuple[str, str], Account] = {}
            # (platform, account) -> posts sorted by (published_at, post_id) ascending
            self._posts: dict[tuple[str, str], list[Post]] = {}
            self._keys: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
            self._by_id: dict[tuple[str, str], Post] = {}

    # ------------------------------------------------------------------ filling
    def add_account(
        self,
        platform: str,
        account_id: str,
        access_token: str,
        *,
        followers: int = 0,
        handle: str | None = None,
        token_expires_at: datetime | None = None,
        non_public_metrics: bool = True,
        brand_id: str | None = None,
    ) -> Account:
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}; expected one of {PLATFORMS}")
        if not access_token:
            raise ValueError("an account needs an access token")
        acct = Account(
            platform,
            str(account_id),
            access_token,
            int(followers),
            handle,
            token_expires_at,
            False,
            non_public_metrics,
            brand_id,
        )
        with self._lock:
            self._accounts[(platform, acct.account_id)] = acct
            self._posts.setdefault((platform, acct.account_id), [])
            self._keys.setdefault((platform, acct.account_id), [])
        return acct

    def add_post(
        self, platform: str, account_id: str, post_id: str, published_at: datetime, **fields: Any
    ) -> Post:
        if published_at.tzinfo is None:
            raise ValueError("published_at must be timezone-aware")
        post = Post(
            platform, str(account_id), str(post_id), published_at.astimezone(timezone.utc), **fields
        )
        self.add_posts([post])
        return post

    def add_posts(self, posts: Iterable[Post]) -> int:
        count = 0
        with self._lock:
            touched = set()
            for post in posts:
                key = (post.platform, post.account_id)
                if key not in self._accounts:
                    raise KeyError(f"no {post.platform} account {post.account_id!r}")
                old = self._by_id.get((post.platform, post.post_id))
                if old is not None:
                    self._posts[key].remove(old)
                self._posts[key].append(post)
                self._by_id[(post.platform, post.post_id)] = post
                touched.add(key)
                count += 1
            for key in touched:
                self._posts[key].sort(key=lambda p: (p.published_at, p.post_id))
                self._keys[key] = [(p.published_at, p.post_id) for p in self._posts[key]]
        return count

    def set_followers(self, platform: str, account_id: str, followers: int) -> None:
        with self._lock:
            self._accounts[(platform, str(account_id))].followers = int(followers)

    def deny(self, platform: str, account_id: str, *permissions: str) -> None:
        """The token was granted without ``permissions`` (calls needing one get a Graph
        permission error)."""
        with self._lock:
            acct = self._accounts[(platform, str(account_id))]
            acct.denied = acct.denied | frozenset(permissions)

    def revoke(self, platform: str, account_id: str) -> None:
        """The user revoked the app: every call with this account's token now fails."""
        with self._lock:
            self._accounts[(platform, str(account_id))].revoked = True

    # ------------------------------------------------------------------ reading
    def account(self, platform: str, account_id: str) -> Account | None:
        with self._lock:
            return self._accounts.get((platform, str(account_id)))

    def authorise(
        self, platforms: Iterable[str], account_id: str, token: str | None, now: datetime
    ) -> Account:
        """The account if ``token`` is its valid token; else ``TokenProblem``; None-safe."""
        if not token:
            raise TokenProblem("missing")
        with self._lock:
            acct = next(
                (
                    self._accounts[(p, str(account_id))]
                    for p in platforms
                    if (p, str(account_id)) in self._accounts
                ),
                None,
            )
            if acct is None:
                return None  # the caller answers "no such object"
            if acct.access_token != token:
                raise TokenProblem("invalid")
            if acct.revoked:
                raise TokenProblem("revoked")
            if acct.token_expires_at is not None and acct.token_expires_at <= now:
                raise TokenProblem("expired", acct.token_expires_at)
            return acct

    def token_owner(self, platforms: Iterable[str], token: str) -> Account | None:
        with self._lock:
            for acct in self._accounts.values():
                if acct.platform in platforms and acct.access_token == token:
                    return acct
        return None

    def posts_between(
        self, platform: str, account_id: str, since: datetime | None, until: datetime | None
    ) -> list[Post]:
        """Posts with since <= published_at < until, newest first (as the APIs list them)."""
        key = (platform, str(account_id))
        with self._lock:
            posts, keys = self._posts.get(key, []), self._keys.get(key, [])
            lo = 0 if since is None else bisect.bisect_left(keys, (since, ""))
            hi = len(keys) if until is None else bisect.bisect_left(keys, (until, ""))
            return list(reversed(posts[lo:hi]))

    def post(self, platform: str, post_id: str) -> Post | None:
        with self._lock:
            return self._by_id.get((platform, str(post_id)))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"accounts": len(self._accounts), "posts": len(self._by_id)}

    # ------------------------------------------------------------------ loading
    def load_from_database(
        self, engine, *, brand_ids: Iterable[str] | None = None
    ) -> dict[str, int]:
        """Load accounts (with tokens and latest followers) and posts (with their latest
        metrics snapshot) from a MARBA database, e.g. what ``marba demo seed`` wrote.

        Only Facebook, Instagram and X accounts are loaded. Returns the counts loaded.
        """
        import sqlalchemy as sa

        from marba_dagster.store import schema

        pa, cp, pm, am = (
            schema.platform_accounts,
            schema.content_posts,
            schema.post_metrics,
            schema.account_metrics,
        )
        brand_filter = list(brand_ids) if brand_ids is not None else None
        with engine.connect() as conn:
            q = sa.select(pa).where(pa.c.platform.in_(PLATFORMS))
            if brand_filter is not None:
                q = q.where(pa.c.brand_id.in_(brand_filter))
            accounts = [dict(r) for r in conn.execute(q).mappings()]
            latest_f = (
                sa.select(am.c.brand_id, am.c.platform, sa.func.max(am.c.metric_date).label("d"))
                .group_by(am.c.brand_id, am.c.platform)
                .subquery()
            )
            followers = {
                (r.brand_id, r.platform): r.followers
                for r in conn.execute(
                    sa.select(am.c.brand_id, am.c.platform, am.c.followers).join(
                        latest_f,
                        sa.and_(
                            am.c.brand_id == latest_f.c.brand_id,
                            am.c.platform == latest_f.c.platform,
                            am.c.metric_date == latest_f.c.d,
                        ),
                    )
                )
            }
            latest_m = (
                sa.select(pm.c.post_id, sa.func.max(pm.c.metric_date).label("d"))
                .group_by(pm.c.post_id)
                .subquery()
            )
            q = (
                sa.select(
                    cp.c.brand_id,
                    cp.c.platform,
                    cp.c.external_post_id,
                    cp.c.body,
                    cp.c.format,
                    cp.c.published_at,
                    cp.c.permalink,
                    pm.c.impressions,
                    pm.c.reach,
                    pm.c.likes,
                    pm.c.comments,
                    pm.c.shares,
                    pm.c.saves,
                    pm.c.clicks,
                    pm.c.video_views,
                )
                .select_from(
                    cp.outerjoin(latest_m, latest_m.c.post_id == cp.c.id).outerjoin(
                        pm,
                        sa.and_(
                            pm.c.post_id == latest_m.c.post_id, pm.c.metric_date == latest_m.c.d
                        ),
                    )
                )
                .where(cp.c.platform.in_(PLATFORMS))
            )
            if brand_filter is not None:
                q = q.where(cp.c.brand_id.in_(brand_filter))
            post_rows = conn.execute(q).all()
            # Posts the auto-publisher sent (through an earlier sandbox) exist on the platform
            # too, although analytics has not collected them yet.
            sc = schema.scheduled_content
            known = {(r.platform, r.external_post_id) for r in post_rows}
            q = sa.select(
                sc.c.brand_id,
                sc.c.platform,
                sc.c.external_post_id,
                sc.c.body,
                sc.c.format,
                sc.c.published_at,
            ).where(
                sc.c.status == "published",
                sc.c.external_post_id.is_not(None),
                sc.c.published_at.is_not(None),
                sc.c.platform.in_(PLATFORMS),
            )
            if brand_filter is not None:
                q = q.where(sc.c.brand_id.in_(brand_filter))
            published_rows = [
                r for r in conn.execute(q).all() if (r.platform, r.external_post_id) not in known
            ]

        account_of: dict[tuple[str, str], str] = {}
        loaded_accounts = 0
        for a in accounts:
            if not a["access_token"]:
                continue
            acct = self.add_account(
                a["platform"],
                a["external_account_id"],
                a["access_token"],
                followers=int(followers.get((a["brand_id"], a["platform"]), 0)),
                handle=a.get("handle"),
                token_expires_at=a["token_expires_at"],
                brand_id=a["brand_id"],
            )
            account_of[(a["brand_id"], a["platform"])] = acct.account_id
            loaded_accounts += 1
        posts = []
        for r in post_rows:
            acct_id = account_of.get((r.brand_id, r.platform))
            if acct_id is None:
                continue
            posts.append(
                Post(
                    r.platform,
                    acct_id,
                    r.external_post_id,
                    r.published_at,
                    body=r.body or "",
                    format=r.format,
                    permalink=r.permalink,
                    **{
                        c: int(getattr(r, c) or 0)
                        for c in (
                            "impressions",
                            "reach",
                            "likes",
                            "comments",
                            "shares",
                            "saves",
                            "clicks",
                            "video_views",
                        )
                    },
                )
            )
        for r in published_rows:
            acct_id = account_of.get((r.brand_id, r.platform))
            if acct_id is not None:
                posts.append(
                    Post(
                        r.platform,
                        acct_id,
                        r.external_post_id,
                        r.published_at,
                        body=r.body or "",
                        format=r.format or "text",
                    )
                )
        self.add_posts(posts)
        return {"accounts": loaded_accounts, "posts": len(posts)}


def platform_data(state) -> PlatformData:
    """The store of a sandbox (``SandboxState``): created on first use, cleared on reset."""
    return state.module_state("platform_data", PlatformData)


def load_from_database(state, engine, **kw) -> dict[str, int]:
    """Fill the sandbox's platform data from a MARBA database (the demo's seeded rows)."""
    return platform_data(state).load_from_database(engine, **kw)


def parse_time(value: str | None) -> datetime | None:
    """A Graph ``since``/``until`` (Unix seconds or ISO 8601) or X ``start_time``."""
    if value is None or value == "":
        return None
    value = value.strip()
    if value.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    text = value.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":" and "T" in text:
        text = text[:-2] + ":" + text[-2:]  # Graph's +0000
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
