"""Competitive monitoring, one brand at a time: fetch, snapshot, compare, signal, gaps.

The ``competitive`` assets call these functions with a connection of their own
transaction; they read and write the MARBA tables through ``store.competitive`` and hold no
Dagster state, so tests and benchmarks drive them directly too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from marba_dagster.connectors.describe import describe_error, one_line
from marba_dagster.connectors.http import HttpError
from marba_dagster.connectors.safe_fetch import FetchResult, SafeFetcher
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
from marba_dagster.core.competitive.changes import merge_product_changes
from marba_dagster.core.competitive.extract import learn_page_noise
from marba_dagster.core.competitive.monitoring import (
    TEXT_CAP,
    cap_blocks,
    competitor_urls,
    feed_source,
    gap_rows,
    row_id,
    shift_row,
    short_hash,
    signal_row,
    site_source,
)
from marba_dagster.core.competitive.noise import NoiseMask
from marba_dagster.services.rows import checked_competitors
from marba_dagster.store import competitive as store_competitive

FetchOutcome = FetchResult | HttpError
# Changes that invalidate the brand's ``reimagine`` enrichment section at once.
SIGNIFICANT_CHANGES = ("pricing_change", "messaging_shift")
GAP_LOOKBACK = timedelta(days=30)
BRAND_POSTS_LOOKBACK = timedelta(days=90)


def fetch_urls(fetcher: SafeFetcher, urls: Iterable[str]) -> dict[str, FetchOutcome]:
    """Each distinct URL fetched once (concurrently): its result or its error."""
    unique = list(dict.fromkeys(urls))
    return dict(zip(unique, fetcher.fetch_many(unique), strict=True))


@dataclass
class SecondLoads:
    """Pages to load again before they are compared, and what is known of them.

    A page seen for the first time is loaded ``LEARNING_LOADS`` times so its noise is
    learned before its first snapshot is taken; a page whose text changed enough to be a
    ``website_change`` is loaded once more, so noise the mask did not know yet (a promo bar
    that happened to show the same message in the learning loads) is learned from the two
    loads and taken out before the change is judged.
    """

    masks: dict[str, NoiseMask] = field(default_factory=dict)  # stored masks, by URL
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # extracted with the mask
    urls: list[str] = field(default_factory=list)  # to load again
    results: dict[str, list[FetchOutcome]] = field(default_factory=dict)  # the extra loads

    def first_seen(self) -> list[str]:
        return [url for url in self.urls if url not in self.masks]


# Loads of a page seen for the first time (the normal one and two more): a noise that picks
# one of k messages at random shows the same one in all three only 1 in k^2 times.
LEARNING_LOADS = 3


def fetch_second_loads(fetcher: SafeFetcher, plan: SecondLoads) -> int:
    """Load the plan's pages again (first-seen pages twice more); how many loads were made."""
    first = fetch_urls(fetcher, plan.urls)
    plan.results = {url: [first[url]] for url in plan.urls}
    made = len(first)
    for _round in range(LEARNING_LOADS - 2):
        more = fetch_urls(fetcher, plan.first_seen())
        for url, outcome in more.items():
            plan.results[url].append(outcome)
        made += len(more)
    return made


def noise_id(url: str) -> str:
    return row_id("page-noise", url)


def _extracted(result: FetchResult, url: str, mask: NoiseMask | None) -> dict[str, Any]:
    row = extract_page(result.text, url, mask).as_row()
    row["text"] = (row["text"] or "")[:TEXT_CAP]
    row["blocks"] = cap_blocks(row["blocks"], TEXT_CAP)
    return row


def plan_second_loads(
    conn: Connection,
    competitors: Iterable[dict[str, Any]],
    results: dict[str, FetchOutcome],
    *,
    thresholds: ChangeThresholds | None = None,
    run_id: str | None = None,
) -> SecondLoads:
    """Which fetched pages of ``competitors`` to load again (see :class:`SecondLoads`)."""
    thresholds = thresholds or ChangeThresholds()
    pages = [
        (competitor, url)
        for competitor in competitors
        for kind, url in competitor_urls(competitor)
        if kind == "page" and isinstance(results.get(url), FetchResult)
    ]
    plan = SecondLoads()
    stored = store_competitive.page_noise(conn, {url: noise_id(url) for _c, url in pages})
    plan.masks = {url: NoiseMask.from_json(mask) for url, mask in stored.items()}
    wanted: dict[str, None] = {}
    for competitor, url in pages:
        if url not in plan.masks:
            wanted[url] = None
            continue
        history = store_competitive.recent_snapshots(conn, competitor["id"], url, "page", 1, run_id)
        try:
            if url not in plan.rows:
                plan.rows[url] = _extracted(results[url], url, plan.masks[url])
            changed = history and any(
                change.change_type == "website_change"
                for change in detect_page_changes(
                    history[0], plan.rows[url], thresholds, plan.masks[url]
                )
            )
        except Exception:  # noqa: BLE001 - the brand's own pass meets it and fails alone
            plan.rows.pop(url, None)
            continue
        if changed:
            wanted[url] = None
    plan.urls = list(wanted)
    return plan


