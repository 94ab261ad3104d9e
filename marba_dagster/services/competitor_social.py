"""Competitors' social activity, one brand at a time: read the Instagram and X accounts their
``social_accounts`` name, snapshot them, detect ``social_activity`` changes, store signals.

Instagram accounts are read through Business Discovery with the brand's own Instagram
business account and its token; X accounts through the user timeline with the app-only
bearer token (``MARBA_X_BEARER_TOKEN``). Without the credentials for a platform it is off:
a brand without an Instagram account skips its competitors' Instagram accounts (one note
for the brand), a run without the bearer token skips every X account (the asset says so
once). The changes become ``intelligence_signals`` of type ``competitor`` with
``payload.change_type`` ``social_activity``: the opportunity detector reads them as it reads
the website monitor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from marba_dagster.connectors.competitor_social import (
    AccountNotFound,
    BusinessDiscovery,
    SocialAccount,
    XTimeline,
)
from marba_dagster.connectors.describe import describe_error, one_line
from marba_dagster.connectors.http import HttpError
from marba_dagster.core.competitive.monitoring import row_id, signal_row
from marba_dagster.core.competitive.social import (
    SocialThresholds,
    detect_social_changes,
    merge_history,
    profile_url,
    social_targets,
)
from marba_dagster.core.tokens import graph_error_code, is_permission_denial, is_token_rejection
from marba_dagster.store import competitive as store_competitive
from marba_dagster.store import competitor_social as store
from marba_dagster.store.accounts import mark_needs_reconnect

ERROR_CHARS = 500


@dataclass
class SocialSources:
    """The clients a run reads with; ``timeline`` is None while X is off (no bearer token,
    or the token was rejected: ``x_off`` says why, once per run)."""

    discovery: BusinessDiscovery
    timeline: XTimeline | None
    x_off: str | None = None


@dataclass
class SocialOutcome:
    """What one brand's pass wrote and what it could not read."""

    snapshots: int = 0
    accounts_read: int = 0
    signals: list[dict[str, Any]] = field(default_factory=list)
    # (source, one-line cause) per account the platform failed to answer for.
    lost: list[tuple[str, str]] = field(default_factory=list)
    # Warnings for job_logs: names that are no account, accounts not found, Instagram off.
    notes: list[str] = field(default_factory=list)
    instagram_off: str | None = None
    skipped_x: int = 0


