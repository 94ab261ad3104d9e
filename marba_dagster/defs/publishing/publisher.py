"""The auto-publisher's engine: claim due posts atomically, publish each once, record all.

The invariants (issue 7):

* A post is sent only by the attempt that claimed it: the claim (status ``publishing``, a
  fresh ``claim_token``, ``lease_expires_at``, ``attempts + 1``) is committed before the
  platform is called. PostgreSQL claims with ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite
  with one atomic ``UPDATE ... WHERE id = (SELECT ...) RETURNING`` (SQLite serialises
  writers, so two claimers can never both match the row).
* The platform's post id is committed the moment it answers.
* Whatever may have been applied without our knowing (timeout or reset after sending, a
  crash before the commit, an expired lease) becomes ``unknown``: never retried, alerted.
* Failures before anything was sent are rescheduled with backoff (Retry-After honoured),
  at most ``max_attempts`` attempts in all; permanent failures fail with their reason; a
  rejected token fails the post and flags the account for reconnection.
* ``publish_events`` gets a row for every claim and every outcome.
* A run asked to stop (SIGTERM or Ctrl-C interrupt the step; ``stop()`` from another
  thread) claims nothing more, lets every send already under way finish and be recorded,
  and gives back what it claimed but had not sent (``scheduled`` again, attempt not
  counted), so nothing is left claimed for a lease to expire into ``unknown``.

Plain Python (no Dagster) so a run can be driven by the asset, a test process or the
benchmark alike.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from marba_dagster.connectors.http import TokenBucket
from marba_dagster.connectors.publishing import (
    PostRequest,
    Published,
    PublishFailed,
    UnsupportedPost,
)
from marba_dagster.core import publishing as rules
from marba_dagster.core.publishing import Outcome
from marba_dagster.store import schema as s
from marba_dagster.store.accounts import mark_needs_reconnect
from marba_dagster.store.types import utcnow

log = logging.getLogger(__name__)

sc = s.scheduled_content

# A real crash for tests: when set to "1", the worker process exits right after the
# platform answered and before the answer is committed (os._exit: no cleanup, no commit).
CRASH_AFTER_SEND_ENV = "MARBA_TEST_CRASH_AFTER_PLATFORM_CALL"


class Publisher(Protocol):
    def publish(self, post: PostRequest) -> Published: ...


@dataclass(frozen=True)
class PublisherConfig:
    max_lateness: timedelta = rules.DEFAULT_MAX_LATENESS
    window: timedelta = rules.DUE_WINDOW
    lease_seconds: float = 300.0
    concurrency: int = 8
    max_attempts: int = rules.MAX_ATTEMPTS
    backoff_base_seconds: float = rules.BASE_BACKOFF_SECONDS
    # Client-side rate limit per platform (posts per second); None = no limit.
    rate_per_second: dict[str, float | None] = field(default_factory=dict)
    # Stop claiming after this long so a run never overlaps the next one for long.
    max_run_seconds: float = 240.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.lease_seconds <= 0:
            raise ValueError("lease_seconds must be > 0")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")


@dataclass
class Claimed:
    id: str
    brand_id: str
    platform: str
    body: str
    media_urls: tuple[str, ...]
    format: str
    attempt: int
    scheduled_at: datetime
    claim_token: str


@dataclass
class RunSummary:
    published: int = 0
    retry_scheduled: int = 0
    failed: int = 0
    unknown: int = 0
    missed: int = 0
    expired_leases: int = 0
    lost_leases: int = 0
    claimed: int = 0
    released: int = 0
    lateness_seconds: list[float] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, key, getattr(self, key) + n)

    def row(self, **kw) -> None:
        with self._lock:
            self.rows.append(kw)

    def as_metadata(self) -> dict[str, float]:
        lat = sorted(self.lateness_seconds)
        out = {
            k: getattr(self, k)
            for k in (
                "claimed",
                "published",
                "retry_scheduled",
                "failed",
                "unknown",
                "missed",
                "expired_leases",
                "lost_leases",
                "released",
            )
        }
        if lat:
            out["lateness_p50_seconds"] = round(lat[len(lat) // 2], 3)
            out["lateness_max_seconds"] = round(lat[-1], 3)
        return out


def _event(
    conn: Connection,
    post: Claimed | dict,
    status: str,
    *,
    at: datetime,
    run_id: str | None,
    external_post_id: str | None = None,
    error: str | None = None,
) -> None:
    get = (lambda k: getattr(post, k)) if isinstance(post, Claimed) else post.__getitem__
    conn.execute(
        s.publish_events.insert().values(
            scheduled_content_id=get("id"),
            brand_id=get("brand_id"),
            platform=get("platform"),
            attempt=get("attempt") if isinstance(post, Claimed) else post.get("attempts", 0),
            status=status,
            external_post_id=external_post_id,
            error=(error or None) and error[:2000],
            claim_token=get("claim_token"),
            run_id=run_id,
            occurred_at=at,
        )
    )


class PublishRun:
    """One publisher run over every due post (optionally only some brands)."""

    def __init__(
        self,
        engine: Engine,
        publishers: dict[str, Publisher],
        config: PublisherConfig | None = None,
        *,
        run_id: str | None = None,
        brand_ids: list[str] | None = None,
        alert: Callable[[str, str, str, str | None], None] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.engine = engine
        self.publishers = publishers
        self.config = config or PublisherConfig()
        self.run_id = run_id or f"adhoc-{uuid.uuid4().hex[:12]}"
        self.brand_ids = brand_ids
        self.alert = alert  # (dedup_key, kind, text, brand_id)
        self.log = logger or log
        self.summary = RunSummary()
        self._offset = timedelta(0)
        self._blocked: dict[str, datetime] = {}
        self._blocked_lock = threading.Lock()
        self._buckets = {
            p: TokenBucket(rate) for p, rate in self.config.rate_per_second.items() if rate
        }
        self._stop = threading.Event()

    def stop(self) -> None:
        """Claim nothing more; sends under way finish, unsent claims are given back."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- time: a run may be given a reference "now"; it then advances with the real clock.

    def now(self) -> datetime:
        return utcnow() + self._offset

    # -- the run ------------------------------------------------------------------------

    def run(self, now: datetime | None = None) -> RunSummary:
        if now is not None:
            self._offset = now - utcnow()
        start = self.now()
        self.reap_expired_leases(start)
        self.mark_missed(start)
        stop_at = time.monotonic() + self.config.max_run_seconds
        workers = max(1, self.config.concurrency)
        if workers == 1:
            self._worker(stop_at)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="publisher") as pool:
                futures = [pool.submit(self._worker, stop_at) for _ in range(workers)]
                try:
                    for f in futures:
                        f.result()
                except BaseException:
                    # Interrupted (SIGTERM, Ctrl-C) or a worker failed: leaving the pool waits
                    # for the sends under way, and the workers stop claiming.
                    self.stop()
                    raise
        return self.summary

    def _brand_filter(self):
        if self.brand_ids is not None:
            return sc.c.brand_id.in_(list(self.brand_ids) or [""])
        active = sa.select(s.brands.c.id).where(s.brands.c.is_active.is_(True))
        return sc.c.brand_id.in_(active.scalar_subquery())

    def reap_expired_leases(self, now: datetime) -> int:
        """Posts left in ``publishing`` past their lease: the attempt died somewhere between
        the claim and the commit, so the platform may have the post. Mark them ``unknown``."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(
                        sc.c.id, sc.c.brand_id, sc.c.platform, sc.c.attempts, sc.c.claim_token
                    ).where(
                        sc.c.status == "publishing",
                        sc.c.lease_expires_at < now,
                        self._brand_filter(),
                    )
                )
                .mappings()
                .all()
            )
        n = 0
        for r in rows:
            reason = (
                "outcome unknown: the publishing attempt's lease expired before its result was "
                "recorded (crash or kill after the claim); check the platform before re-posting"
            )
            with self.engine.begin() as conn:
                done = conn.execute(
                    sa.update(sc)
                    .where(
                        sc.c.id == r["id"],
                        sc.c.status == "publishing",
                        sc.c.claim_token == r["claim_token"],
                    )
                    .values(
                        status="unknown", last_error=reason, lease_expires_at=None, updated_at=now
                    )
                ).rowcount
                if done:
                    _event(conn, dict(r), "unknown", at=now, run_id=self.run_id, error=reason)
            if done:
                n += 1
                self._alert_unknown(dict(r), reason)
        self.summary.add("expired_leases", n)
        self.summary.add("unknown", n)
        return n

    def mark_missed(self, now: datetime) -> int:
        """Scheduled posts later than the maximum lateness fail as missed, with the reason."""
        cutoff = rules.missed_cutoff(now, self.config.max_lateness)
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(
                        sc.c.id,
                        sc.c.brand_id,
                        sc.c.platform,
                        sc.c.attempts,
                        sc.c.claim_token,
                        sc.c.scheduled_at,
                    ).where(
                        sc.c.status == "scheduled", sc.c.scheduled_at < cutoff, self._brand_filter()
                    )
                )
                .mappings()
                .all()
            )
        n = 0
        for r in rows:
            reason = rules.missed_reason(r["scheduled_at"], now, self.config.max_lateness)
            with self.engine.begin() as conn:
                done = conn.execute(
                    sa.update(sc)
                    .where(sc.c.id == r["id"], sc.c.status == "scheduled")
                    .values(
                        status="failed", last_error=reason, next_attempt_at=None, updated_at=now
                    )
                ).rowcount
                if done:
                    _event(conn, dict(r), "missed", at=now, run_id=self.run_id, error=reason)
            n += done
        self.summary.add("missed", n)
        return n

    # -- claiming -----------------------------------------------------------------------

    def _due_conditions(self, now: datetime, exclude: list[str]):
        conds = [
            sc.c.status == "scheduled",
            sc.c.scheduled_at <= rules.due_horizon(now, self.config.window),
            sc.c.scheduled_at >= rules.missed_cutoff(now, self.config.max_lateness),
            sa.or_(sc.c.next_attempt_at.is_(None), sc.c.next_attempt_at <= now),
            self._brand_filter(),
        ]
        if exclude:
            conds.append(sc.c.platform.not_in(exclude))
        return conds

    def claim_next(self) -> Claimed | None:
        """Claim the most overdue due post, or None. Committed before returning."""
        now = self.now()
        exclude = self._blocked_platforms(now)
        token = uuid.uuid4().hex
        lease = now + timedelta(seconds=self.config.lease_seconds)
        values = dict(
            status="publishing",
            claim_token=token,
            claimed_at=now,
            lease_expires_at=lease,
            attempts=sc.c.attempts + 1,
            updated_at=now,
        )
        returning = (
            sc.c.id,
            sc.c.brand_id,
            sc.c.platform,
            sc.c.body,
            sc.c.media_urls,
            sc.c.format,
            sc.c.attempts,
            sc.c.scheduled_at,
        )
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                picked = conn.execute(
                    sa.select(sc.c.id)
                    .where(*self._due_conditions(now, exclude))
                    .order_by(sc.c.scheduled_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).scalar_one_or_none()
                if picked is None:
                    return None
                row = (
                    conn.execute(
                        sa.update(sc)
                        .where(sc.c.id == picked, sc.c.status == "scheduled")
                        .values(**values)
                        .returning(*returning)
                    )
                    .mappings()
                    .first()
                )
            else:
                due = (
                    sa.select(sc.c.id)
                    .where(*self._due_conditions(now, exclude))
                    .order_by(sc.c.scheduled_at)
                    .limit(1)
                    .scalar_subquery()
                )
                row = (
                    conn.execute(
                        sa.update(sc)
                        .where(sc.c.id == due, sc.c.status == "scheduled")
                        .values(**values)
                        .returning(*returning)
                    )
                    .mappings()
                    .first()
                )
            if row is None:
                return None
            claimed = Claimed(
                id=row["id"],
                brand_id=row["brand_id"],
                platform=row["platform"],
                body=row["body"],
                media_urls=tuple(row["media_urls"] or ()),
                format=row["format"] or "text",
                attempt=row["attempts"],
                scheduled_at=row["scheduled_at"],
                claim_token=token,
            )
            _event(conn, claimed, "claimed", at=now, run_id=self.run_id)
        self.summary.add("claimed")
        return claimed

    def _blocked_platforms(self, now: datetime) -> list[str]:
        with self._blocked_lock:
            return sorted(p for p, until in self._blocked.items() if until > now)

    def _block(self, platform: str, until: datetime) -> None:
        with self._blocked_lock:
            if self._blocked.get(platform, until) <= until:
                self._blocked[platform] = until

    # -- publishing one post ------------------------------------------------------------

    def _worker(self, stop_at: float) -> None:
        while time.monotonic() < stop_at and not self.stopping:
            post = self.claim_next()
            if post is None:
                return
            self.publish_claimed(post)

    def _account(self, post: Claimed) -> dict | None:
        pa = s.platform_accounts
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(
                        pa.c.id,
                        pa.c.external_account_id,
                        pa.c.access_token,
                        pa.c.needs_reconnect,
                        pa.c.reconnect_reason,
                    )
                    .where(
                        pa.c.brand_id == post.brand_id,
                        pa.c.platform == post.platform,
                        pa.c.is_active.is_(True),
                    )
                    .order_by(pa.c.needs_reconnect, pa.c.id)
                    .limit(1)
                )
                .mappings()
                .first()
            )

    def publish_claimed(self, post: Claimed) -> str:
        sent = False
        try:
            account = self._account(post)
            publisher = self.publishers.get(post.platform)
            if publisher is None:
                return self._fail(post, f"publishing to {post.platform} is not supported")
            if account is None:
                return self._fail(
                    post, f"no active {post.platform} account connected for this brand"
                )
            if account["needs_reconnect"]:
                why = account["reconnect_reason"] or "token rejected earlier"
                return self._fail(
                    post, f"the {post.platform} account needs to be reconnected: {why}"
                )
            if not account["access_token"]:
                return self._fail(
                    post, f"the {post.platform} account has no access token: reconnect it"
                )
            request = PostRequest(
                platform=post.platform,
                account_id=account["external_account_id"],
                access_token=account["access_token"],
                body=post.body,
                media_urls=post.media_urls,
                format=post.format,
            )
            bucket = self._buckets.get(post.platform)
            if bucket is not None:
                wait = bucket.reserve()
                if wait > 0:
                    time.sleep(wait)
            if self.stopping:
                return self._release(post)
            sent = True
            try:
                result = publisher.publish(request)
            except UnsupportedPost as exc:
                return self._fail(post, str(exc))
            except PublishFailed as exc:
                return self._on_failure(post, exc, account)
            if os.environ.get(CRASH_AFTER_SEND_ENV) == "1":
                os._exit(86)  # simulate a crash between the platform's answer and our commit
            return self._on_published(post, result)
        except Exception as exc:  # a bug or a database failure: never lose the post silently
            reason = f"{type(exc).__name__}: {exc}"[:500]
            self.log.exception("publishing %s failed unexpectedly", post.id)
            if sent:
                return self._unknown(
                    post, f"outcome unknown: internal error after sending: {reason}"
                )
            return self._retry(post, f"internal error before sending: {reason}", None)
        except BaseException:
            # Interrupted on this thread (one worker: SIGTERM or Ctrl-C reach the send itself).
            self.stop()
            if sent:
                self._unknown(
                    post, "outcome unknown: the run was stopped while the post was being sent"
                )
            else:
                self._release(post)
            raise

    def _release(self, post: Claimed) -> str:
        """Give back a claim that was never sent: scheduled again, the attempt not counted."""
        self._finish(
            post,
            dict(status="scheduled", claim_token=None, attempts=sc.c.attempts - 1),
            "released",
            error="the run stopped before sending; the post is scheduled again",
        )
        self.summary.add("released")
        return "released"

    def _finish(
        self,
        post: Claimed,
        values: dict,
        event_status: str,
        *,
        error: str | None = None,
        external_post_id: str | None = None,
    ) -> bool:
        now = self.now()
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(sc)
                .where(
                    sc.c.id == post.id,
                    sc.c.claim_token == post.claim_token,
                    sc.c.status.in_(
                        ("publishing", "unknown")
                        if event_status == "published"
                        else ("publishing",)
                    ),
                )
                .values(updated_at=now, lease_expires_at=None, **values)
            ).rowcount
            _event(
                conn,
                post,
                event_status if done else f"{event_status}_after_lease_lost",
                at=now,
                run_id=self.run_id,
                error=error,
                external_post_id=external_post_id,
            )
        if not done:
            self.summary.add("lost_leases")
            self.log.warning(
                "post %s: lease lost before its %s result was recorded", post.id, event_status
            )
        return bool(done)

    def _on_published(self, post: Claimed, result: Published) -> str:
        now = self.now()
        self._finish(
            post,
            dict(
                status="published",
                external_post_id=result.external_post_id,
                published_at=now,
                last_error=None,
                next_attempt_at=None,
            ),
            "published",
            external_post_id=result.external_post_id,
            error=("steps: " + ", ".join(f"{k}={v}" for k, v in result.steps))
            if result.steps
            else None,
        )
        lateness = rules.lateness_seconds(post.scheduled_at, now)
        with self.summary._lock:
            self.summary.lateness_seconds.append(lateness)
        self.summary.add("published")
        self.summary.row(
            id=post.id,
            platform=post.platform,
            status="published",
            external_post_id=result.external_post_id,
            lateness_s=round(lateness, 1),
        )
        return "published"

    def _on_failure(self, post: Claimed, exc: PublishFailed, account: dict) -> str:
        c = exc.classified
        reason = f"{exc.step}: {c.reason}"
        if c.outcome is Outcome.RETRY:
            if c.retry_after:
                self._block(post.platform, self.now() + timedelta(seconds=c.retry_after))
            return self._retry(post, reason, c.retry_after)
        if c.outcome is Outcome.UNKNOWN:
            return self._unknown(post, reason)
        if c.outcome is Outcome.RECONNECT:
            with self.engine.begin() as conn:
                mark_needs_reconnect(conn, account["id"], c.reason)
            return self._fail(post, f"reconnect required: {reason}")
        return self._fail(post, reason)

    def _retry(self, post: Claimed, reason: str, retry_after: float | None) -> str:
        if post.attempt >= self.config.max_attempts:
            return self._fail(post, f"gave up after {post.attempt} attempts: {reason}")
        when = rules.next_attempt_at(
            self.now(), post.attempt, retry_after, base=self.config.backoff_base_seconds
        )
        self._finish(
            post,
            dict(status="scheduled", next_attempt_at=when, claim_token=None, last_error=reason),
            "retry_scheduled",
            error=f"{reason}; next attempt at {when.isoformat(timespec='seconds')}",
        )
        self.summary.add("retry_scheduled")
        self.summary.row(id=post.id, platform=post.platform, status="retry_scheduled", error=reason)
        return "retry_scheduled"

    def _unknown(self, post: Claimed, reason: str) -> str:
        self._finish(post, dict(status="unknown", last_error=reason), "unknown", error=reason)
        self.summary.add("unknown")
        self.summary.row(id=post.id, platform=post.platform, status="unknown", error=reason)
        self._alert_unknown(
            {
                "id": post.id,
                "brand_id": post.brand_id,
                "platform": post.platform,
                "claim_token": post.claim_token,
            },
            reason,
        )
        return "unknown"

    def _fail(self, post: Claimed, reason: str) -> str:
        self._finish(
            post,
            dict(status="failed", last_error=reason, next_attempt_at=None),
            "failed",
            error=reason,
        )
        self.summary.add("failed")
        self.summary.row(id=post.id, platform=post.platform, status="failed", error=reason)
        return "failed"

    def _alert_unknown(self, post: dict, reason: str) -> None:
        if self.alert is None:
            return
        text = (
            f":warning: MARBA auto-publisher: {post['platform']} post {post['id']} "
            f"(brand {post['brand_id']}) has an unknown outcome and will not be retried "
            f"automatically. {reason}"
        )
        try:
            self.alert(
                f"publish-unknown:{post['id']}:{post.get('claim_token') or ''}",
                "publish_unknown",
                text,
                post["brand_id"],
            )
        except Exception as exc:  # an alert failure must not change the post's outcome
            self.log.warning("could not alert on unknown post %s: %s", post["id"], exc)