@dataclass
class BrandOutcome:
    """What one brand's monitoring wrote (or, summed with ``add``, a whole run's)."""

    snapshots: int = 0
    failures: int = 0
    signals: list[dict[str, Any]] = field(default_factory=list)
    messaging_shifts: int = 0
    unreachable: list[dict[str, Any]] = field(default_factory=list)
    newly_unreachable: list[dict[str, Any]] = field(default_factory=list)
    invalidated_reimagine: bool = False
    # (source, one-line cause) for each competitor site or feed this run could not read.
    lost: list[tuple[str, str]] = field(default_factory=list)
    noise_learned: int = 0  # pages whose noise mask was learned or grew

    def add(self, other: BrandOutcome) -> None:
        """Sum another brand's counts, signals and unreachable competitors into this one."""
        self.snapshots += other.snapshots
        self.failures += other.failures
        self.signals += other.signals
        self.messaging_shifts += other.messaging_shifts
        self.unreachable += other.unreachable
        self.invalidated_reimagine |= other.invalidated_reimagine
        self.noise_learned += other.noise_learned


@dataclass
class _Writes:
    """Rows one brand's pass collects, written together at its end."""

    snapshots: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    shifts: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why reimagine is invalidated
    noise: dict[str, dict[str, Any]] = field(default_factory=dict)  # learned masks, by URL


def _error_text(err: HttpError) -> str:
    return str(err)[:500]


def _failed_before(conn: Connection, brand_id: str, run_id: str | None) -> set[str]:
    """Competitors whose failure an earlier attempt of ``run_id`` already counted; that
    attempt's snapshots are removed (the run's result replaces them)."""
    if run_id is None:
        return set()
    every_url_failed: dict[str, bool] = {}
    for competitor_id, error in store_competitive.run_snapshot_errors(conn, brand_id, run_id):
        every_url_failed[competitor_id] = (
            every_url_failed.get(competitor_id, True) and error is not None
        )
    if every_url_failed:
        store_competitive.delete_run_snapshots(conn, brand_id, run_id)
    return {cid for cid, all_failed in every_url_failed.items() if all_failed}


def _feed(
    brand_id: str,
    competitor: dict[str, Any],
    url: str,
    result: FetchResult,
    base: dict[str, Any],
    now: datetime,
    thresholds: ChangeThresholds,
    out: BrandOutcome,
    writes: _Writes,
) -> str | None:
    """Snapshot a fetched feed and signal a change of posting frequency; the error text if
    the feed could not be parsed (then it is a lost source)."""
    try:
        items = parse_feed(result.text)
    except ValueError as exc:
        message = f"feed could not be parsed: {exc}"[:500]
        writes.snapshots.append({**base, "status_code": result.status, "error": message})
        out.lost.append((feed_source(competitor), one_line(f"malformed answer: {message}")))
        return message
    feed_hash = short_hash(repr([(i["id"], i["title"], i["published"]) for i in items]), 64)
    writes.snapshots.append(
        {
            **base,
            "status_code": result.status,
            "content_hash": feed_hash,
            "feed_items": items,
            "title": None,
            "text": None,
        }
    )
    change = posting_frequency_change(item_times(items), now, source="feed", thresholds=thresholds)
    if change is not None:
        writes.signals.append(signal_row(brand_id, competitor, url, "competitor_feed", change, now))
    return None


def _page_mask(
    url: str, result: FetchResult, loads: SecondLoads, now: datetime, writes: _Writes
) -> NoiseMask | None:
    """The page's mask: the stored one, grown by what its extra loads show."""
    stored = loads.masks.get(url)
    extra = [r for r in loads.results.get(url, []) if isinstance(r, FetchResult)]
    if not extra:
        return stored
    if url in writes.noise:
        return NoiseMask.from_json(writes.noise[url]["mask"])
    learned = learn_page_noise([result.text, *(r.text for r in extra)])
    mask = stored.merge(learned) if stored is not None else learned
    if stored is None or mask.as_json() != stored.as_json():
        writes.noise[url] = {
            "id": noise_id(url),
            "url": url,
            "mask": mask.as_json(),
            "loads": mask.loads,
            "learned_at": now,
            "updated_at": now,
        }
    return mask


