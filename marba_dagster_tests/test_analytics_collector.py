"""The analytics collector against the sandbox's Graph API and X API v2, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.defs.analytics.assets import brand_daily_metrics, platform_metrics
from marba_dagster.defs.analytics.checks import (
    no_duplicate_post_dates,
    no_negative_counts,
    rates_within_bounds,
)
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase
from marba_dagster.sandbox.platform_data import platform_data
from marba_dagster.store import schema
from marba_dagster.store.db import insert_many
from marba_dagster.store.types import utcnow

TOKENS = {  # (brand, platform) -> token; secrets that must never show up anywhere
    ("alpha", "facebook"): "EAAGalphaFacebookSecretToken123",
    ("alpha", "instagram"): "IGQValphaInstagramSecretToken456",
    ("alpha", "x"): "alphaXBearerSecretToken789",
    ("beta", "facebook"): "EAAGbetaFacebookSecretTokenABC",
    ("beta", "instagram"): "IGQVbetaInstagramSecretTokenDEF",
}
ACCOUNT_IDS = {
    ("alpha", "facebook"): "1001",
    ("alpha", "instagram"): "17841400000000001",
    ("alpha", "x"): "44196397",
    ("beta", "facebook"): "2002",
    ("beta", "instagram"): "17841400000000002",
}
FORMATS = {
    "facebook": ("image", "video", "link", "text", "carousel", "reel"),
    "instagram": ("image", "carousel", "reel", "video", "story"),
    "x": ("text", "image", "video", "link"),
}
POSTS = {
    ("alpha", "facebook"): 130,
    ("alpha", "instagram"): 12,
    ("alpha", "x"): 120,
    ("beta", "facebook"): 6,
    ("beta", "instagram"): 9,
}


def _day():
    return utcnow().date() - timedelta(days=1)


def _setup(engine, sandbox, *, likes_bump: int = 0, fill_db: bool = True):
    day = _day()
    data = platform_data(sandbox.state)
    if fill_db:
        with engine.begin() as conn:
            insert_many(
                conn,
                schema.brands,
                [
                    {
                        "id": "alpha",
                        "name": "Alpha",
                        "industry": "cafe",
                        "timezone": "Europe/Paris",
                    },
                    {
                        "id": "beta",
                        "name": "Beta",
                        "industry": "gym",
                        "timezone": "America/Chicago",
                    },
                ],
            )
            insert_many(
                conn,
                schema.platform_accounts,
                [
                    {
                        "id": f"acct-{b}-{p}",
                        "brand_id": b,
                        "platform": p,
                        "external_account_id": ACCOUNT_IDS[(b, p)],
                        "access_token": tok,
                    }
                    for (b, p), tok in TOKENS.items()
                ],
            )
    for (b, p), tok in TOKENS.items():
        data.add_account(p, ACCOUNT_IDS[(b, p)], tok, followers=1000 + len(b) * 10, handle=b)
        start = datetime.combine(day - timedelta(days=6), time(0), tzinfo=UTC)
        for i in range(POSTS[(b, p)]):
            fmts = FORMATS[p]
            data.add_post(
                p,
                ACCOUNT_IDS[(b, p)],
                f"{ACCOUNT_IDS[(b, p)]}_{i}"
                if p == "facebook"
                else f"{ACCOUNT_IDS[(b, p)]}{i:04d}",
                start + timedelta(minutes=73 * i),
                body=f"Post {i} #tag{i % 3}",
                format=fmts[i % len(fmts)],
                permalink=f"https://example.com/{b}/{p}/{i}",
                impressions=1000 + i,
                reach=800 + i,
                likes=40 + i + likes_bump,
                comments=5,
                shares=3,
                saves=2,
                clicks=7,
                video_views=100,
            )
    return day


def _resources(db_url, sandbox, **kw):
    env = sandbox.env()
    return {
        "marba_db": MarbaDatabase(url=db_url),
        "graph_api": ApiEndpoint(base_url=env["MARBA_GRAPH_API_URL"], **kw),
        "x_api": ApiEndpoint(base_url=env["MARBA_X_API_URL"], **kw),
    }


ASSETS = [
    platform_metrics,
    brand_daily_metrics,
    no_negative_counts,
    no_duplicate_post_dates,
    rates_within_bounds,
]


def _run(db_url, sandbox, day, **kw):
    return dg.materialize(
        ASSETS,
        resources=_resources(db_url, sandbox, **kw),
        partition_key=day.isoformat(),
        raise_on_error=False,
    )


def _snapshot(engine, table, *order):
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.select(table).order_by(*[table.c[o] for o in order])
            ).mappings()
        ]


def _metrics_by_account(engine):
    cp, pm = schema.content_posts, schema.post_metrics
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                cp.c.brand_id,
                cp.c.platform,
                pm.c.post_id,
                pm.c.metric_date,
                pm.c.likes,
                pm.c.impressions,
            )
            .join(pm, pm.c.post_id == cp.c.id)
            .order_by(pm.c.post_id, pm.c.metric_date)
        ).all()
    out = {}
    for r in rows:
        out.setdefault((r.brand_id, r.platform), []).append(
            (r.post_id, r.metric_date, r.likes, r.impressions)
        )
    return out


def _no_secret_anywhere(engine, result=None):
    with engine.connect() as conn:
        logs = " ".join(
            r[0] + str(r[1])
            for r in conn.execute(sa.select(schema.job_logs.c.message, schema.job_logs.c.context))
        )
        reasons = " ".join(
            str(r[0]) for r in conn.execute(sa.select(schema.platform_accounts.c.reconnect_reason))
        )
    text = logs + reasons
    if result is not None:
        for ev in result.all_events:
            text += str(ev.message or "") + str(
                getattr(ev.event_specific_data, "materialization", "")
            )
    for tok in TOKENS.values():
        assert tok not in text


def test_collects_every_platform_with_paging_and_is_idempotent(db_url, engine, sandbox):
    day = _setup(engine, sandbox)
    result = _run(db_url, sandbox, day)
    assert result.success
    by_acct = _metrics_by_account(engine)
    for key, n in POSTS.items():
        assert len({r[0] for r in by_acct[key]}) == n, key
        assert {r[1] for r in by_acct[key]} == {day}  # one snapshot per post for the day
    # 130 Facebook posts and 120 X posts at 100 a page: two pages each.
    assert sandbox.request_count("graph.page_posts") == 3  # alpha: 2 pages, beta: 1
    assert sandbox.request_count("x.user_tweets") == 2
    fb_query = sandbox.requests("graph.page_posts")[0]["query"]
    assert "access_token=REDACTED" in fb_query and "insights.metric" in fb_query

    with engine.connect() as conn:
        formats = dict(
            conn.execute(
                sa.select(
                    schema.content_posts.c.external_post_id, schema.content_posts.c.format
                ).where(schema.content_posts.c.platform == "instagram")
            ).all()
        )
        followers = conn.execute(
            sa.select(
                schema.account_metrics.c.brand_id,
                schema.account_metrics.c.platform,
                schema.account_metrics.c.followers,
            ).where(schema.account_metrics.c.metric_date == day)
        ).all()
        daily = {
            (r.brand_id, r.platform): r
            for r in conn.execute(
                sa.select(schema.brand_daily_metrics).where(
                    schema.brand_daily_metrics.c.metric_date == day
                )
            )
        }
    assert formats[f"{ACCOUNT_IDS[('alpha', 'instagram')]}0002"] == "reel"
    assert formats[f"{ACCOUNT_IDS[('alpha', 'instagram')]}0004"] == "story"
    assert sorted(followers) == sorted([(b, p, 1000 + len(b) * 10) for (b, p) in TOKENS])
    # X reports no reach: its engagement rate falls back to impressions.
    x_posts_on_day = [
        i
        for i in range(120)
        if (
            datetime.combine(day - timedelta(days=6), time(0), tzinfo=UTC)
            + timedelta(minutes=73 * i)
        ).date()
        == day
    ]
    eng = sum(40 + i + 5 + 3 + 2 for i in x_posts_on_day)
    impressions = sum(1000 + i for i in x_posts_on_day)
    assert daily[("alpha", "x")].engagement_rate == pytest.approx(eng / impressions)
    assert daily[("alpha", "x")].posts == len(x_posts_on_day)
    assert daily[("alpha", "x")].click_through_rate == pytest.approx(
        7 * len(x_posts_on_day) / impressions
    )

    md = result.asset_materializations_for_node("analytics__platform_metrics")[0].metadata
    assert md["accounts"].value == 5 and md["posts"].value == sum(POSTS.values())
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
    }
    assert checks == {
        ("analytics/platform_metrics", "no_negative_counts"): True,
        ("analytics/platform_metrics", "no_duplicate_post_dates"): True,
        ("analytics/brand_daily_metrics", "rates_within_bounds"): True,
        ("analytics/platform_metrics", "all_brands_processed"): True,
        ("analytics/platform_metrics", "sources_available"): True,
        ("analytics/brand_daily_metrics", "all_brands_processed"): True,
    }

    before = (
        _snapshot(engine, schema.content_posts, "id"),
        _snapshot(engine, schema.post_metrics, "post_id", "metric_date"),
        _snapshot(engine, schema.account_metrics, "brand_id", "platform", "metric_date"),
        _snapshot(engine, schema.brand_daily_metrics, "brand_id", "platform", "metric_date"),
    )
    assert _run(db_url, sandbox, day).success
    after = (
        _snapshot(engine, schema.content_posts, "id"),
        _snapshot(engine, schema.post_metrics, "post_id", "metric_date"),
        _snapshot(engine, schema.account_metrics, "brand_id", "platform", "metric_date"),
        _snapshot(engine, schema.brand_daily_metrics, "brand_id", "platform", "metric_date"),
    )

    def strip(rows):
        return [
            {k: v for k, v in r.items() if k not in ("collected_at", "computed_at")} for r in rows
        ]

    assert [strip(t) for t in after] == [strip(t) for t in before]
    _no_secret_anywhere(engine, result)


def test_revoked_and_rejected_tokens_mark_reconnect_and_the_rest_goes_on(db_url, engine, sandbox):
    day = _setup(engine, sandbox)
    data = platform_data(sandbox.state)
    data.revoke("facebook", ACCOUNT_IDS[("alpha", "facebook")])  # Graph error 190
    data.add_account("x", ACCOUNT_IDS[("alpha", "x")], "a-newer-token-the-app-never-saw")  # 401
    result = _run(db_url, sandbox, day)
    assert result.success
    with engine.connect() as conn:
        accts = {r.id: r for r in conn.execute(sa.select(schema.platform_accounts))}
        logs = conn.execute(
            sa.select(
                schema.job_logs.c.level, schema.job_logs.c.brand_id, schema.job_logs.c.message
            )
        ).all()
    assert accts["acct-alpha-facebook"].needs_reconnect
    assert "190" in accts["acct-alpha-facebook"].reconnect_reason
    assert "invalidated" in accts["acct-alpha-facebook"].reconnect_reason
    assert accts["acct-alpha-x"].needs_reconnect and "401" in accts["acct-alpha-x"].reconnect_reason
    assert not any(
        a.needs_reconnect
        for k, a in accts.items()
        if k not in ("acct-alpha-facebook", "acct-alpha-x")
    )
    assert {(lvl, b) for lvl, b, _ in logs} == {("warning", "alpha")}
    assert len(logs) == 2
    by_acct = _metrics_by_account(engine)
    assert ("alpha", "facebook") not in by_acct and ("alpha", "x") not in by_acct
    assert len(by_acct[("alpha", "instagram")]) == 12
    assert len(by_acct[("beta", "facebook")]) == 6 and len(by_acct[("beta", "instagram")]) == 9
    _no_secret_anywhere(engine, result)
    # The next run skips the accounts until the owner reconnects them.
    sandbox.clear_requests()
    assert _run(db_url, sandbox, day).success
    assert sandbox.request_count("x.user_tweets") == 0
    assert sandbox.request_count("graph.page_posts") == 1  # beta only


def test_a_429_is_retried_then_collected(db_url, engine, sandbox):
    day = _setup(engine, sandbox)
    sandbox.faults.add("x.user_tweets", "rate_limit", times=1, retry_after=0.05)
    result = _run(db_url, sandbox, day)
    assert result.success
    assert sandbox.request_count("x.user_tweets") == 3  # 429, then two pages
    assert len({r[0] for r in _metrics_by_account(engine)[("alpha", "x")]}) == 120


def test_persistent_429_and_malformed_page_leave_only_that_account_unchanged(
    db_url, engine, sandbox
):
    day = _setup(engine, sandbox)
    assert _run(db_url, sandbox, day).success
    before = _metrics_by_account(engine)
    # The platforms now report more likes; X keeps throttling, alpha's Page answers garbage.
    platform_data(sandbox.state).reset()
    _setup(engine, sandbox, likes_bump=100, fill_db=False)
    sandbox.faults.add("x.user_tweets", "rate_limit", retry_after=0.01)
    # Scoped to alpha's Page: brands are fetched concurrently, so "the first request" of
    # the route could be beta's.
    sandbox.faults.add(
        "graph.page_posts",
        "malformed_body",
        times=1,
        path_contains=f"/{ACCOUNT_IDS[('alpha', 'facebook')]}/posts",
    )
    result = _run(db_url, sandbox, day, max_attempts=2)
    assert result.success  # beta succeeded, so the run reports alpha as failed but goes on
    md = result.asset_materializations_for_node("analytics__platform_metrics")[0].metadata
    assert md["brands_failed"].value == 1 and md["accounts_failed"].value == 2
    after = _metrics_by_account(engine)
    assert after[("alpha", "facebook")] == before[("alpha", "facebook")]
    assert after[("alpha", "x")] == before[("alpha", "x")]
    for key in (("alpha", "instagram"), ("beta", "facebook"), ("beta", "instagram")):
        assert [r[2] for r in after[key]] == [r[2] + 100 for r in before[key]]
    with engine.connect() as conn:
        errors = (
            conn.execute(
                sa.select(schema.job_logs.c.message).where(schema.job_logs.c.level == "error")
            )
            .scalars()
            .all()
        )
    assert any("MalformedResponse" in e for e in errors) and any("RateLimited" in e for e in errors)
    _no_secret_anywhere(engine, result)


def test_sandbox_serves_the_seeded_rows_and_collection_adds_no_duplicates(db_url, engine, sandbox):
    day = _day()
    now = utcnow()
    with engine.begin() as conn:
        insert_many(conn, schema.brands, [{"id": "seeded", "name": "Seeded", "industry": "cafe"}])
        insert_many(
            conn,
            schema.platform_accounts,
            [
                {
                    "id": "acct-seeded-ig",
                    "brand_id": "seeded",
                    "platform": "instagram",
                    "external_account_id": "178400555",
                    "access_token": "IGQVseededTokenXYZ",
                },
                {
                    "id": "acct-seeded-x",
                    "brand_id": "seeded",
                    "platform": "x",
                    "external_account_id": "555",
                    "access_token": "seededXtoken123",
                },
            ],
        )
        posts, metrics = [], []
        for i in range(10):
            for p, ext in (("instagram", f"1790000{i}"), ("x", f"16000000{i}")):
                pid = f"post-seeded-{p}-{i:05d}"
                posts.append(
                    {
                        "id": pid,
                        "brand_id": "seeded",
                        "platform": p,
                        "external_post_id": ext,
                        "body": f"seeded {i}",
                        "format": "image" if p == "instagram" else "text",
                        "published_at": datetime.combine(day, time(8 + i), tzinfo=UTC),
                    }
                )
                metrics.append(
                    {
                        "post_id": pid,
                        "metric_date": now.date(),
                        "impressions": 500 + i,
                        "reach": 400,
                        "likes": 20 + i,
                        "comments": 2,
                        "shares": 1,
                        "saves": 3,
                        "clicks": 0,
                        "video_views": 0,
                    }
                )
        insert_many(conn, schema.content_posts, posts)
        insert_many(conn, schema.post_metrics, metrics)
        insert_many(
            conn,
            schema.account_metrics,
            [
                {
                    "brand_id": "seeded",
                    "platform": "instagram",
                    "metric_date": now.date(),
                    "followers": 4321,
                }
            ],
        )
    loaded = platform_data(sandbox.state).load_from_database(engine)
    assert loaded == {"accounts": 2, "posts": 20}
    assert _run(db_url, sandbox, day).success
    with engine.connect() as conn:
        ids = sorted(conn.execute(sa.select(schema.content_posts.c.id)).scalars())
        rows = conn.execute(
            sa.select(schema.post_metrics.c.post_id, schema.post_metrics.c.likes).where(
                schema.post_metrics.c.metric_date == day
            )
        ).all()
        fol = conn.execute(
            sa.select(schema.account_metrics.c.followers).where(
                schema.account_metrics.c.metric_date == day,
                schema.account_metrics.c.platform == "instagram",
            )
        ).scalar()
    assert ids == sorted(p["id"] for p in posts)  # seeded ids kept, nothing duplicated
    assert sorted(rows) == sorted((m["post_id"], m["likes"]) for m in metrics)
    assert fol == 4321


def test_a_date_range_backfills_in_one_run(db_url, engine, sandbox):
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    day = _setup(engine, sandbox)
    first = day - timedelta(days=2)
    result = dg.materialize(
        ASSETS,
        resources=_resources(db_url, sandbox),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: day.isoformat(),
        },
    )
    assert result.success
    # One fetch per account for the whole range (alpha's Page: two pages of 100).
    assert sandbox.request_count("graph.page_posts") == 3
    assert sandbox.request_count("x.user_tweets") == 2
    md = result.asset_materializations_for_node("analytics__platform_metrics")
    assert {m.partition for m in md} == {(first + timedelta(days=i)).isoformat() for i in range(3)}
    with engine.connect() as conn:
        dates = set(conn.execute(sa.select(schema.post_metrics.c.metric_date).distinct()).scalars())
        daily_dates = set(
            conn.execute(sa.select(schema.brand_daily_metrics.c.metric_date).distinct()).scalars()
        )
        # A post gets one snapshot per day of the range from its publication day on.
        first_post = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.post_metrics)
            .where(
                schema.post_metrics.c.post_id
                == sa.select(schema.content_posts.c.id)
                .where(schema.content_posts.c.external_post_id == "1001_0")
                .scalar_subquery()
            )
        ).scalar()
    assert dates == {first, first + timedelta(days=1), day}
    assert daily_dates == dates
    assert first_post == 3


def _checks(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def test_one_failing_account_warns_naming_the_brand_and_the_others_keep_their_data(
    db_url, engine, sandbox
):
    day = _setup(engine, sandbox)
    # Beta's Facebook Page answers HTTP 500 to every request (the client's three attempts).
    sandbox.faults.add(
        "graph.page_posts",
        "status_sequence",
        statuses=[500, 500, 500],
        path_contains=f"/{ACCOUNT_IDS[('beta', 'facebook')]}/posts",
    )
    result = _run(db_url, sandbox, day)
    assert result.success
    by_acct = _metrics_by_account(engine)
    assert ("beta", "facebook") not in by_acct
    assert len({r[0] for r in by_acct[("alpha", "facebook")]}) == POSTS[("alpha", "facebook")]
    assert len({r[0] for r in by_acct[("beta", "instagram")]}) == POSTS[("beta", "instagram")]
    checks = _checks(result)
    brands = checks[("analytics/platform_metrics", "all_brands_processed")]
    assert brands.passed is False and brands.severity == dg.AssetCheckSeverity.WARN
    assert brands.description.startswith("1 of 2 brand(s) failed: beta (")
    assert (
        "facebook account acct-beta-facebook" in brands.description
        and "HTTP 500" in brands.description
    )
    assert "alpha" not in brands.description
    assert brands.metadata["brands_failed"].value == 1
    # Alpha's Page answered: the Graph API as a whole was not lost.
    assert checks[("analytics/platform_metrics", "sources_available")].passed is True
    assert checks[("analytics/brand_daily_metrics", "all_brands_processed")].passed is True
    _no_secret_anywhere(engine, result)
    for ev in checks.values():
        assert not any(tok in (ev.description or "") + str(ev.metadata) for tok in TOKENS.values())


def test_graph_api_down_for_every_account_is_a_lost_source(db_url, engine, sandbox):
    day = _setup(engine, sandbox)
    # A third brand on X only, which keeps answering.
    with engine.begin() as conn:
        insert_many(conn, schema.brands, [{"id": "gamma", "name": "Gamma", "industry": "bar"}])
        insert_many(
            conn,
            schema.platform_accounts,
            [
                {
                    "id": "acct-gamma-x",
                    "brand_id": "gamma",
                    "platform": "x",
                    "external_account_id": "777",
                    "access_token": "gammaXBearerSecretToken",
                }
            ],
        )
    data = platform_data(sandbox.state)
    data.add_account("x", "777", "gammaXBearerSecretToken", followers=50, handle="gamma")
    data.add_post(
        "x",
        "777",
        "7770001",
        datetime.combine(day, time(9), tzinfo=UTC),
        body="gamma",
        format="text",
        permalink="https://example.com/g",
        impressions=10,
        reach=0,
        likes=1,
        comments=0,
        shares=0,
        saves=0,
        clicks=0,
        video_views=0,
    )
    # Every Graph API read answers 503 (4 accounts, 3 attempts each).
    sandbox.faults.add("graph.page_posts", "status_sequence", statuses=[503] * 6)
    sandbox.faults.add("graph.ig_media", "status_sequence", statuses=[503] * 6)
    result = _run(db_url, sandbox, day)
    assert result.success  # gamma was collected
    by_acct = _metrics_by_account(engine)
    assert set(by_acct) == {("alpha", "x"), ("gamma", "x")}
    checks = _checks(result)
    sources = checks[("analytics/platform_metrics", "sources_available")]
    assert sources.passed is False and sources.severity == dg.AssetCheckSeverity.WARN
    assert (
        sources.description.startswith("lost 1 source(s): Graph API (")
        and "HTTP 503" in sources.description
    )
    assert "2 brand(s) without it" in sources.description
    assert sources.metadata["lost_sources"].value[0]["brands"] == ["alpha", "beta"]
    brands = checks[("analytics/platform_metrics", "all_brands_processed")]
    assert brands.passed is False and brands.description.startswith(
        "2 of 3 brand(s) failed: alpha ("
    )
    _no_secret_anywhere(engine, result)
