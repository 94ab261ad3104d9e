"""The auto-publisher: claim due posts atomically, publish each once, record all.

The invariants (issue 7):

* A post is sent only by the attempt that claimed it: the claim (status ``publishing``, a
  fresh ``claim_token``, ``lease_expires_at``, ``attempts + 1``) is committed before the
  platform is called (``store.publishing.claim_next``: ``SELECT ... FOR UPDATE SKIP
  LOCKED`` on PostgreSQL, one atomic ``UPDATE ... RETURNING`` on SQLite).
* Right before each request that can publish (not before harmless steps such as an
  Instagram container), "about to send" is committed (``send_started_at``); a claim that
  was lost or a run that is stopping sends nothing.
* The platform's post id is committed the moment it answers.
* Whatever may have been applied without our knowing (timeout or reset after sending, a
  crash after the send record, an expired lease of a claim that had started sending)
  becomes ``unknown``: never retried, alerted. An expired claim that never recorded a send
  (a crash or kill before it) is ``scheduled`` again, due at once, its attempt counted.
* Failures before anything was sent are rescheduled with backoff (Retry-After honoured),
  at most ``max_attempts`` attempts in all; permanent failures fail with their reason; a
  rejected token fails the post and flags the account for reconnection.
* ``publish_events`` gets a row for every claim and every outcome.
* A run asked to stop (SIGTERM or Ctrl-C interrupt the step; ``stop()`` from another
  thread) claims nothing more, lets every send already under way finish and be recorded,
  and gives back what it claimed but had not sent (``scheduled`` again, attempt not
  counted), so nothing is left claimed for a lease to expire into ``unknown``.

Plain Python (no Dagster) so a run can be driven by the asset, a test process or the
benchmark alike; its SQL is ``store.publishing``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Engine

from marba_dagster.connectors.describe import one_line
from marba_dagster.connectors.http import ApiClient, HttpPolicy
from marba_dagster.connectors.publishing import (
    GbpPublisher,
    GraphPublisher,
    LimitHeaders,
    PostRequest,
    Published,
    PublishFailed,
    UnsupportedPost,
    XPublisher,
)
from marba_dagster.connectors.redaction import redact
from marba_dagster.connectors.safe_fetch import SafeFetcher
from marba_dagster.core import publishing as rules
from marba_dagster.core.publishing import Outcome
from marba_dagster.services.notifications import push_once
from marba_dagster.store import publishing as store_publishing
from marba_dagster.store.accounts import mark_needs_reconnect
from marba_dagster.store.types import utcnow

log = logging.getLogger(__name__)


PLATFORMS = ("facebook", "instagram", "x", "google_business")
# Platforms that share one app's limits (Graph's X-App-Usage, code 4).
APP_PLATFORMS = {"facebook": ("facebook", "instagram"), "instagram": ("facebook", "instagram")}
# The bound on one run: far above a burst of posts due together, so a run ends because
# nothing is due; a backlog larger than this goes out in the next run.
MAX_POSTS_PER_RUN = 20_000


class Deferred(Exception):
    """A send an account's (or the app's) limit does not allow before ``until``."""

    def __init__(self, until: datetime, reason: str, *, scope: str = "account") -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason
        self.scope = scope


class NotSent(Exception):
    """Raised in place of a send the attempt must not make (stopping, claim lost)."""

    def __init__(self, reason: str, *, lease_lost: bool = False) -> None:
        super().__init__(reason)
        self.lease_lost = lease_lost


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
    # Sends per account (and per app: every account of a platform) in moving windows
    # (``core.publishing.DEFAULT_ACCOUNT_LIMITS``, ``DEFAULT_APP_LIMITS``).
    account_limits: Mapping[str, tuple[rules.Window, ...]] = field(
        default_factory=lambda: rules.parse_limits(rules.DEFAULT_ACCOUNT_LIMITS, PLATFORMS)
    )
    app_limits: Mapping[str, tuple[rules.Window, ...]] = field(
        default_factory=lambda: rules.parse_limits(rules.DEFAULT_APP_LIMITS, PLATFORMS)
    )
    # A run claims until nothing is due, at most this many posts (the next run goes on).
    max_posts_per_run: int = MAX_POSTS_PER_RUN
    # (host, port) pairs whose media URLs may be http or local (a sandbox's media server).
    allowed_media_hosts: frozenset[tuple[str, int]] = frozenset()

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.lease_seconds <= 0:
            raise ValueError("lease_seconds must be > 0")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.max_posts_per_run < 1:
            raise ValueError("max_posts_per_run must be >= 1")


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
    raw_media: object = field(default=None, repr=False)  # media_urls as stored, for checks
    options: object = None  # publish_options (a Google Business post's type, event, CTA)


@dataclass
class RunSummary:
    published: int = 0
    retry_scheduled: int = 0
    failed: int = 0
    unknown: int = 0
    missed: int = 0
    invalid: int = 0
    deferred: int = 0
    expired_leases: int = 0
    requeued: int = 0
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
                "invalid",
                "deferred",
                "expired_leases",
                "requeued",
                "lost_leases",
                "released",
            )
        }
        if lat:
            out["lateness_p50_seconds"] = round(lat[len(lat) // 2], 3)
            out["lateness_max_seconds"] = round(lat[-1], 3)
        return out


def _event(
    conn,
    post: Claimed | Mapping,
    status: str,
    *,
    at: datetime,
    run_id: str | None,
    external_post_id: str | None = None,
    error: str | None = None,
) -> None:
    """A ``publish_events`` row for a claimed post, or for a post row read before a claim."""
    if isinstance(post, Claimed):
        who = (post.id, post.brand_id, post.platform, post.attempt, post.claim_token)
    else:
        who = (
            post["id"],
            post["brand_id"],
            post["platform"],
            post.get("attempts", 0),
            post["claim_token"],
        )
    post_id, brand_id, platform, attempt, claim_token = who
    store_publishing.record_event(
        conn,
        post_id=post_id,
        brand_id=brand_id,
        platform=platform,
        attempt=attempt,
        status=status,
        at=at,
        run_id=run_id,
        claim_token=claim_token,
        external_post_id=external_post_id,
        error=redact(error),  # a platform may echo what it was sent
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
        limit_headers: LimitHeaders | None = None,
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
        self.limit_headers = limit_headers
        # Platforms (an app's limit) and accounts ((platform, account id)) that must wait.
        self._blocked: dict[str, datetime] = {}
        self._blocked_accounts: dict[tuple[str, str], tuple[datetime, str]] = {}
        self._blocked_lock = threading.Lock()
        self._slots = 0  # claims taken or being taken (bounded by max_posts_per_run)
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
        self.reject_invalid(start)
        workers = max(1, self.config.concurrency)
        if workers == 1:
            self._worker()
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="publisher") as pool:
                futures = [pool.submit(self._worker) for _ in range(workers)]
                try:
                    for f in futures:
                        f.result()
                except BaseException:
                    # Interrupted (SIGTERM, Ctrl-C) or a worker failed: leaving the pool waits
                    # for the sends under way, and the workers stop claiming.
                    self.stop()
                    raise
        return self.summary

    def reap_expired_leases(self, now: datetime) -> int:
        """Posts left in ``publishing`` past their lease: the attempt died between the claim
        and the commit of its result. One that had recorded "about to send" may be on the
        platform: ``unknown``, for a person. One that had not was never sent: ``scheduled``
        again, due at once (or failed when its attempts are spent)."""
        with self.engine.connect() as conn:
            rows = store_publishing.expired_leases(conn, now, self.brand_ids)
        unknown = requeued = 0
        for r in rows:
            if r["send_started_at"] is None:
                requeued += self._requeue_unsent(dict(r), now)
                continue
            reason = (
                "outcome unknown: the publishing attempt's lease expired after it started "
                "sending and before its result was recorded (crash or kill mid-send); check "
                "the platform before re-posting"
            )
            with self.engine.begin() as conn:
                done = store_publishing.mark_lease_unknown(
                    conn, r["id"], r["claim_token"], reason, now
                )
                if done:
                    _event(conn, dict(r), "unknown", at=now, run_id=self.run_id, error=reason)
            if done:
                unknown += 1
                self._alert_unknown(dict(r), reason)
        self.summary.add("expired_leases", unknown + requeued)
        self.summary.add("unknown", unknown)
        self.summary.add("requeued", requeued)
        return unknown + requeued

    def _requeue_unsent(self, row: dict, now: datetime) -> int:
        give_up = row["attempts"] >= self.config.max_attempts
        reason = (
            "the publishing attempt's lease expired before it sent anything (crash or kill "
            "after the claim)"
        )
        if give_up:
            reason = f"gave up after {row['attempts']} attempts: {reason}"
        with self.engine.begin() as conn:
            done = store_publishing.requeue_unsent(
                conn, row["id"], row["claim_token"], reason, now, give_up=give_up
            )
            if done:
                status = "failed" if give_up else "requeued"
                _event(conn, row, status, at=now, run_id=self.run_id, error=reason)
        if done and give_up:
            self.summary.add("failed")
        return 0 if give_up else done

    def mark_missed(self, now: datetime) -> int:
        """Scheduled posts later than the maximum lateness fail as missed, with the reason."""
        cutoff = rules.missed_cutoff(now, self.config.max_lateness)
        with self.engine.connect() as conn:
            rows = store_publishing.posts_scheduled_before(conn, cutoff, self.brand_ids)
        n = 0
        for r in rows:
            reason = rules.missed_reason(r["scheduled_at"], now, self.config.max_lateness)
            with self.engine.begin() as conn:
                done = store_publishing.fail_missed(conn, r["id"], reason, now)
                if done:
                    _event(conn, dict(r), "missed", at=now, run_id=self.run_id, error=reason)
            n += done
        self.summary.add("missed", n)
        return n

    def violations(self, platform: str, body, media_urls, fmt, options=None) -> str | None:
        """Why a post cannot go out as it is (every rule it breaks), or None."""
        found = rules.validate_post(
            platform,
            body,
            media_urls,
            fmt,
            options=options,
            allowed_media_hosts=self.config.allowed_media_hosts,
        )
        return "; ".join(v.reason() for v in found) or None

    def reject_invalid(self, now: datetime) -> int:
        """Due posts a platform would refuse (too long, a media URL that is not public https,
        a format the platform cannot take, no media where it needs some) fail before any is
        claimed, each with the rules it breaks."""
        with self.engine.connect() as conn:
            rows = store_publishing.due_posts(
                conn,
                due_by=rules.due_horizon(now, self.config.window),
                not_before=rules.missed_cutoff(now, self.config.max_lateness),
                brand_ids=self.brand_ids,
            )
        n = 0
        for r in rows:
            reason = self.violations(
                r["platform"], r["body"], r["media_urls"], r["format"], r["publish_options"]
            )
            if reason is None:
                continue
            with self.engine.begin() as conn:
                done = store_publishing.fail_invalid(conn, r["id"], reason, now, seen=r)
                if done:
                    _event(conn, dict(r), "failed", at=now, run_id=self.run_id, error=reason)
            if done:
                n += 1
                self.summary.row(id=r["id"], platform=r["platform"], status="failed", error=reason)
        self.summary.add("invalid", n)
        self.summary.add("failed", n)
        return n

    # -- claiming -----------------------------------------------------------------------

    def claim_next(self) -> Claimed | None:
        """Claim the most overdue due post, or None. Committed before returning."""
        now = self.now()
        token = uuid.uuid4().hex
        with self.engine.begin() as conn:
            row = store_publishing.claim_next(
                conn,
                now=now,
                due_by=rules.due_horizon(now, self.config.window),
                not_before=rules.missed_cutoff(now, self.config.max_lateness),
                brand_ids=self.brand_ids,
                exclude_platforms=self._blocked_platforms(now),
                token=token,
                lease_expires_at=now + timedelta(seconds=self.config.lease_seconds),
            )
            if row is None:
                return None
            media = row["media_urls"]
            claimed = Claimed(
                id=row["id"],
                brand_id=row["brand_id"],
                platform=row["platform"],
                body=row["body"],
                media_urls=tuple(media) if isinstance(media, list) else (),
                raw_media=media,
                options=row["publish_options"],
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
        """The app's limit: no post of ``platform`` (and its app's others) until ``until``."""
        with self._blocked_lock:
            for p in APP_PLATFORMS.get(platform, (platform,)):
                if self._blocked.get(p, until) <= until:
                    self._blocked[p] = until

    def _block_account(self, platform: str, account: str, until: datetime, why: str) -> None:
        with self._blocked_lock:
            key = (platform, account)
            if key not in self._blocked_accounts or self._blocked_accounts[key][0] <= until:
                self._blocked_accounts[key] = (until, why)

    def _blocked_until(self, platform: str, account: str, now: datetime) -> Deferred | None:
        with self._blocked_lock:
            app = self._blocked.get(platform)
            until, why = self._blocked_accounts.get((platform, account), (None, ""))
        if app is not None and app > now:
            return Deferred(app, f"the {platform} app's rate limit is reached", scope="app")
        if until is not None and until > now:
            return Deferred(until, why or f"the {platform} account's rate limit is reached")
        return None

    def _window_until(self, conn, post: Claimed, account: str, now: datetime) -> Deferred | None:
        """The account's and the app's moving windows (sends recorded in the database, by
        every publisher): a Deferred when one is full, until it frees a place."""
        found: Deferred | None = None
        checks = [
            (w, account, "account") for w in self.config.account_limits.get(post.platform, ())
        ]
        checks += [(w, None, "app") for w in self.config.app_limits.get(post.platform, ())]
        for window, acct, scope in checks:
            nth = store_publishing.nth_newest_send(
                conn,
                platforms=[post.platform],
                since=now - timedelta(seconds=window.seconds),
                n=window.posts,
                external_account_id=acct,
                exclude_post=post.id,
            )
            until = rules.limit_until(nth, window)
            if until is not None and until > now and (found is None or until > found.until):
                found = Deferred(
                    until,
                    f"{post.platform} {scope} limit of {window.label()} posts reached",
                    scope=scope,
                )
        return found

    # -- publishing one post ------------------------------------------------------------

    def _take_slot(self) -> bool:
        """One more claim within ``max_posts_per_run`` (exact across the workers)."""
        with self._blocked_lock:
            if self._slots >= self.config.max_posts_per_run:
                return False
            self._slots += 1
            return True

    def _worker(self) -> None:
        while not self.stopping and self._take_slot():
            post = self.claim_next()
            if post is None:
                return
            self.publish_claimed(post)

    def _account(self, post: Claimed) -> Mapping | None:
        with self.engine.connect() as conn:
            return store_publishing.publishing_account(conn, post.brand_id, post.platform)

    def _about_to_send(self, post: Claimed, account: Mapping, sent: list[bool]) -> None:
        """The durable "about to send" record, committed before a request that can publish.

        Refuses (``NotSent``) when the run is stopping or the claim was lost meanwhile, so
        nothing goes out that this attempt could not record; defers (``Deferred``) when the
        account or the app has no room left in a limit's window. The account's row is
        locked while its window is counted and the send recorded, so publishers running at
        once never overshoot one account's limit."""
        if self.stopping:
            raise NotSent("the run stopped before sending")
        now = self.now()
        ext = account["external_account_id"]
        blocked = self._blocked_until(post.platform, ext, now)
        if blocked is not None:
            raise blocked
        with self.engine.begin() as conn:
            store_publishing.lock_account(conn, account["id"])
            held = store_publishing.mark_send_started(conn, post.id, post.claim_token, now)
            if not held:
                raise NotSent("the claim was lost before sending", lease_lost=True)
            full = self._window_until(conn, post, ext, now)
            if full is not None:
                raise full  # rolls the send record back
        sent[0] = True

    def publish_claimed(self, post: Claimed) -> str:
        sending = [False]  # set once "about to send" is committed
        try:
            # Checked again on the claimed row: the app may have edited it since the check.
            media = post.raw_media if post.raw_media is not None else post.media_urls
            invalid = self.violations(post.platform, post.body, media, post.format, post.options)
            if invalid:
                return self._fail(post, invalid)
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
                options=post.options if isinstance(post.options, dict) else None,
                before_send=functools.partial(self._about_to_send, post, account, sending),
            )
            if self.stopping:
                return self._release(post)
            if self.limit_headers is not None:
                self.limit_headers.clear()
            try:
                try:
                    result = publisher.publish(request)
                finally:
                    self._heed_headers(post, account)
            except Deferred as exc:
                return self._defer(post, account, exc)
            except NotSent as exc:
                if exc.lease_lost:
                    self.summary.add("lost_leases")
                    self.log.warning("post %s: %s; nothing sent", post.id, exc)
                    return "lost"
                return self._release(post)
            except UnsupportedPost as exc:
                return self._fail(post, str(exc))
            except PublishFailed as exc:
                return self._on_failure(post, exc, account)
            return self._on_published(post, result)
        except Exception as exc:  # a bug or a database failure: never lose the post silently
            reason = f"{type(exc).__name__}: {exc}"[:500]
            self.log.exception("publishing %s failed unexpectedly", post.id)
            if sending[0]:
                return self._unknown(
                    post, f"outcome unknown: internal error after sending: {reason}"
                )
            return self._retry(post, f"internal error before sending: {reason}", None)
        except BaseException:
            # Interrupted on this thread (one worker: SIGTERM or Ctrl-C reach the send itself).
            self.stop()
            if sending[0]:
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
            {"status": "scheduled", "claim_token": None, "send_started_at": None},
            "released",
            give_back_attempt=True,
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
        give_back_attempt: bool = False,
    ) -> bool:
        now = self.now()
        if values.get("last_error"):
            values = {**values, "last_error": redact(values["last_error"])}
        with self.engine.begin() as conn:
            done = store_publishing.finish_claim(
                conn,
                post.id,
                post.claim_token,
                now,
                values,
                published=event_status == "published",
                give_back_attempt=give_back_attempt,
            )
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
            {
                "status": "published",
                "external_post_id": result.external_post_id,
                "published_at": now,
                "last_error": None,
                "next_attempt_at": None,
            },
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

    def _heed_headers(self, post: Claimed, account: Mapping) -> None:
        """Rate-limit headers of the post's answers (success or not): an exhausted account
        or app waits until the reset they name, in this run and (the account's due posts)
        in the next."""
        if self.limit_headers is None:
            return
        now = self.now()
        state = rules.rate_state(post.platform, self.limit_headers.current(), now)
        if state.app_until is not None:
            self._block(post.platform, state.app_until)
        if state.account_until is not None:
            ext = account["external_account_id"]
            self._block_account(post.platform, ext, state.account_until, state.why)
            self._defer_account_posts(
                post.platform,
                ext,
                state.account_until,
                f"deferred: {state.why}; next attempt at "
                f"{state.account_until.isoformat(timespec='seconds')}",
            )
        if state.why:
            self.log.info("%s account %s: %s", post.platform, post.brand_id, state.why)

    def _defer_account_posts(self, platform: str, ext: str, until: datetime, reason: str) -> None:
        """The account's other due posts wait too (durably, for the next run). Best effort:
        if it fails (another publisher deferring the same posts at once) this run's block
        and the send-time checks still hold them back."""
        try:
            with self.engine.begin() as conn:
                store_publishing.defer_account_posts(conn, platform, ext, until, self.now(), reason)
        except Exception as exc:  # a deadlock or a lost connection: see above
            self.log.warning(
                "could not defer the other posts of a %s account: %s", platform, one_line(str(exc))
            )

    def _defer(self, post: Claimed, account: Mapping, exc: Deferred) -> str:
        """A rate limit: the post waits (``scheduled``, next attempt at ``exc.until``, the
        attempt not counted), and so do the account's other due posts (or, for the app's
        limit, every post of the platform in this run). Other accounts go on."""
        ext = account["external_account_id"]
        if exc.scope == "app":
            self._block(post.platform, exc.until)
        else:
            self._block_account(post.platform, ext, exc.until, exc.reason)
        reason = (
            f"deferred: {exc.reason}; next attempt at {exc.until.isoformat(timespec='seconds')}"
        )
        self._finish(
            post,
            {
                "status": "scheduled",
                "next_attempt_at": exc.until,
                "claim_token": None,
                "send_started_at": None,
                "last_error": reason,
            },
            "deferred",
            give_back_attempt=True,
            error=reason,
        )
        if exc.scope != "app":
            self._defer_account_posts(post.platform, ext, exc.until, reason)
        self.summary.add("deferred")
        self.summary.row(id=post.id, platform=post.platform, status="deferred", error=reason)
        return "deferred"

    def _on_failure(self, post: Claimed, exc: PublishFailed, account: Mapping) -> str:
        c = exc.classified
        reason = f"{exc.step}: {c.reason}"
        if c.outcome is Outcome.RETRY and c.rate_scope is not None:
            # Rate limited, nothing applied: the account (or app) waits, the post is not
            # failed and the attempt not counted. Its wait: the reset the headers named,
            # else Retry-After, else a default.
            now = self.now()
            headers = self.limit_headers.current() if self.limit_headers else {}
            state = rules.rate_state(post.platform, headers, now)
            named = state.app_until if c.rate_scope == "app" else state.account_until
            wait = c.retry_after if c.retry_after else rules.DEFAULT_THROTTLE_SECONDS
            until = named if named and named > now else now + timedelta(seconds=wait)
            return self._defer(post, account, Deferred(until, reason, scope=c.rate_scope))
        if c.outcome is Outcome.RETRY:
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
            {
                "status": "scheduled",
                "next_attempt_at": when,
                "claim_token": None,
                "send_started_at": None,
                "last_error": reason,
            },
            "retry_scheduled",
            error=f"{reason}; next attempt at {when.isoformat(timespec='seconds')}",
        )
        self.summary.add("retry_scheduled")
        self.summary.row(id=post.id, platform=post.platform, status="retry_scheduled", error=reason)
        return "retry_scheduled"

    def _unknown(self, post: Claimed, reason: str) -> str:
        self._finish(post, {"status": "unknown", "last_error": reason}, "unknown", error=reason)
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
            {"status": "failed", "last_error": reason, "next_attempt_at": None},
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


