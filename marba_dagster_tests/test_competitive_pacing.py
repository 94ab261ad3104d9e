"""Politeness paces instead of failing: the per-URL deadline covers the fetch, not the wait
for the host's turn; a run that could not read some URLs says so in ``sources_available``."""

from __future__ import annotations

import dagster as dg
import pytest

from marba_dagster.connectors.safe_fetch import FetchPolicy, SafeFetcher, parse_allowed_hosts
from marba_dagster.core.competitive.noise import NoiseMask
from marba_dagster.defs.competitive.assets import competitor_snapshots
from marba_dagster.defs.competitive.resources import SafeFetchSettings
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.services.competitive import noise_id
from marba_dagster.store import schema
from marba_dagster.store.competitive import save_page_noise
from marba_dagster.store.db import insert_many
from marba_dagster.store.types import utcnow

SNAPSHOTS = dg.AssetKey(["competitive", "competitor_snapshots"])


def _allowed(sandbox):
    return parse_allowed_hosts(sandbox.env()["MARBA_FETCH_ALLOWED_HOSTS"])


def test_queue_wait_does_not_count_against_the_deadline(sandbox):
    """300 URLs of one host, 2 in flight, 10 ms apart: the queue takes about 3 s, three times
    the 1 s deadline of each URL, and every URL is fetched."""
    policy = FetchPolicy(
        allowed_hosts=_allowed(sandbox),
        per_host_concurrency=2,
        per_host_interval=0.01,
        deadline=1.0,
    )
    urls = [sandbox.url(f"/sites/pace/products/{n}") for n in range(300)]
    with SafeFetcher(policy) as fetcher:
        results = fetcher.fetch_many(urls)
    failed = [r for r in results if isinstance(r, Exception)]
    assert failed == []
    assert [r.status for r in results] == [200] * 300
    assert len(sandbox.requests("sites.page")) == 300


def test_a_slow_fetch_still_fails_on_its_deadline(sandbox):
    """The deadline still bounds the fetch itself."""
    sandbox.faults.add(route="sites.page", kind="latency", ms=1500)
    policy = FetchPolicy(allowed_hosts=_allowed(sandbox), per_host_interval=0, deadline=0.5)
    with SafeFetcher(policy) as fetcher:
        (result,) = fetcher.fetch_many([sandbox.url("/sites/pace/products/1")])
    assert type(result).__name__ == "DeadlineExceeded"


def _seed(engine, sandbox, competitor_id: str, paths: list[str]) -> None:
    with engine.begin() as conn:
        insert_many(conn, schema.brands, [{"id": "b1", "name": "B", "industry": "retail"}])
        insert_many(
            conn,
            schema.competitors,
            [
                {
                    "id": competitor_id,
                    "brand_id": "b1",
                    "name": "Big Catalogue",
                    "website_url": sandbox.url(f"/sites/{competitor_id}/"),
                    "watch_urls": [sandbox.url(f"/sites/{competitor_id}/{p}") for p in paths],
                    "feed_url": None,
                }
            ],
        )


def _materialize(db_url, sandbox, **politeness):
    return dg.materialize(
        [competitor_snapshots],
        resources={
            "marba_db": MarbaDatabase(url=db_url),
            "safe_fetch": SafeFetchSettings(
                allowed_hosts=sandbox.env()["MARBA_FETCH_ALLOWED_HOSTS"], **politeness
            ),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _checks(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_unread_urls_are_a_visible_partial_failure(db_url, engine, sandbox):
    _seed(engine, sandbox, "partial", ["products/1", "products/2", "gone-1", "gone-2"])
    result = _materialize(db_url, sandbox, per_host_interval=0)
    assert result.success
    meta = result.asset_materializations_for_node(competitor_snapshots.op.name)[0].metadata
    assert (meta["urls_fetched"].value, meta["urls_failed"].value) == (5, 2)
    lost = _checks(result)["sources_available"]
    assert lost.passed is False and lost.severity == dg.AssetCheckSeverity.WARN
    assert lost.description == (
        "lost 1 source(s): competitor site Big Catalogue (partial) "
        "(2 of 5 page(s) unread: HTTP 404; 1 brand(s) without it)"
    )


@pytest.mark.slow
def test_300_urls_on_one_host_at_default_politeness(db_url, engine, sandbox):
    """The issue's case: a competitor with 300 URLs on one host, the default politeness
    (2 per host, 0.25 s apart: about 75 s of pacing, far past the 20 s deadline of a URL)."""
    _seed(engine, sandbox, "catalogue", [f"products/{n}" for n in range(299)])
    # A competitor already watched: its pages' noise is known (a first sight loads each page
    # three times to learn it, 900 paced requests; the pacing is the same).
    urls = [sandbox.url("/sites/catalogue/")] + [
        sandbox.url(f"/sites/catalogue/products/{n}") for n in range(299)
    ]
    now = utcnow()
    with engine.begin() as conn:
        save_page_noise(
            conn,
            [
                {
                    "id": noise_id(url),
                    "url": url,
                    "mask": NoiseMask(loads=3).as_json(),
                    "loads": 3,
                    "learned_at": now,
                    "updated_at": now,
                }
                for url in urls
            ],
        )
    defaults = SafeFetchSettings()
    assert (defaults.per_host_concurrency, defaults.per_host_interval) == (2, 0.25)
    result = _materialize(db_url, sandbox)
    assert result.success
    meta = result.asset_materializations_for_node(competitor_snapshots.op.name)[0].metadata
    assert (meta["urls_fetched"].value, meta["urls_failed"].value) == (300, 0)
    assert meta["snapshots_written"].value == 300 and meta["urls_loaded_again"].value == 0
    assert _checks(result)["sources_available"].passed is True
