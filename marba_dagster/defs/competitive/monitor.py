"""Competitive monitoring, one brand at a time: fetch, snapshot, compare, signal, gaps.

The Dagster assets (``assets.py``) call these functions; they read and write the MARBA
tables through SQLAlchemy Core and hold no Dagster state, so tests and benchmarks drive
them directly too.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.engine import Connection

from marba_dagster.connectors.describe import describe_error, one_line
from marba_dagster.connectors.http import HttpError
from marba_dagster.connectors.safe_fetch import (
    FetchPolicy,
    FetchResult,
    Resolver,
    SafeFetcher,
    parse_allowed_hosts,
)
from marba_dagster.core.competitive import (
    Change,
    ChangeThresholds,
    CompetitorActivity,
    detect_page_changes,
    extract_page,
    find_gaps,
    item_times,
    messaging_shift,
    parse_feed,
    posting_frequency_change,
)
from marba_dagster.defs.resources import InvalidSetting
from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert

ALLOWED_HOSTS_ENV = "MARBA_FETCH_ALLOWED_HOSTS"
PER_HOST_CONCURRENCY_ENV = "MARBA_FETCH_PER_HOST_CONCURRENCY"
PER_HOST_INTERVAL_ENV = "MARBA_FETCH_PER_HOST_INTERVAL"

TEXT_CAP = 100_000
SIGNAL_TTL = timedelta(days=7)
MiB = 1024 * 1024


class SafeFetchSettings(dg.ConfigurableResource):
    """The safe fetcher for competitor sites: limits, politeness and the loopback allow-list.

    ``MARBA_FETCH_PER_HOST_CONCURRENCY`` and ``MARBA_FETCH_PER_HOST_INTERVAL`` are bound as
    text and read when the step runs, so a bad value fails the step at once with
    ``InvalidSetting`` (no retries) instead of stopping the code location from loading.
    """

    allowed_hosts: str = Field(
        default="",
        description="comma-separated host:port reachable although private/loopback (MARBA_FETCH_ALLOWED_HOSTS)",
    )
    max_bytes: int = Field(default=5 * MiB, description="body cap after decompression")
    deadline: float = Field(default=20.0, description="total seconds per fetch, redirects included")
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_redirects: int = 5
    max_concurrency: int = Field(default=16, description="fetches in flight at once, all hosts")
    per_host_concurrency: int = 2
    per_host_interval: float = Field(
        default=0.25, description="seconds between requests to one host"
    )
    failure_limit: int = Field(
        default=3, description="consecutive failed runs before a competitor is unreachable"
    )
    per_host_concurrency_env: str | None = Field(
        default=None,
        description=f"{PER_HOST_CONCURRENCY_ENV} when set: overrides per_host_concurrency",
    )
    per_host_interval_env: str | None = Field(
        default=None,
        description=f"{PER_HOST_INTERVAL_ENV} when set: overrides per_host_interval (seconds)",
    )

    def _number(self, env: str, text: str, kind: type, minimum: float) -> float:
        try:
            value = kind(text.strip())
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < minimum:
            raise InvalidSetting(
                env, text, f"must be {'an integer' if kind is int else 'a number'} >= {minimum:g}"
            )
        return value

    def policy(self) -> FetchPolicy:
        """The fetcher's policy; a value it cannot work with fails with ``InvalidSetting``."""
        concurrency, interval = self.per_host_concurrency, self.per_host_interval
        if self.per_host_concurrency_env is not None:
            concurrency = self._number(
                PER_HOST_CONCURRENCY_ENV, self.per_host_concurrency_env, int, 1
            )
        if self.per_host_interval_env is not None:
            interval = self._number(PER_HOST_INTERVAL_ENV, self.per_host_interval_env, float, 0)
        rules = [
            ("max_bytes", self.max_bytes >= 1, "must be >= 1"),
            ("deadline", self.deadline > 0, "must be > 0"),
            ("connect_timeout", self.connect_timeout > 0, "must be > 0"),
            ("read_timeout", self.read_timeout > 0, "must be > 0"),
            ("max_redirects", self.max_redirects >= 0, "must be >= 0"),
            ("max_concurrency", self.max_concurrency >= 1, "must be >= 1"),
            ("per_host_concurrency", concurrency >= 1, "must be >= 1"),
            ("per_host_interval", interval >= 0, "must be >= 0"),
            ("failure_limit", self.failure_limit >= 1, "must be >= 1"),
        ]
        for name, ok, rule in rules:
            if not ok:
                value = {"per_host_concurrency": concurrency, "per_host_interval": interval}.get(
                    name, getattr(self, name)
                )
                raise InvalidSetting(f"safe_fetch.{name}", value, rule)
        try:
            allowed = parse_allowed_hosts(self.allowed_hosts)
        except ValueError as exc:
            raise InvalidSetting(
                ALLOWED_HOSTS_ENV,
                self.allowed_hosts,
                str(exc).removeprefix(f"{ALLOWED_HOSTS_ENV}: "),
            ) from None
        return FetchPolicy(
            max_bytes=self.max_bytes,
            deadline=self.deadline,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_redirects=self.max_redirects,
            max_concurrency=self.max_concurrency,
            per_host_concurrency=concurrency,
            per_host_interval=interval,
            allowed_hosts=allowed,
        )

    def fetcher(self, resolver: Resolver | None = None) -> SafeFetcher:
        return SafeFetcher(self.policy(), resolver=resolver)


