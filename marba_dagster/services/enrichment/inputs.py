"""Each section's inputs for a batch of brands, as the analyzer's frames, with the input
fingerprint that says whether anything changed since the cached entry.

The tables are read for the whole batch (``store.enrichment``: one query per table per
chunk of brands) and split per brand here, so a run over a thousand brands makes a handful
of queries, not thousands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection

from marba_dagster.core.enrichment.analyzers import industry_kpis
from marba_dagster.core.enrichment.fingerprint import fingerprint
from marba_dagster.store import enrichment as store_enrichment

EMPTY = pd.DataFrame()

# brand id -> (frames for the analyzer, input fingerprint)
SectionInputs = dict[str, tuple[dict[str, pd.DataFrame], str]]
# industry -> (fingerprint, per-brand KPIs) of the industry's active brands
Peers = dict[str, tuple[str, pd.DataFrame]]


def split_by_brand(frame: pd.DataFrame, brand_ids: Sequence[str]) -> dict[str, pd.DataFrame]:
    """One frame per brand of ``brand_ids`` (an empty frame for a brand without rows)."""
    if frame.empty:
        return dict.fromkeys(brand_ids, EMPTY)
    groups = {k: g.reset_index(drop=True) for k, g in frame.groupby("brand_id", sort=False)}
    return {b: groups.get(b, EMPTY) for b in brand_ids}


def load_section_inputs(
    conn: Connection,
    section: str,
    brands: dict[str, dict[str, Any]],
    now: datetime,
    peers: Peers | None = None,
) -> SectionInputs:
    """brand id -> (frames for the analyzer, input fingerprint).

    ``peers`` (industry -> (fingerprint, per-brand KPIs) of the industry's active brands)
    is filled as industries are first needed and reused by later calls, so a pass that reads
    its brands in slices loads each industry's peers once.
    """
    loaders = {
        "measure": _measure,
        "intend": _intend,
        "reimagine": _reimagine,
        "reach": _reach,
        "optimize": _optimize,
        "reflect": _reflect,
    }
    if section not in loaders:
        raise ValueError(f"unknown section {section!r}")
    return loaders[section](conn, brands, now, {} if peers is None else peers)


def _load_peers(conn: Connection, industries: list[str], now: datetime, peers: Peers) -> None:
    """The KPIs of every active brand of ``industries``, once per industry."""
    today = now.date()
    industry_of = store_enrichment.active_brand_industries(conn, industries)
    daily = store_enrichment.daily_metrics(conn, sorted(industry_of), today - timedelta(days=31))
    groups = (
        {
            k: g.drop(columns=["industry"])
            for k, g in daily.assign(industry=daily["brand_id"].map(industry_of)).groupby(
                "industry", sort=False
            )
        }
        if not daily.empty
        else {}
    )
    for industry in industries:
        frame = groups.get(industry, EMPTY)
        peers[industry] = (
            fingerprint("measure-industry", {"daily": frame}),
            industry_kpis(frame, today),
        )


def _measure(conn, brands, now: datetime, peers: Peers) -> SectionInputs:
    ids = list(brands)
    since = now.date() - timedelta(days=31)
    missing = sorted({b["industry"] for b in brands.values()} - set(peers))
    if missing:
        _load_peers(conn, missing, now, peers)
    own_daily = split_by_brand(store_enrichment.daily_metrics(conn, ids, since), ids)
    account = split_by_brand(store_enrichment.account_followers(conn, ids, since), ids)
    posts = split_by_brand(store_enrichment.recent_posts(conn, ids, now - timedelta(days=31)), ids)
    out: SectionInputs = {}
    for b in ids:
        industry = brands[b]["industry"]
        industry_fp, peer_kpis = peers[industry]
        own = own_daily[b]
        frames = {
            "daily_metrics": own,
            "peer_kpis": peer_kpis,
            "account_metrics": account[b],
            "posts": posts[b],
        }
        fp = fingerprint(
            "measure",
            {"own_daily": own, "account": account[b], "posts": posts[b]},
            {"industry": industry, "peers": industry_fp},
        )
        out[b] = (frames, fp)
    return out


def _intend(conn, brands, now: datetime, _peers: Peers) -> SectionInputs:
    ids = list(brands)
    since = now.date() - timedelta(days=90)
    objectives = split_by_brand(store_enrichment.objectives(conn, ids), ids)
    with_objectives = [b for b in ids if not objectives[b].empty]
    daily = split_by_brand(store_enrichment.daily_metrics(conn, with_objectives, since), ids)
    account = split_by_brand(store_enrichment.account_followers(conn, with_objectives, since), ids)
    out: SectionInputs = {}
    for b in ids:
        frames = {
            "objectives": objectives[b],
            "daily_metrics": daily[b],
            "account_metrics": account[b],
        }
        out[b] = (frames, fingerprint("intend", frames))
    return out


def _reimagine(conn, brands, now: datetime, _peers: Peers) -> SectionInputs:
    ids = list(brands)
    competitors = split_by_brand(store_enrichment.competitors(conn, ids), ids)
    gaps = split_by_brand(store_enrichment.competitive_gaps(conn, ids), ids)
    signals = split_by_brand(
        store_enrichment.competitor_signals(conn, ids, now - timedelta(days=30)), ids
    )
    out: SectionInputs = {}
    for b in ids:
        frames = {"competitors": competitors[b], "gaps": gaps[b], "competitor_signals": signals[b]}
        out[b] = (frames, fingerprint("reimagine", frames))
    return out


def _reach(conn, brands, now: datetime, _peers: Peers) -> SectionInputs:
    ids = list(brands)
    patterns = split_by_brand(store_enrichment.learning_patterns(conn, ids), ids)
    daily = split_by_brand(
        store_enrichment.daily_metrics(conn, ids, now.date() - timedelta(days=31)), ids
    )
    out: SectionInputs = {}
    for b in ids:
        frames = {"patterns": patterns[b], "daily_metrics": daily[b]}
        out[b] = (frames, fingerprint("reach", frames, {"timezone": brands[b].get("timezone")}))
    return out


def _optimize(conn, brands, now: datetime, _peers: Peers) -> SectionInputs:
    ids = list(brands)
    patterns = split_by_brand(store_enrichment.learning_patterns(conn, ids), ids)
    performance = split_by_brand(
        store_enrichment.post_performance(conn, ids, now - timedelta(days=60)), ids
    )
    out: SectionInputs = {}
    for b in ids:
        frames = {"patterns": patterns[b], "post_performance": performance[b]}
        out[b] = (frames, fingerprint("optimize", frames))
    return out


def _reflect(conn, brands, now: datetime, _peers: Peers) -> SectionInputs:
    ids = list(brands)
    inbox = split_by_brand(store_enrichment.inbox_items(conn, ids, now - timedelta(days=30)), ids)
    opportunities = split_by_brand(store_enrichment.active_opportunities(conn, ids, now), ids)
    out: SectionInputs = {}
    for b in ids:
        frames = {"inbox": inbox[b], "opportunities": opportunities[b]}
        out[b] = (frames, fingerprint("reflect", frames))
    return out