# --------------------------------------------------------------------- a whole run


@dataclass(frozen=True)
class WebhookAlert:
    """The publisher's ``alert``: each alert pushed once (``services.notifications``)."""

    engine: Engine
    webhook_url: str | None

    def __call__(self, dedup_key: str, kind: str, text: str, brand_id: str | None) -> None:
        push_once(
            self.engine,
            self.webhook_url,
            dedup_key=dedup_key,
            kind=kind,
            text=text,
            brand_id=brand_id,
        )


def single_attempt_client(base_url: str, policy: HttpPolicy, name: str) -> ApiClient:
    """A client that sends each request once: retrying a post is the publisher's decision."""
    return ApiClient(base_url, policy=dataclasses.replace(policy, max_attempts=1), name=name)


def media_fetcher(allowed_hosts: frozenset[tuple[str, int]] = frozenset()) -> SafeFetcher:
    """The fetcher that downloads media the publisher uploads itself (X): the safe fetcher
    (no private addresses but ``allowed_hosts``, every redirect checked), sized for media."""
    return SafeFetcher(
        HttpPolicy(
            max_bytes=max(rules.X_MEDIA_MAX_BYTES.values()),
            read_timeout=30.0,
            deadline=120.0,
            allowed_hosts=allowed_hosts,
            per_host_concurrency=8,
            per_host_interval=0.0,
            user_agent="marba-dagster-publisher/0.1",
        )
    )