def _snapshot(
    brand_id: str,
    competitor: dict[str, Any],
    platform: str,
    name: str,
    now: datetime,
    run_id: str | None,
    account: SocialAccount | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    stamp = run_id if run_id is not None else now.isoformat()
    return {
        "id": row_id(brand_id, competitor["id"], "social", platform, name, stamp),
        "brand_id": brand_id,
        "competitor_id": competitor["id"],
        "platform": platform,
        "account": name,
        "fetched_at": now,
        "followers": account.followers if account else None,
        "post_count": account.post_count if account else None,
        "posts": [p.as_json() for p in account.posts] if account else [],
        "error": error[:ERROR_CHARS] if error else None,
        "run_id": run_id,
    }


def _source(platform: str, name: str, competitor: dict[str, Any]) -> str:
    return f"competitor {platform} account {name} of {competitor['name']} ({competitor['id']})"


def _read(
    platform: str,
    name: str,
    instagram: dict[str, Any] | None,
    sources: SocialSources,
    since: datetime,
) -> SocialAccount:
    """The account as its platform shows it (the caller checked the credentials exist)."""
    if platform == "instagram" and instagram is not None:
        return sources.discovery.account(
            instagram["external_account_id"], instagram["access_token"], name, since
        )
    if platform == "x" and sources.timeline is not None:
        return sources.timeline.account(name, since)
    raise ValueError(f"no credentials to read {platform} account {name!r}")


def collect_brand(
    engine: Engine,
    brand_id: str,
    competitors: list[dict[str, Any]],
    sources: SocialSources,
    now: datetime,
    *,
    run_id: str | None = None,
    thresholds: SocialThresholds | None = None,
) -> SocialOutcome:
    """Read, snapshot and compare the brand's competitors' Instagram and X accounts; store
    the snapshots and the ``social_activity`` signals in one transaction at the end.

    One account that cannot be read (an outage, a malformed answer, an unknown name) leaves
    an error snapshot and is reported; the others are still read. A rejected Instagram token
    flags the brand's account for reconnection and a token without the permission turns
    Instagram off for the brand (one note); a rejected bearer token turns X off for the rest
    of the run (``sources.x_off``)."""
    thresholds = thresholds or SocialThresholds()
    out = SocialOutcome()
    since = now - timedelta(days=thresholds.history_days)
    with engine.connect() as conn:
        instagram = store.instagram_business_account(conn, brand_id)
    snapshots: list[dict[str, Any]] = []
    signals: dict[str, dict[str, Any]] = {}
    for competitor in competitors:
        targets, invalid = social_targets(competitor)
        for platform, value in invalid:
            out.notes.append(
                f"competitor {competitor['name']} ({competitor['id']}): {platform} account "
                f"{value!r} is not an account name; not read"
            )
        for platform, name in targets:
            if platform == "instagram" and (instagram is None or out.instagram_off):
                out.instagram_off = out.instagram_off or (
                    "no connected Instagram business account to run Business Discovery with"
                )
                continue
            if platform == "x" and sources.timeline is None:
                out.skipped_x += 1
                continue
            try:
                account = _read(platform, name, instagram, sources, since)
            except AccountNotFound as exc:
                out.notes.append(f"competitor {competitor['name']} ({competitor['id']}): {exc}")
                snapshots.append(
                    _snapshot(brand_id, competitor, platform, name, now, run_id, error=str(exc))
                )
                continue
            except HttpError as err:
                if _off_for_credentials(engine, platform, err, instagram, sources, out):
                    continue
                cause = describe_error(err)
                out.lost.append((_source(platform, name, competitor), cause))
                snapshots.append(
                    _snapshot(brand_id, competitor, platform, name, now, run_id, error=cause)
                )
                continue
            out.accounts_read += 1
            snapshots.append(_snapshot(brand_id, competitor, platform, name, now, run_id, account))
            with engine.connect() as conn:
                earlier = store.earlier_posts(conn, competitor["id"], platform, name, since, run_id)
            history = merge_history(account.posts, earlier, since)
            source = f"{platform} @{account.handle or name}"
            url = profile_url(platform, name)
            for change in detect_social_changes(source, history, now, thresholds):
                change.details.update(platform=platform, account=name)
                row = signal_row(brand_id, competitor, url, f"competitor_{platform}", change, now)
                signals[row["dedup_key"]] = row
    with engine.begin() as conn:
        store.save_snapshots(conn, snapshots)
        store_competitive.upsert_competitor_signals(conn, list(signals.values()))
    out.snapshots = len(snapshots)
    out.signals = list(signals.values())
    return out


def _off_for_credentials(
    engine: Engine,
    platform: str,
    err: HttpError,
    instagram: dict[str, Any] | None,
    sources: SocialSources,
    out: SocialOutcome,
) -> bool:
    """True when ``err`` says the credentials cannot read this platform (then it is off, for
    the brand or the run) rather than that the account or the platform failed."""
    graph_code = graph_error_code(err.error_json) if platform == "instagram" else None
    if platform == "x" and is_token_rejection(err.status):
        sources.timeline = None
        sources.x_off = one_line(
            f"the app-only bearer token was rejected ({describe_error(err)}); X competitor "
            "accounts are not read for the rest of the run"
        )
        return True
    if platform != "instagram" or instagram is None:
        return False
    if is_token_rejection(err.status, graph_code):
        with engine.begin() as conn:
            mark_needs_reconnect(
                conn, instagram["id"], f"competitor social activity: {err.message}"
            )
        out.instagram_off = (
            f"the Instagram account's token was rejected; account {instagram['id']} flagged "
            "for reconnection"
        )
        return True
    if is_permission_denial(err.status, graph_code):
        out.instagram_off = one_line(
            "the Instagram account's token lacks Business Discovery permissions "
            f"(instagram_basic, pages_read_engagement): {describe_error(err)}"
        )
        return True
    return False


def platforms_off(
    x_off: str | None, x_skipped: int, instagram_off: dict[str, list[str]]
) -> list[str]:
    """One line per platform (and cause) the run could not read competitors on: X for the
    whole run, Instagram for the brands listed (at most ten named)."""
    lines = []
    if x_off:
        lines.append(f"X off: {x_off} ({x_skipped} competitor account(s) not read)")
    for reason, brand_ids in sorted(instagram_off.items()):
        named = ", ".join(brand_ids[:10]) + (", ..." if len(brand_ids) > 10 else "")
        lines.append(f"Instagram off for {len(brand_ids)} brand(s) ({named}): {reason}")
    return lines