def _page(
    conn: Connection,
    brand_id: str,
    competitor: dict[str, Any],
    url: str,
    result: FetchResult,
    base: dict[str, Any],
    now: datetime,
    thresholds: ChangeThresholds,
    run_id: str | None,
    stamp: str,
    writes: _Writes,
    loads: SecondLoads,
) -> list[Change]:
    """Snapshot a fetched page (its learned noise left out) and compare it with the previous
    runs' snapshots: the changes, a messaging shift also as a ``messaging_shifts`` row."""
    mask = _page_mask(url, result, loads, now, writes)
    learned = any(isinstance(r, FetchResult) for r in loads.results.get(url, []))
    row = None if learned else loads.rows.get(url)
    if row is None:
        row = _extracted(result, url, mask)
    writes.snapshots.append({**base, "status_code": result.status, **row})
    history = store_competitive.recent_snapshots(
        conn, competitor["id"], url, "page", thresholds.messaging_baseline_size, run_id
    )
    previous = history[0] if history else None
    changes: list[Change] = detect_page_changes(previous, row, thresholds, mask)
    if previous and (previous.get("positioning_text") or "") != row["positioning_text"]:
        shift = messaging_shift(
            [h.get("positioning_text") or "" for h in history], row["positioning_text"], thresholds
        )
        if shift is not None:
            changes.append(shift)
            writes.shifts.append(shift_row(brand_id, competitor, url, shift, stamp, now))
    return changes


def _reachability(
    conn: Connection,
    competitor: dict[str, Any],
    urls: Sequence[tuple[str, str]],
    read: int,
    errors: Sequence[str],
    already_failed: set[str],
    failure_limit: int,
    now: datetime,
    out: BrandOutcome,
) -> None:
    """A run where every URL of the competitor failed counts as a failure; ``failure_limit``
    failed runs in a row make it unreachable. Any URL read resets it."""
    if not urls or read:
        store_competitive.set_reachability(
            conn,
            competitor["id"],
            consecutive_failures=0,
            reachability="ok",
            last_error=None,
            checked_at=now,
        )
        return
    failures = int(competitor.get("consecutive_failures") or 0) + (
        0 if competitor["id"] in already_failed else 1
    )
    state = "unreachable" if failures >= failure_limit else "failing"
    last_error = errors[0] if errors else None
    store_competitive.set_reachability(
        conn,
        competitor["id"],
        consecutive_failures=failures,
        reachability=state,
        last_error=last_error,
        checked_at=now,
    )
    out.failures += 1
    info = {
        "competitor_id": competitor["id"],
        "name": competitor["name"],
        "consecutive_failures": failures,
        "last_error": last_error,
    }
    if state == "unreachable":
        out.unreachable.append(info)
        if competitor.get("reachability") != "unreachable":
            out.newly_unreachable.append(info)