def platform_publishers(
    graph: ApiClient,
    x: ApiClient,
    limit_headers: LimitHeaders | None = None,
    gbp: ApiClient | None = None,
    fetcher: SafeFetcher | None = None,
) -> dict[str, Publisher]:
    """The publisher of each platform: the Graph API for Facebook and Instagram, the X API,
    the Business Profile API for Google Business posts (when ``gbp`` is given).
    ``limit_headers`` is attached to the clients (the run reads each post's rate-limit
    headers from it)."""
    clients = [c for c in (graph, x, gbp) if c is not None]
    if limit_headers is not None:
        for client in clients:
            limit_headers.attach(client)
    graph_publisher = GraphPublisher(graph)
    out: dict[str, Publisher] = {
        "facebook": graph_publisher,
        "instagram": graph_publisher,
        "x": XPublisher(x, fetcher),
    }
    if gbp is not None:
        out["google_business"] = GbpPublisher(gbp)
    return out


def publish_due_posts(
    engine: Engine,
    graph: ApiClient,
    x: ApiClient,
    config: PublisherConfig,
    *,
    gbp: ApiClient | None = None,
    run_id: str,
    brand_ids: list[str] | None,
    webhook_url: str | None,
    logger: logging.Logger | None = None,
) -> RunSummary:
    """One publisher run over every due post (of ``brand_ids``, or of every active brand)."""
    headers = LimitHeaders()
    with media_fetcher(config.allowed_media_hosts) as fetcher:
        run = PublishRun(
            engine,
            platform_publishers(graph, x, headers, gbp, fetcher),
            config,
            run_id=run_id,
            brand_ids=brand_ids,
            alert=WebhookAlert(engine, webhook_url),
            logger=logger,
            limit_headers=headers,
        )
        return run.run()


