"""Competitors' social activity: Instagram Business Discovery and the X user timeline through
the sandbox over real HTTP, into snapshots and social_activity signals the opportunity
detector reads; paging, re-runs, credentials off or rejected, 429 and malformed answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.core.competitive.social import (
    SocialPost,
    detect_social_changes,
    hashtags,
    merge_history,
    social_targets,
)
from marba_dagster.core.opportunities.relevance import RelevanceMap
from marba_dagster.core.opportunities.scoring import build_opportunities
from marba_dagster.defs.competitive.assets import social_activity
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase
from marba_dagster.sandbox.platform_data import platform_data
from marba_dagster.sandbox.routes.competitor_social import (
    SANDBOX_X_APP_TOKEN,
    competitor_social_data,
)
from marba_dagster.store import opportunities as store_opportunities
from marba_dagster.store import schema as s

# The asset reads the accounts as of the real clock (as the sandbox serves them).
NOW = datetime.now(UTC).replace(microsecond=0)


# ------------------------------------------------------------------------------ pure rules


def test_social_targets_accept_names_handles_and_profile_urls():
    targets, invalid = social_targets(
        {
            "social_accounts": {
                "instagram": "https://www.instagram.com/rival.cafe/",
                "x": "@rivalcafe",
                "twitter": "123456",
                "facebook": "999",
                "tiktok": "rival",
            }
        }
    )
    assert targets == [("instagram", "rival.cafe"), ("x", "rivalcafe"), ("x", "123456")]
    assert invalid == []
    targets, invalid = social_targets(
        {"social_accounts": {"instagram": "not a name!", "x": "https://evil.example/x"}}
    )
    assert targets == [] and invalid == [
        ("instagram", "not a name!"),
        ("x", "https://evil.example/x"),
    ]
    assert social_targets({"social_accounts": ["x"]})[0] == []


def _post(days: float, text: str = "hello", likes: int = 30, post_id: str | None = None):
    when = NOW - timedelta(days=days)
    return SocialPost(post_id or f"p{days}", when, text, likes=likes, comments=2)


def test_campaign_spike_and_frequency_rules():
    baseline = [_post(8 + 7 * k, "#coffee daily") for k in range(7)]
    recent = [_post(d, "Spring is here #SpringMenu") for d in (1, 2, 3, 4)]
    big = _post(0.5, "our best day", likes=600, post_id="big")
    changes = detect_social_changes("instagram @rival", [*recent, big, *baseline], NOW)
    kinds = {c.details["kind"]: c for c in changes}
    assert set(kinds) == {"posting_frequency", "campaign", "engagement_spike"}
    assert kinds["campaign"].details["hashtag"] == "springmenu"
    assert kinds["campaign"].key == "social:instagram @rival:campaign:springmenu"
    assert kinds["engagement_spike"].details["post_id"] == "big"
    assert kinds["posting_frequency"].details["direction"] == "spike"
    assert all(c.change_type == "social_activity" and 0 <= c.strength <= 1 for c in changes)
    # A hashtag already used before is no campaign; no baseline, no campaign and no spike.
    old_tag = [_post(d, "#coffee again") for d in (1, 2, 3)]
    assert not [
        c
        for c in detect_social_changes("x", [*old_tag, *baseline], NOW)
        if c.details["kind"] == "campaign"
    ]
    assert detect_social_changes("x", recent + [big], NOW) == []
    assert hashtags("a #Tag, b#no c &#38; #x1") == {"tag", "x1"}


def test_history_merges_snapshots_by_post_id_and_skips_bad_rows():
    current = [_post(1, post_id="a")]
    earlier = [[_post(1, "old text", post_id="a").as_json(), _post(20, post_id="b").as_json()]]
    earlier.append([{"id": "c"}, _post(200, post_id="d").as_json()])  # bad row, too old
    merged = merge_history(current, earlier, NOW - timedelta(days=63))
    assert [p.post_id for p in merged] == ["a", "b"] and merged[0].text == "hello"


# ------------------------------------------------------------------ through the sandbox


@pytest.fixture
def rivals(engine, sandbox):
    """Brand b1 with an Instagram business account; two competitors naming Instagram and X
    accounts (one name is no account); their accounts in the sandbox."""
    data, social = platform_data(sandbox.state), competitor_social_data(sandbox.state)
    social.generate = False
    data.add_account("instagram", "702", "ig-tok-702")
    social.add_instagram("rival_cafe", 1200)
    for k in range(8):
        social.add_instagram_post(
            "rival_cafe", f"ig-base-{k}", "Daily #coffee", NOW - timedelta(days=8 + 7 * k), 30, 3
        )
    for k in range(4):
        social.add_instagram_post(
            "rival_cafe",
            f"ig-new-{k}",
            "Spring menu is here #SpringMenu",
            NOW - timedelta(days=1 + k, hours=2),
            40,
            5,
        )
    social.add_instagram_post("rival_cafe", "ig-viral", "Wow", NOW - timedelta(hours=5), 900, 80)
    social.add_x_user("9001", "rivalcafe", 5000)
    for k in range(120):  # two pages of 100
        social.add_x_post("9001", f"{1_000 + k}", f"post {k}", NOW - timedelta(hours=11 * k + 1))
    social.add_x_user("9002", "otherbrew", 800)
    social.add_x_post("9002", "2001", "hello", NOW - timedelta(days=2), likes=3)
    with engine.begin() as conn:
        conn.execute(s.brands.insert().values(id="b1", name="Cafe", industry="cafe"))
        conn.execute(
            s.platform_accounts.insert().values(
                id="acct-ig",
                brand_id="b1",
                platform="instagram",
                external_account_id="702",
                access_token="ig-tok-702",
            )
        )
        conn.execute(
            s.competitors.insert(),
            [
                {
                    "id": "comp-a",
                    "brand_id": "b1",
                    "name": "Rival Cafe",
                    "social_accounts": {"instagram": "@rival_cafe", "x": "rivalcafe"},
                },
                {
                    "id": "comp-b",
                    "brand_id": "b1",
                    "name": "Other Brew",
                    "social_accounts": {"instagram": "no such name!", "x": "x.com/otherbrew"},
                },
            ],
        )
    return {"engine": engine, "sandbox": sandbox, "social": social, "data": data}


def materialize(db_url, sandbox, tmp_path, *, bearer: str | None = SANDBOX_X_APP_TOKEN):
    env = sandbox.env()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        return dg.materialize(
            [social_activity],
            instance=instance,
            raise_on_error=False,
            resources={
                "marba_db": MarbaDatabase(url=db_url),
                "graph_api": ApiEndpoint(base_url=env["MARBA_GRAPH_API_URL"]),
                "x_app_api": ApiEndpoint(base_url=env["MARBA_X_API_URL"], api_key=bearer),
            },
        )


def _signals(engine) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.select(s.intelligence_signals).order_by(s.intelligence_signals.c.dedup_key)
            ).mappings()
        ]


def _snapshots(engine) -> list[dict]:
    table = s.competitor_social_snapshots
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def _warnings(engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(s.job_logs.c.message).where(s.job_logs.c.level == "warning")
            ).scalars()
        )


def _metadata(result):
    return result.asset_materializations_for_node("competitive__social_activity")[0].metadata


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_accounts_read_paged_into_snapshots_and_signals_the_detector_reads(
    rivals, db_url, tmp_path
):
    engine, sandbox = rivals["engine"], rivals["sandbox"]
    result = materialize(db_url, sandbox, tmp_path)
    assert result.success
    snapshots = {(r["competitor_id"], r["platform"]): r for r in _snapshots(engine)}
    assert set(snapshots) == {("comp-a", "instagram"), ("comp-a", "x"), ("comp-b", "x")}
    instagram = snapshots[("comp-a", "instagram")]
    assert instagram["followers"] == 1200 and instagram["post_count"] == 13
    assert len(instagram["posts"]) == 13 and instagram["error"] is None
    x_posts = snapshots[("comp-a", "x")]["posts"]
    assert len(x_posts) == len({p["id"] for p in x_posts}) > 100  # both pages, no repeats
    assert sandbox.request_count("x.user_tweets") == 3  # two pages + otherbrew's one
    assert sandbox.request_count("x.user_by_username") == 2
    signals = _signals(engine)
    kinds = {(r["payload"]["platform"], r["payload"]["kind"]) for r in signals}
    assert {
        ("instagram", "campaign"),
        ("instagram", "engagement_spike"),
        ("instagram", "posting_frequency"),
    } <= kinds
    assert all(
        r["signal_type"] == "competitor"
        and r["payload"]["change_type"] == "social_activity"
        and r["source"] in ("competitor_instagram", "competitor_x")
        for r in signals
    )
    campaign = next(r for r in signals if r["payload"]["kind"] == "campaign")
    assert campaign["payload"]["hashtag"] == "springmenu"
    assert campaign["title"].startswith("Rival Cafe: New campaign on instagram @rival_cafe")
    # The opportunity detector reads them as competitor activity and turns them into
    # competitor_activity opportunities.
    with engine.connect() as conn:
        current = store_opportunities.current_signals(conn, ["b1"], "competitor", NOW)["b1"]
    assert {r["id"] for r in current} == {r["id"] for r in signals}
    drafts, _skipped = build_opportunities(
        current, {"id": "b1", "name": "Cafe", "industry": "cafe"}, RelevanceMap(), NOW
    )
    campaign_drafts = [
        d
        for d in drafts
        if "#springmenu" in d.title.lower() or (d.evidence["details"].get("kind") == "campaign")
    ]
    assert campaign_drafts and campaign_drafts[0].opportunity_type == "competitor_activity"
    assert campaign_drafts[0].kind == "social_activity"
    # The name that is no account: one warning, no request.
    assert [w for w in _warnings(engine) if "no such name!" in w] == [
        "competitor Other Brew (comp-b): instagram account 'no such name!' is not an account "
        "name; not read"
    ]
    metadata = _metadata(result)
    assert metadata["accounts_read"].value == 3 and metadata["platforms_off"].value == []
    assert metadata["signals"].value == len(signals)
    checks = _checks(result)
    assert checks["all_brands_processed"].passed and checks["sources_available"].passed

    # A second run: one more snapshot per account, the same signals updated, not repeated.
    assert materialize(db_url, sandbox, tmp_path).success
    assert len(_snapshots(engine)) == 6
    again = _signals(engine)
    assert [r["dedup_key"] for r in again] == [r["dedup_key"] for r in signals]


def test_without_a_bearer_token_x_is_off_once_and_instagram_still_read(rivals, db_url, tmp_path):
    engine, sandbox = rivals["engine"], rivals["sandbox"]
    result = materialize(db_url, sandbox, tmp_path, bearer=None)
    assert result.success
    assert sandbox.request_count("x.user_by_username") == 0
    assert {r["platform"] for r in _snapshots(engine)} == {"instagram"}
    off = [w for w in _warnings(engine) if "X off" in w]
    assert off == [
        "competitor social activity: X off: MARBA_X_BEARER_TOKEN is not set "
        "(2 competitor account(s) not read)"
    ]
    assert _metadata(result)["platforms_off"].value == [off[0].split(": ", 1)[1]]
    assert _checks(result)["sources_available"].passed


def test_rejected_bearer_token_turns_x_off_for_the_run(rivals, db_url, tmp_path):
    engine, sandbox, social = rivals["engine"], rivals["sandbox"], rivals["social"]
    social.revoke_app_token()
    result = materialize(db_url, sandbox, tmp_path)
    assert result.success
    assert sandbox.request_count("x.user_by_username") == 1  # not asked again per competitor
    off = [w for w in _warnings(engine) if "X off" in w]
    assert len(off) == 1 and "bearer token was rejected" in off[0] and "HTTP 401" in off[0]
    assert SANDBOX_X_APP_TOKEN not in " ".join(_warnings(engine))
    assert {r["platform"] for r in _snapshots(engine)} == {"instagram"}


def test_instagram_off_without_account_or_permission_and_flagged_when_revoked(
    rivals, db_url, tmp_path
):
    engine, sandbox, data = rivals["engine"], rivals["sandbox"], rivals["data"]
    data.deny("instagram", "702", "instagram_basic")
    result = materialize(db_url, sandbox, tmp_path)
    assert result.success
    off = [w for w in _warnings(engine) if "Instagram off" in w]
    assert len(off) == 1 and "lacks Business Discovery permissions" in off[0]
    assert {r["platform"] for r in _snapshots(engine)} == {"x"}
    with engine.connect() as conn:
        assert not conn.execute(sa.select(s.platform_accounts.c.needs_reconnect)).scalar_one()

    data.revoke("instagram", "702")
    assert materialize(db_url, sandbox, tmp_path).success
    with engine.connect() as conn:
        assert conn.execute(sa.select(s.platform_accounts.c.needs_reconnect)).scalar_one()
    assert any("token was rejected" in w for w in _warnings(engine))

    # Flagged: the brand now has no usable Instagram account; said once for the run.
    result = materialize(db_url, sandbox, tmp_path)
    assert _metadata(result)["platforms_off"].value == [
        "Instagram off for 1 brand(s) (b1): no connected Instagram business account to run "
        "Business Discovery with"
    ]


def test_rate_limited_business_discovery_is_retried_after_retry_after(rivals, db_url, tmp_path):
    engine, sandbox = rivals["engine"], rivals["sandbox"]
    sandbox.faults.add(
        "graph.node", "rate_limit", retry_after=1, times=1, path_contains="business_discovery"
    )
    result = materialize(db_url, sandbox, tmp_path)
    assert result.success and _checks(result)["sources_available"].passed
    assert [r["status"] for r in sandbox.requests("graph.node")][:2] == [429, 200]
    assert any(r["platform"] == "instagram" and not r["error"] for r in _snapshots(engine))


def test_malformed_timeline_loses_that_account_only(rivals, db_url, tmp_path):
    engine, sandbox = rivals["engine"], rivals["sandbox"]
    sandbox.faults.add(
        "x.user_tweets",
        "malformed_body",
        body='{"data": [{"text": "no id"}]}',
        path_contains="/users/9001/",
    )
    result = materialize(db_url, sandbox, tmp_path)
    assert result.success
    sources = _checks(result)["sources_available"]
    assert sources.passed is False
    assert "competitor x account rivalcafe of Rival Cafe (comp-a)" in sources.description
    assert "malformed answer" in sources.description
    snapshots = {(r["competitor_id"], r["platform"]): r for r in _snapshots(engine)}
    assert "malformed answer" in snapshots[("comp-a", "x")]["error"]
    assert snapshots[("comp-b", "x")]["error"] is None  # the other account still read
    assert snapshots[("comp-a", "instagram")]["error"] is None


def test_unknown_accounts_are_noted_not_lost(rivals, db_url, tmp_path):
    engine, sandbox = rivals["engine"], rivals["sandbox"]
    with engine.begin() as conn:
        conn.execute(
            sa.update(s.competitors)
            .where(s.competitors.c.id == "comp-b")
            .values(social_accounts={"instagram": "ghost_shop", "x": "ghostshop"})
        )
    result = materialize(db_url, sandbox, tmp_path)
    assert result.success and _checks(result)["sources_available"].passed
    notes = [w for w in _warnings(engine) if "not found" in w]
    assert len(notes) == 2 and all(w.startswith("competitor Other Brew (comp-b)") for w in notes)


def test_business_discovery_pages_media_until_older_than_the_history(rivals, db_url, tmp_path):
    engine, sandbox, social = rivals["engine"], rivals["sandbox"], rivals["social"]
    social.add_instagram("big_feed", 90_000)
    for k in range(110):  # 110 within the nine weeks (50 + 50 + 10), then older ones
        social.add_instagram_post(
            "big_feed", f"bf-{k:03d}", "post", NOW - timedelta(hours=12 * k + 1), 10, 1
        )
    for k in range(60):
        social.add_instagram_post(
            "big_feed", f"old-{k:03d}", "old", NOW - timedelta(days=70 + k), 10, 1
        )
    with engine.begin() as conn:
        conn.execute(
            s.competitors.insert().values(
                id="comp-c",
                brand_id="b1",
                name="Big Feed",
                social_accounts={"instagram": "big_feed"},
            )
        )
    assert materialize(db_url, sandbox, tmp_path).success
    asked = [r for r in sandbox.requests("graph.node") if "big_feed" in r["query"]]
    assert len(asked) == 3  # the third page reaches posts older than the history: stop
    snapshot = next(r for r in _snapshots(engine) if r["competitor_id"] == "comp-c")
    assert snapshot["post_count"] == 170 and snapshot["followers"] == 90_000
    assert len(snapshot["posts"]) == 110
    assert {p["id"] for p in snapshot["posts"]} == {f"bf-{k:03d}" for k in range(110)}
