"""competitive_monitoring end to end: real sandbox sites, real database (SQLite and
PostgreSQL), the Dagster assets with real resources."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.defs.competitive.assets import competitive_gaps, competitor_snapshots
from marba_dagster.defs.competitive.checks import competitors_reachable
from marba_dagster.defs.competitive.resources import SafeFetchSettings
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.sandbox.routes.sites import Site, sites_state
from marba_dagster.store import schema
from marba_dagster.store.db import insert_many

SNAPSHOTS = dg.AssetKey(["competitive", "competitor_snapshots"])
GAPS = dg.AssetKey(["competitive", "competitive_gaps"])


def _seed(engine, sites_url: str) -> None:
    with engine.begin() as conn:
        insert_many(
            conn,
            schema.brands,
            [
                {
                    "id": "b1",
                    "name": "Corner Bakery",
                    "industry": "bakery",
                    "keywords": ["sourdough", "bread"],
                },
                {"id": "b2", "name": "Other Shop", "industry": "retail", "keywords": []},
            ],
        )
        comps = []
        for cid, bid in (("comp-ok", "b1"), ("comp-bad", "b1"), ("comp-two", "b2")):
            site = f"{sites_url}/{cid}"
            comps.append(
                {
                    "id": cid,
                    "brand_id": bid,
                    "name": cid.title(),
                    "website_url": f"{site}/",
                    "watch_urls": [f"{site}/", f"{site}/pricing"],
                    "feed_url": f"{site}/feed.xml",
                    "social_accounts": {"x": "123", "facebook": "456"},
                }
            )
        insert_many(conn, schema.competitors, comps)
        insert_many(
            conn,
            schema.platform_accounts,
            [
                {
                    "id": "pa1",
                    "brand_id": "b1",
                    "platform": "instagram",
                    "external_account_id": "ig1",
                }
            ],
        )


def _run(db_url, sandbox):
    return dg.materialize(
        [competitor_snapshots, competitive_gaps, competitors_reachable],
        resources={
            "marba_db": MarbaDatabase(url=db_url),
            "safe_fetch": SafeFetchSettings(
                allowed_hosts=sandbox.env()["MARBA_FETCH_ALLOWED_HOSTS"],
                per_host_interval=0,
                per_host_concurrency=8,
            ),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _checks(result) -> dict[tuple[dg.AssetKey, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}


def _signals(engine, competitor_id: str) -> list[dict]:
    signals = schema.intelligence_signals
    with engine.connect() as conn:
        rows = (
            conn.execute(sa.select(signals).where(signals.c.signal_type == "competitor"))
            .mappings()
            .all()
        )
    return [dict(r) for r in rows if r["payload"]["competitor_id"] == competitor_id]


def test_changes_signals_reachability_and_gaps(db_url, engine, sandbox):
    _seed(engine, sandbox.url("/sites"))
    ss = sites_state(sandbox.state)
    ss.set_failure("comp-bad", 410)

    def step(version: int):
        ss.set_version(version)
        result = _run(db_url, sandbox)
        assert result.success
        return result

    # v1 baseline, v2 noise only: snapshots but no change signal.
    step(1)
    r2 = step(2)
    assert _signals(engine, "comp-ok") == [] and _signals(engine, "comp-two") == []
    mats = r2.asset_materializations_for_node(competitor_snapshots.op.name)
    meta = mats[0].metadata
    assert meta["snapshots_written"].value == 9 and meta["urls_failed"].value == 3

    # v3: a price change, with its details; the brand's reimagine section is invalidated.
    step(3)
    sig = _signals(engine, "comp-ok")
    assert [x["payload"]["change_type"] for x in sig] == ["pricing_change"]
    name, old = Site("comp-ok", 1).plans[1]
    p = sig[0]["payload"]
    assert (p["product"], p["old_price"], p["new_price"]) == (name, f"{old:.2f}", f"{old + 5:.2f}")
    assert p["percent_change"] == round(5 / old * 100, 2)
    with engine.connect() as conn:
        sched = conn.execute(sa.select(schema.enrichment_schedule)).mappings().all()
        comps = {r["id"]: r for r in conn.execute(sa.select(schema.competitors)).mappings()}
        logs = (
            conn.execute(sa.select(schema.job_logs).where(schema.job_logs.c.level == "warning"))
            .mappings()
            .all()
        )
    assert {(r["brand_id"], r["section"]) for r in sched} == {
        ("b1", "reimagine"),
        ("b2", "reimagine"),
    }
    assert all(
        r["invalidated_at"] is not None and "price" in r["invalidated_reason"] for r in sched
    )

    # comp-bad failed three runs in a row: unreachable and reported; the others went on.
    assert comps["comp-bad"]["reachability"] == "unreachable"
    assert (
        comps["comp-bad"]["consecutive_failures"] == 3 and "410" in comps["comp-bad"]["last_error"]
    )
    assert (
        comps["comp-ok"]["reachability"] == "ok" and comps["comp-ok"]["consecutive_failures"] == 0
    )
    assert [
        r["brand_id"] for r in logs if "comp-bad" in r["message"] and "unreachable" in r["message"]
    ] == ["b1"]

    # v4: a new product; v5: messaging rewrite and a burst of posts.
    r4 = step(4)
    launches = [
        x for x in _signals(engine, "comp-ok") if x["payload"]["change_type"] == "product_launch"
    ]
    assert [x["payload"]["product"] for x in launches] == ["Ultimate"]
    ss.set_failure("comp-bad", None)  # it recovers
    r5 = step(5)
    types = sorted(
        (x["payload"]["change_type"], x["payload"]["url"].rsplit("/", 1)[-1])
        for x in _signals(engine, "comp-ok")
    )
    # The new product's card on the pricing page is its launch, not also a website_change.
    assert types == [
        ("messaging_shift", ""),
        ("pricing_change", "pricing"),
        ("product_launch", "pricing"),
        ("social_activity", "feed.xml"),
        ("website_change", ""),
    ]
    social = [
        x for x in _signals(engine, "comp-ok") if x["payload"]["change_type"] == "social_activity"
    ][0]
    assert social["payload"]["direction"] == "spike" and social["payload"]["source"] == "feed"
    with engine.connect() as conn:
        shifts = conn.execute(sa.select(schema.messaging_shifts)).mappings().all()
        bad = (
            conn.execute(sa.select(schema.competitors).where(schema.competitors.c.id == "comp-bad"))
            .mappings()
            .one()
        )
        gaps = (
            conn.execute(
                sa.select(schema.competitive_gaps).where(schema.competitive_gaps.c.brand_id == "b1")
            )
            .mappings()
            .all()
        )
        n_signals = conn.execute(
            sa.select(sa.func.count()).select_from(schema.intelligence_signals)
        ).scalar_one()
    assert {r["competitor_id"] for r in shifts} == {"comp-ok", "comp-two"}
    ok_shift = [r for r in shifts if r["competitor_id"] == "comp-ok"][0]
    assert ok_shift["shift_score"] > 0.35 and "premium" in ok_shift["terms_gained"]
    assert bad["reachability"] == "ok" and bad["consecutive_failures"] == 0
    keys = {(g["gap_type"], g["gap_key"]) for g in gaps}
    assert {("channel", "x"), ("channel", "facebook")} <= keys
    assert ("format", "video") in keys
    assert any(t == "topic" for t, _ in keys)
    assert all(g["evidence"]["competitors"] for g in gaps)

    # A rerun of the same version adds no signal (noise only again).
    step(5)
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(schema.intelligence_signals)
            ).scalar_one()
            == n_signals
        )
    # The check warned while comp-bad was unreachable (v4) and passes once it recovered (v5).
    assert _checks(r4)[(SNAPSHOTS, "competitors_reachable")].passed is False
    assert _checks(r5)[(SNAPSHOTS, "competitors_reachable")].passed is True
    # While comp-bad answered 410 its site and feed were lost sources of b1; then none.
    lost = _checks(r4)[(SNAPSHOTS, "sources_available")]
    assert lost.passed is False and lost.severity == dg.AssetCheckSeverity.WARN
    assert lost.description == (
        "lost 2 source(s): competitor feed Comp-Bad (comp-bad) (HTTP 410; 1 brand(s) without it); "
        "competitor site Comp-Bad (comp-bad) (2 of 2 page(s) unread: HTTP 410; "
        "1 brand(s) without it)"
    )
    assert [x["brands"] for x in lost.metadata["lost_sources"].value] == [["b1"], ["b1"]]
    assert {x["source"] for x in lost.metadata["lost_sources"].value} == {
        "competitor feed Comp-Bad (comp-bad)",
        "competitor site Comp-Bad (comp-bad)",
    }
    for result in (r4, r5):
        found = _checks(result)
        assert found[(SNAPSHOTS, "all_brands_processed")].passed is True
        assert found[(GAPS, "all_brands_processed")].passed is True
    assert _checks(r5)[(SNAPSHOTS, "sources_available")].passed is True


def test_refused_competitor_url_is_a_failure_not_a_crash(
    db_url,
    engine,
    sandbox,
):
    with engine.begin() as conn:
        insert_many(conn, schema.brands, [{"id": "b1", "name": "B", "industry": "x"}])
        insert_many(
            conn,
            schema.competitors,
            [
                {
                    "id": "evil",
                    "brand_id": "b1",
                    "name": "Evil",
                    "website_url": "http://169.254.169.254/latest/meta-data/",
                    "watch_urls": ["http://10.0.0.1/", "file:///etc/passwd"],
                    "feed_url": None,
                },
                {
                    "id": "good",
                    "brand_id": "b1",
                    "name": "Good",
                    "website_url": sandbox.url("/sites/good/"),
                    "watch_urls": [],
                    "feed_url": None,
                },
            ],
        )
    result = _run(db_url, sandbox)
    assert result.success
    meta = result.asset_materializations_for_node(competitor_snapshots.op.name)[0].metadata
    assert meta["urls_refused"].value == 3
    with engine.connect() as conn:
        comps = {r["id"]: r for r in conn.execute(sa.select(schema.competitors)).mappings()}
        snaps = conn.execute(sa.select(schema.competitive_intelligence_snapshots)).mappings().all()
    assert comps["evil"]["reachability"] == "failing" and "refused" in comps["evil"]["last_error"]
    assert comps["good"]["reachability"] == "ok"
    assert sum(1 for r in snaps if r["error"] is None) == 1


def test_unreadable_feed_is_a_lost_source_naming_the_competitor(db_url, engine, sandbox):
    _seed(engine, sandbox.url("/sites"))
    sandbox.faults.add(
        "sites.feed",
        "malformed_body",
        body="Service moved, nothing to see",
        content_type="text/plain",
        path_contains="/comp-two/",
    )
    result = _run(db_url, sandbox)
    assert result.success
    lost = _checks(result)[(SNAPSHOTS, "sources_available")]
    assert lost.passed is False
    assert lost.description.startswith(
        "lost 1 source(s): competitor feed Comp-Two (comp-two) (malformed answer: "
    )
    assert lost.description.endswith("; 1 brand(s) without it)")
    assert lost.metadata["lost_sources"].value[0]["brands"] == ["b2"]


@pytest.mark.parametrize(
    "env, value, expected",
    [
        (
            "MARBA_FETCH_PER_HOST_INTERVAL",
            "soon",
            "invalid setting MARBA_FETCH_PER_HOST_INTERVAL='soon': must be a number >= 0",
        ),
        (
            "MARBA_FETCH_PER_HOST_CONCURRENCY",
            "0",
            "invalid setting MARBA_FETCH_PER_HOST_CONCURRENCY='0': must be a whole number >= 1",
        ),
        (
            "MARBA_FETCH_ALLOWED_HOSTS",
            "localhost",
            "invalid setting MARBA_FETCH_ALLOWED_HOSTS='localhost': ",
        ),
    ],
)
def test_bad_fetch_setting_loads_then_fails_the_step_at_once(
    db_url, engine, sandbox, monkeypatch, env, value, expected
):
    from marba_dagster.defs.competitive.resources import competitive_resources

    _seed(engine, sandbox.url("/sites"))
    monkeypatch.setenv(env, value)
    settings = competitive_resources().resources["safe_fetch"]  # the code location still loads
    result = dg.materialize(
        [competitor_snapshots],
        resources={"marba_db": MarbaDatabase(url=db_url), "safe_fetch": settings},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    kinds = [
        e.event_type_value for e in result.all_events if e.step_key == competitor_snapshots.op.name
    ]
    assert kinds.count("STEP_START") == 1 and "STEP_UP_FOR_RETRY" not in kinds
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data.description.startswith(expected)
    assert sandbox.request_count("sites.home") == 0  # nothing was fetched