def process_brand(
    conn: Connection,
    brand_id: str,
    competitors: Sequence[dict[str, Any]],
    results: dict[str, FetchOutcome],
    now: datetime,
    *,
    thresholds: ChangeThresholds | None = None,
    failure_limit: int = 3,
    run_id: str | None = None,
    second_loads: SecondLoads | None = None,
) -> BrandOutcome:
    """Snapshots, change signals, messaging shifts and reachability for one brand.

    With ``run_id`` (the Dagster run), a retry of the same run is idempotent: the run's own
    snapshots from an earlier attempt are replaced (same transaction), changes are measured
    against the previous run's snapshots, a competitor's failure counts once per run, and a
    messaging shift is one row per run.

    ``second_loads`` (:func:`plan_second_loads`, then fetched) teach each page's noise mask;
    a product that changed on several pages of a competitor is one signal.
    """
    thresholds = thresholds or ChangeThresholds()
    loads = second_loads or SecondLoads()
    out = BrandOutcome()
    writes = _Writes()
    already_failed = _failed_before(conn, brand_id, run_id)
    stamp = run_id if run_id is not None else now.isoformat()
    for competitor in competitors:
        urls = competitor_urls(competitor)
        read = 0
        errors: list[str] = []
        page_causes: list[str] = []
        found: list[tuple[str, Change]] = []
        for kind, url in urls:
            result = results.get(url)
            base = {
                "id": row_id(brand_id, competitor["id"], kind, url, stamp),
                "brand_id": brand_id,
                "competitor_id": competitor["id"],
                "url": url,
                "kind": kind,
                "fetched_at": now,
                "run_id": run_id,
            }
            if result is None or isinstance(result, HttpError):
                message = _error_text(result) if result is not None else "not fetched"
                errors.append(message)
                writes.snapshots.append(
                    {**base, "status_code": getattr(result, "status", None), "error": message}
                )
                cause = describe_error(result) if result is not None else "not fetched"
                if kind == "feed":
                    out.lost.append((feed_source(competitor), cause))
                else:
                    page_causes.append(cause)
                continue
            if kind == "feed":
                error = _feed(brand_id, competitor, url, result, base, now, thresholds, out, writes)
                if error is None:
                    read += 1
                else:
                    errors.append(error)
                continue
            read += 1
            changes = _page(
                conn,
                brand_id,
                competitor,
                url,
                result,
                base,
                now,
                thresholds,
                run_id,
                stamp,
                writes,
                loads,
            )
            found += [(url, change) for change in changes]
        for url, change in merge_product_changes(found):
            per_page = change.change_type not in ("pricing_change", "product_launch")
            writes.signals.append(
                signal_row(
                    brand_id, competitor, url, "competitor_site", change, now, per_page=per_page
                )
            )
            if change.change_type in SIGNIFICANT_CHANGES:
                writes.reasons.append(f"{competitor['name']}: {change.title}")
        if page_causes:
            pages = sum(1 for kind, _url in urls if kind == "page")
            out.lost.append(
                (
                    site_source(competitor),
                    one_line(f"{len(page_causes)} of {pages} page(s) unread: {page_causes[0]}"),
                )
            )
        _reachability(conn, competitor, urls, read, errors, already_failed, failure_limit, now, out)

    store_competitive.insert_snapshots(conn, writes.snapshots)
    store_competitive.save_page_noise(conn, list(writes.noise.values()))
    out.noise_learned = len(writes.noise)
    # One row per event: the same signal seen again (a retried run) updates its row.
    by_key = {row["dedup_key"]: row for row in writes.signals}
    store_competitive.upsert_competitor_signals(conn, list(by_key.values()))
    store_competitive.upsert_messaging_shifts(conn, writes.shifts)
    if writes.reasons:
        store_competitive.invalidate_section(
            conn, brand_id, "reimagine", now, "; ".join(writes.reasons)
        )
        out.invalidated_reimagine = True
    out.snapshots = len(writes.snapshots)
    out.signals = list(by_key.values())
    out.messaging_shifts = len(writes.shifts)
    return out


def _activity(conn: Connection, competitor: dict[str, Any], since: datetime) -> CompetitorActivity:
    """What a competitor has been saying and where, from its latest good snapshots."""
    activity = CompetitorActivity(competitor["id"], competitor["name"])
    activity.channels = {
        str(platform).lower()
        for platform, account in (competitor.get("social_accounts") or {}).items()
        if account
    }
    for kind, url in competitor_urls(competitor):
        row = store_competitive.latest_good_snapshot(conn, competitor["id"], url, kind, since)
        if row is None:
            continue
        if kind == "page":
            activity.texts += [h for h in (row["headlines"] or []) if isinstance(h, str)]
            continue
        for item in row["feed_items"] or []:
            if item.get("title"):
                activity.texts.append(item["title"])
            activity.formats[item.get("format") or "link"] += 1
    return activity


def compute_brand_gaps(
    conn: Connection, brand_id: str, now: datetime, *, lookback: timedelta = GAP_LOOKBACK
) -> list[dict[str, Any]]:
    """Recompute and store one brand's gaps; gaps no longer found are closed."""
    since = now - lookback
    # The rows checked at the boundary (core.rows); competitor_snapshots, earlier in the
    # same job, reported their problems.
    competitors = checked_competitors(store_competitive.active_competitors(conn, [brand_id]))[0][
        brand_id
    ]
    activities = [_activity(conn, competitor, since) for competitor in competitors]
    brand = store_competitive.brand_profile(conn, brand_id)
    brand_texts = (
        [brand["name"], brand["industry"], *[str(k) for k in (brand["keywords"] or [])]]
        if brand
        else []
    )
    brand_texts += store_competitive.recent_post_bodies(conn, brand_id, now - BRAND_POSTS_LOOKBACK)
    gaps = find_gaps(
        activities,
        brand_texts,
        store_competitive.brand_channels(conn, brand_id),
        store_competitive.brand_formats(conn, brand_id),
    )
    rows = gap_rows(brand_id, gaps, now)
    store_competitive.save_gaps(conn, brand_id, rows)
    return rows