def _h(text: str, n: int = 16) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:n]


def _id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


# ----------------------------------------------------------------------------- reading


def load_competitors(conn: Connection, brand_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    c = s.competitors
    out: dict[str, list[dict[str, Any]]] = {b: [] for b in brand_ids}
    if not brand_ids:
        return out
    rows = conn.execute(
        sa.select(c)
        .where(c.c.brand_id.in_(list(brand_ids)), c.c.is_active.is_(True))
        .order_by(c.c.brand_id, c.c.id)
    ).mappings()
    for r in rows:
        out[r["brand_id"]].append(dict(r))
    return out


def competitor_urls(comp: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, url) to watch: the website and watch URLs (deduplicated), then the feed."""
    seen: list[str] = []
    for u in [comp.get("website_url"), *(comp.get("watch_urls") or [])]:
        if isinstance(u, str) and u.strip() and u.strip() not in seen:
            seen.append(u.strip())
    urls = [("page", u) for u in seen]
    feed = comp.get("feed_url")
    if isinstance(feed, str) and feed.strip():
        urls.append(("feed", feed.strip()))
    return urls


def _recent_snapshots(
    conn: Connection, competitor_id: str, url: str, kind: str, limit: int, run_id: str | None = None
) -> list[dict[str, Any]]:
    """Latest good snapshots first, from earlier runs only (never the current run's own)."""
    t = s.competitive_intelligence_snapshots
    earlier = sa.true() if run_id is None else sa.or_(t.c.run_id.is_(None), t.c.run_id != run_id)
    rows = conn.execute(
        sa.select(
            t.c.content_hash,
            t.c.text,
            t.c.prices,
            t.c.products,
            t.c.positioning_text,
            t.c.feed_items,
            t.c.fetched_at,
        )
        .where(
            t.c.competitor_id == competitor_id,
            t.c.url == url,
            t.c.kind == kind,
            t.c.error.is_(None),
            earlier,
        )
        .order_by(t.c.fetched_at.desc())
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


# ----------------------------------------------------------------------------- fetching


def fetch_urls(fetcher: SafeFetcher, urls: Iterable[str]) -> dict[str, FetchResult | HttpError]:
    unique = list(dict.fromkeys(urls))
    return dict(zip(unique, fetcher.fetch_many(unique)))


# ------------------------------------------------------------------------------ writing


@dataclass
class BrandOutcome:
    snapshots: int = 0
    failures: int = 0
    signals: list[dict[str, Any]] = field(default_factory=list)
    messaging_shifts: int = 0
    unreachable: list[dict[str, Any]] = field(default_factory=list)
    newly_unreachable: list[dict[str, Any]] = field(default_factory=list)
    invalidated_reimagine: bool = False
    # (source, one-line cause) for each competitor site or feed this run could not read.
    lost: list[tuple[str, str]] = field(default_factory=list)


def site_source(comp: dict[str, Any]) -> str:
    return f"competitor site {comp['name']} ({comp['id']})"


def feed_source(comp: dict[str, Any]) -> str:
    return f"competitor feed {comp['name']} ({comp['id']})"


def _signal_row(
    brand_id: str, comp: dict[str, Any], url: str, source: str, change: Change, now: datetime
) -> dict[str, Any]:
    dedup = f"{comp['id']}:{_h(url, 8)}:{change.key}"
    if len(dedup) > 200:
        dedup = f"{comp['id'][:80]}:{change.change_type}:{_h(dedup, 40)}"
    return {
        "id": _id(brand_id, "competitor", dedup),
        "brand_id": brand_id,
        "signal_type": "competitor",
        "source": source,
        "title": f"{comp['name']}: {change.title}"[:1000],
        "payload": {
            "change_type": change.change_type,
            "competitor_id": comp["id"],
            "competitor_name": comp["name"],
            "url": url,
            **change.details,
        },
        "dedup_key": dedup,
        "observed_at": now,
        "valid_until": now + SIGNAL_TTL,
        "strength": float(change.strength),
    }


_SNAPSHOT_DEFAULTS: dict[str, Any] = {
    "status_code": None,
    "content_hash": None,
    "title": None,
    "meta_description": None,
    "headlines": [],
    "prices": [],
    "products": [],
    "feed_items": [],
    "positioning_text": None,
    "text": None,
    "error": None,
    "run_id": None,
}


def _full_snapshot(row: dict[str, Any]) -> dict[str, Any]:
    """Every column present, so one executemany inserts rows of every kind."""
    return {**_SNAPSHOT_DEFAULTS, **row}


def _error_text(err: HttpError) -> str:
    return str(err)[:500]


def process_brand(
    conn: Connection,
    brand_id: str,
    competitors: Sequence[dict[str, Any]],
    results: dict[str, FetchResult | HttpError],
    now: datetime,
    *,
    thresholds: ChangeThresholds = ChangeThresholds(),
    failure_limit: int = 3,
    run_id: str | None = None,
) -> BrandOutcome:
    """Snapshots, change signals, messaging shifts and reachability for one brand.

    With ``run_id`` (the Dagster run), a retry of the same run is idempotent: the run's own
    snapshots from an earlier attempt are replaced (same transaction), changes are measured
    against the previous run's snapshots, a competitor's failure counts once per run, and a
    messaging shift is one row per run.
    """
    out = BrandOutcome()
    t = s.competitive_intelligence_snapshots
    already_failed: set[str] = set()  # competitors whose failure this run already counted
    if run_id is not None:
        earlier: dict[str, bool] = {}
        for cid, err in conn.execute(
            sa.select(t.c.competitor_id, t.c.error).where(
                t.c.brand_id == brand_id, t.c.run_id == run_id
            )
        ):
            earlier[cid] = earlier.get(cid, True) and err is not None
        already_failed = {cid for cid, all_failed in earlier.items() if all_failed}
        if earlier:
            conn.execute(t.delete().where(t.c.brand_id == brand_id, t.c.run_id == run_id))
    stamp = run_id if run_id is not None else now.isoformat()
    snap_rows: list[dict[str, Any]] = []
    signal_rows: list[dict[str, Any]] = []
    shift_rows: list[dict[str, Any]] = []
    reasons: list[str] = []
    for comp in competitors:
        urls = competitor_urls(comp)
        ok = 0
        errors: list[str] = []
        page_causes: list[str] = []
        for kind, url in urls:
            res = results.get(url)
            base = {
                "id": _id(brand_id, comp["id"], kind, url, stamp),
                "brand_id": brand_id,
                "competitor_id": comp["id"],
                "url": url,
                "kind": kind,
                "fetched_at": now,
                "run_id": run_id,
            }
            if res is None or isinstance(res, HttpError):
                msg = _error_text(res) if res is not None else "not fetched"
                errors.append(msg)
                snap_rows.append(
                    {**base, "status_code": getattr(res, "status", None), "error": msg}
                )
                cause = describe_error(res) if res is not None else "not fetched"
                if kind == "feed":
                    out.lost.append((feed_source(comp), cause))
                else:
                    page_causes.append(cause)
                continue
            if kind == "feed":
                try:
                    items = parse_feed(res.text)
                except ValueError as exc:
                    msg = f"feed could not be parsed: {exc}"[:500]
                    errors.append(msg)
                    snap_rows.append({**base, "status_code": res.status, "error": msg})
                    out.lost.append((feed_source(comp), one_line(f"malformed answer: {msg}")))
                    continue
                ok += 1
                fhash = _h(repr([(i["id"], i["title"], i["published"]) for i in items]), 64)
                snap_rows.append(
                    {
                        **base,
                        "status_code": res.status,
                        "content_hash": fhash,
                        "feed_items": items,
                        "title": None,
                        "text": None,
                    }
                )
                change = posting_frequency_change(
                    item_times(items), now, source="feed", thresholds=thresholds
                )
                if change is not None:
                    signal_rows.append(
                        _signal_row(brand_id, comp, url, "competitor_feed", change, now)
                    )
                continue
            ok += 1
            page = extract_page(res.text, url)
            row = page.as_row()
            row["text"] = (row["text"] or "")[:TEXT_CAP]
            snap_rows.append({**base, "status_code": res.status, **row})
            history = _recent_snapshots(
                conn, comp["id"], url, "page", thresholds.messaging_baseline_size, run_id
            )
            previous = history[0] if history else None
            changes = detect_page_changes(previous, row, thresholds)
            if previous and (previous.get("positioning_text") or "") != row["positioning_text"]:
                shift = messaging_shift(
                    [h.get("positioning_text") or "" for h in history],
                    row["positioning_text"],
                    thresholds,
                )
                if shift is not None:
                    changes.append(shift)
                    shift_rows.append(
                        {
                            "id": _id(brand_id, comp["id"], url, "shift", stamp),
                            "brand_id": brand_id,
                            "competitor_id": comp["id"],
                            "url": url,
                            "shift_score": shift.details["shift_score"],
                            "terms_gained": shift.details["terms_gained"],
                            "terms_lost": shift.details["terms_lost"],
                            "before_text": shift.details["before_text"],
                            "after_text": shift.details["after_text"],
                            "detected_at": now,
                        }
                    )
            for change in changes:
                signal_rows.append(_signal_row(brand_id, comp, url, "competitor_site", change, now))
                if change.change_type in ("pricing_change", "messaging_shift"):
                    reasons.append(f"{comp['name']}: {change.title}")

        if page_causes:
            pages = sum(1 for kind, _ in urls if kind == "page")
            out.lost.append(
                (
                    site_source(comp),
                    one_line(f"{len(page_causes)} of {pages} page(s) unread: {page_causes[0]}"),
                )
            )

        # Reachability: a run where every URL of the competitor failed counts as a failure.
        c = s.competitors
        if urls and ok == 0:
            failures = int(comp.get("consecutive_failures") or 0) + (
                0 if comp["id"] in already_failed else 1
            )
            state = "unreachable" if failures >= failure_limit else "failing"
            conn.execute(
                c.update()
                .where(c.c.id == comp["id"])
                .values(
                    consecutive_failures=failures,
                    reachability=state,
                    last_error=errors[0] if errors else None,
                    last_checked_at=now,
                )
            )
            out.failures += 1
            info = {
                "competitor_id": comp["id"],
                "name": comp["name"],
                "consecutive_failures": failures,
                "last_error": errors[0] if errors else None,
            }
            if state == "unreachable":
                out.unreachable.append(info)
                if comp.get("reachability") != "unreachable":
                    out.newly_unreachable.append(info)
        else:
            conn.execute(
                c.update()
                .where(c.c.id == comp["id"])
                .values(
                    consecutive_failures=0, reachability="ok", last_error=None, last_checked_at=now
                )
            )

    if snap_rows:
        conn.execute(
            s.competitive_intelligence_snapshots.insert(), [_full_snapshot(r) for r in snap_rows]
        )
    # One row per event: the same signal seen again (a retried run) updates its row.
    by_key = {r["dedup_key"]: r for r in signal_rows}
    upsert(
        conn,
        s.intelligence_signals,
        list(by_key.values()),
        ["brand_id", "signal_type", "dedup_key"],
        ["title", "payload", "valid_until", "strength"],
    )
    if shift_rows:
        upsert(conn, s.messaging_shifts, shift_rows, ["id"])  # a retry's result replaces its own
    if reasons:
        upsert(
            conn,
            s.enrichment_schedule,
            [
                {
                    "brand_id": brand_id,
                    "section": "reimagine",
                    "invalidated_at": now,
                    "invalidated_reason": ("; ".join(reasons))[:1000],
                }
            ],
            ["brand_id", "section"],
            ["invalidated_at", "invalidated_reason"],
        )
        out.invalidated_reimagine = True
    out.snapshots = len(snap_rows)
    out.signals = list(by_key.values())
    out.messaging_shifts = len(shift_rows)
    return out


# --------------------------------------------------------------------------------- gaps


def compute_brand_gaps(
    conn: Connection, brand_id: str, now: datetime, *, lookback_days: int = 30
) -> list[dict[str, Any]]:
    """Recompute and store one brand's gaps; gaps no longer found are closed."""
    since = now - timedelta(days=lookback_days)
    comps = load_competitors(conn, [brand_id])[brand_id]
    t = s.competitive_intelligence_snapshots
    activities = []
    for comp in comps:
        act = CompetitorActivity(comp["id"], comp["name"])
        act.channels = {str(k).lower() for k, v in (comp.get("social_accounts") or {}).items() if v}
        for kind, url in competitor_urls(comp):
            row = (
                conn.execute(
                    sa.select(t.c.headlines, t.c.positioning_text, t.c.feed_items)
                    .where(
                        t.c.competitor_id == comp["id"],
                        t.c.url == url,
                        t.c.kind == kind,
                        t.c.error.is_(None),
                        t.c.fetched_at >= since,
                    )
                    .order_by(t.c.fetched_at.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if row is None:
                continue
            if kind == "page":
                act.texts += [h for h in (row["headlines"] or []) if isinstance(h, str)]
            else:
                for item in row["feed_items"] or []:
                    if item.get("title"):
                        act.texts.append(item["title"])
                    act.formats[item.get("format") or "link"] += 1
        activities.append(act)

    brand = (
        conn.execute(
            sa.select(s.brands.c.name, s.brands.c.industry, s.brands.c.keywords).where(
                s.brands.c.id == brand_id
            )
        )
        .mappings()
        .first()
    )
    brand_texts = (
        [brand["name"], brand["industry"], *[str(k) for k in (brand["keywords"] or [])]]
        if brand
        else []
    )
    cp = s.content_posts
    brand_texts += [
        r[0]
        for r in conn.execute(
            sa.select(cp.c.body)
            .where(cp.c.brand_id == brand_id, cp.c.published_at >= now - timedelta(days=90))
            .order_by(cp.c.published_at.desc())
            .limit(2000)
        )
    ]
    formats = {
        r[0]
        for r in conn.execute(sa.select(cp.c.format).where(cp.c.brand_id == brand_id).distinct())
    }
    sc = s.scheduled_content
    formats |= {
        r[0]
        for r in conn.execute(sa.select(sc.c.format).where(sc.c.brand_id == brand_id).distinct())
    }
    pa = s.platform_accounts
    channels = {
        r[0]
        for r in conn.execute(
            sa.select(pa.c.platform)
            .where(pa.c.brand_id == brand_id, pa.c.is_active.is_(True))
            .distinct()
        )
    }

    gaps = find_gaps(activities, brand_texts, channels, formats)
    rows = [
        {
            "id": _id(brand_id, g.gap_type, g.gap_key),
            "brand_id": brand_id,
            "gap_type": g.gap_type,
            "gap_key": g.gap_key[:200],
            "score": g.score,
            "evidence": g.evidence,
            "detected_at": now,
            "status": "open",
        }
        for g in gaps
    ]
    upsert(
        conn,
        s.competitive_gaps,
        rows,
        ["brand_id", "gap_type", "gap_key"],
        ["score", "evidence", "detected_at", "status"],
    )
    g = s.competitive_gaps
    current = {(r["gap_type"], r["gap_key"]) for r in rows}
    stale = [
        r
        for r in conn.execute(
            sa.select(g.c.id, g.c.gap_type, g.c.gap_key).where(
                g.c.brand_id == brand_id, g.c.status == "open"
            )
        ).mappings()
        if (r["gap_type"], r["gap_key"]) not in current
    ]
    if stale:
        conn.execute(g.update().where(g.c.id.in_([r["id"] for r in stale])).values(status="closed"))
    return rows


def chunk_brands(
    brand_ids: Sequence[str], comps: dict[str, list[dict[str, Any]]], max_urls: int = 600
) -> list[list[str]]:
    """Brands in groups of at most ``max_urls`` URLs, so fetched bodies stay bounded."""
    chunks: list[list[str]] = []
    cur: list[str] = []
    n = 0
    for b in brand_ids:
        k = sum(len(competitor_urls(c)) for c in comps.get(b, []))
        if cur and n + k > max_urls:
            chunks.append(cur)
            cur, n = [], 0
        cur.append(b)
        n += k
    if cur:
        chunks.append(cur)
    return chunks


def signal_counts(signals: Iterable[dict[str, Any]]) -> Counter[str]:
    return Counter(r["payload"]["change_type"] for r in signals)