# ---------------------------------------------------------- what a run left unpublished

# Outcomes of a post in a run that leave it unpublished for good (until a person acts).
UNPUBLISHED = ("failed", "missed", "unknown")
# Posts named per brand (the brand's count is exact).
POSTS_NAMED = 5


def post_reason(post: Mapping) -> str:
    """Why a post (its last ``publish_events`` row) was not published, in one short line."""
    reason = post["error"] or "no reason recorded"
    if reason.lower().startswith(post["status"] + ":"):  # "missed: due at ..."
        reason = reason[len(post["status"]) + 1 :]
    return one_line(reason, 100)


def unpublished_text(posts: list[Mapping]) -> str:
    """One line naming a brand's unpublished posts and why (at most ``POSTS_NAMED``)."""
    posts = sorted(posts, key=lambda p: p["scheduled_content_id"])
    named = "; ".join(
        f"post {p['scheduled_content_id']} ({p['platform']}) {p['status']}: {post_reason(p)}"
        for p in posts[:POSTS_NAMED]
    )
    more = f"; and {len(posts) - POSTS_NAMED} more" if len(posts) > POSTS_NAMED else ""
    return f"{len(posts)} post(s) not published: {named}{more}"


@dataclass
class RunPosts:
    """What a run left unpublished: each brand's problem (``None`` when every post it
    touched went out) and the unpublished posts, for the run's metadata."""

    problems: dict[str, str | None] = field(default_factory=dict)
    unpublished: list[dict] = field(default_factory=list)


def unpublished_by_brand(outcomes: Mapping[str, Mapping[str, Mapping]]) -> RunPosts:
    """From ``store.publishing.run_post_outcomes``: brand -> post id -> last event."""
    result = RunPosts()
    for brand_id in sorted(outcomes):
        bad = [p for p in outcomes[brand_id].values() if p["status"] in UNPUBLISHED]
        result.unpublished += [
            {
                "post": p["scheduled_content_id"],
                "brand_id": brand_id,
                "platform": p["platform"],
                "status": p["status"],
                "reason": post_reason(p),
            }
            for p in bad
        ]
        result.problems[brand_id] = unpublished_text(bad) if bad else None
    return result
