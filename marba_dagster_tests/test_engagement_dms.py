"""Facebook Page and Instagram direct messages in the inbox, through the sandbox's Messenger
Platform conversations API over real HTTP: paging, no duplicates across runs, a token
without the messaging permission, a revoked token, 429 with Retry-After, malformed answers."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from marba_dagster.sandbox.platform_data import platform_data
from marba_dagster.store import schema as s
from marba_dagster_tests import test_engagement
from marba_dagster_tests.test_engagement import (
    HOUR,
    _checks,
    _second_brand,
    inbox,
    materialize,
)

engagement_world = test_engagement.world  # the engagement tests' brand, accounts and posts

T = HOUR - timedelta(minutes=40)


def _conversations(eng, count: int = 1) -> None:
    """``count`` Messenger conversations on Page 501 and two Instagram ones; the first
    Messenger conversation holds 60 messages (more than one nested page) and the Page's own
    reply; the Instagram account's own reply is skipped too."""
    for k in range(count):
        eng.add_message(
            "501", "messenger", f"t_fb{k}", f"m_fb{k}_0", "Do you open on Sunday?", T, f"p{k}"
        )
    for n in range(1, 60):
        eng.add_message(
            "501",
            "messenger",
            "t_fb0",
            f"m_fb0_{n}",
            f"question {n}",
            T - timedelta(minutes=n),
            "p0",
            "Paul",
        )
    eng.add_message("501", "messenger", "t_fb0", "m_fb0_reply", "Yes, from 9", T, "501", "Cafe")
    eng.add_message(
        "501",
        "instagram",
        "t_ig0",
        "m_ig0_0",
        "I was charged twice, this is a scam, I want a refund now 😡",
        T,
        "igs1",
        "angry_anna",
    )
    eng.add_message("501", "instagram", "t_ig0", "m_ig0_1", "thanks!", T, "502", "cafe")
    # Older than the 48-hour lookback: not read.
    eng.add_message("501", "instagram", "t_ig1", "m_ig1_0", "old", HOUR - timedelta(days=5), "igs2")


def _dms(engine) -> dict[str, dict]:
    return {k: r for k, r in inbox(engine).items() if r["item_type"] == "direct_message"}


def _logs(engine, level: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.select(s.job_logs.c.message).where(s.job_logs.c.level == level))
            .scalars()
            .all()
        )


def _materialization(result):
    return result.asset_materializations_for_node("engagement__engagement_inbox")[0]


def test_page_and_instagram_messages_paged_scored_and_never_duplicated(
    engagement_world, db_url, tmp_path
):
    engine, sandbox, eng = (engagement_world[k] for k in ("engine", "sandbox", "eng"))
    _conversations(eng, count=60)  # more than one page of 50 conversations
    assert materialize(db_url, sandbox, None, tmp_path).success
    dms = _dms(engine)
    facebook = {k for k, r in dms.items() if r["platform"] == "facebook"}
    instagram = {k for k, r in dms.items() if r["platform"] == "instagram"}
    assert len(facebook) == 60 + 59 and "dm:m_fb0_59" in facebook  # both pagings followed
    assert "dm:m_fb0_reply" not in facebook  # the Page's own reply
    assert instagram == {"dm:m_ig0_0"}  # own reply and the old conversation left out
    angry = dms["dm:m_ig0_0"]
    assert angry["author"] == "angry_anna" and angry["parent_external_id"] == "t_ig0"
    assert angry["sentiment_label"] == "negative" and angry["priority"] in ("urgent", "high")
    assert dms["dm:m_fb0_0"]["author"] == "p0" or dms["dm:m_fb0_1"]["author"] == "Paul"
    requests = sandbox.requests("engagement.conversations")
    assert len(requests) == 3  # Messenger: two pages; Instagram: one
    assert sandbox.request_count("engagement.conversation_messages") >= 1
    assert all("instagram_manage" not in r["path"] for r in requests)

    with engine.begin() as conn:
        conn.execute(
            sa.update(s.engagement_inbox)
            .where(s.engagement_inbox.c.external_id == "dm:m_ig0_0")
            .values(status="replied")
        )
    eng.add_message("501", "messenger", "t_fb1", "m_fb1_new", "one more thing", T, "p1")
    assert materialize(db_url, sandbox, None, tmp_path).success
    again = _dms(engine)
    assert set(again) == set(dms) | {"dm:m_fb1_new"}  # nothing twice
    assert again["dm:m_ig0_0"]["status"] == "replied"  # the app's status kept
    with engine.connect() as conn:
        ids = conn.execute(sa.select(s.engagement_inbox.c.id)).scalars().all()
    assert len(ids) == len(set(ids))


def test_token_without_messaging_permission_leaves_out_only_direct_messages(
    engagement_world, db_url, tmp_path
):
    engine, sandbox, eng = (engagement_world[k] for k in ("engine", "sandbox", "eng"))
    _conversations(eng)
    platform_data(sandbox.state).deny(
        "facebook", "501", "pages_messaging", "instagram_manage_messages"
    )
    result = materialize(db_url, sandbox, None, tmp_path)
    assert result.success
    rows = inbox(engine)
    assert not _dms(engine) or all(r["platform"] == "x" for r in _dms(engine).values())
    assert {"501_9001_1", "1790001_1", "dm:dm-1"} <= set(rows)  # comments and X DMs
    warnings = [w for w in _logs(engine, "warning") if "direct messages unavailable" in w]
    assert len(warnings) == 2  # one per account (Facebook, Instagram) and run
    assert any(w.startswith("facebook account acct-facebook") for w in warnings)
    assert any("(#200)" in w or "HTTP 403" in w for w in warnings)
    assert not any("fb-tok" in w for w in warnings)
    metadata = _materialization(result).metadata
    assert metadata["capabilities_unavailable"].value == 2
    with engine.connect() as conn:
        flagged = conn.execute(
            sa.select(s.platform_accounts.c.id).where(s.platform_accounts.c.needs_reconnect)
        ).all()
    assert flagged == []  # not a reconnection: the token works for everything else
    found = _checks(result)
    assert found["all_brands_processed"].passed and found["sources_available"].passed


def test_revoked_page_token_flags_the_page_once(engagement_world, db_url, tmp_path):
    engine, sandbox, eng = (engagement_world[k] for k in ("engine", "sandbox", "eng"))
    _conversations(eng)
    platform_data(sandbox.state).revoke("facebook", "501")
    assert materialize(db_url, sandbox, None, tmp_path).success
    with engine.connect() as conn:
        flagged = (
            conn.execute(
                sa.select(s.platform_accounts.c.id).where(s.platform_accounts.c.needs_reconnect)
            )
            .scalars()
            .all()
        )
    assert flagged == ["acct-facebook"]
    assert "1790001_1" in inbox(engine)  # the Instagram account's comments still collected
    rejections = [w for w in _logs(engine, "warning") if "token rejected" in w]
    assert len(rejections) == 1  # the Instagram account does not try the Page's token again


def test_rate_limited_conversations_are_retried_after_retry_after(
    engagement_world, db_url, tmp_path
):
    engine, sandbox, eng = (engagement_world[k] for k in ("engine", "sandbox", "eng"))
    _conversations(eng)
    sandbox.faults.add("engagement.conversations", "rate_limit", retry_after=1, times=1)
    assert materialize(db_url, sandbox, None, tmp_path).success
    assert "dm:m_ig0_0" in _dms(engine) and "dm:m_fb0_0" in _dms(engine)
    statuses = [r["status"] for r in sandbox.requests("engagement.conversations")]
    assert statuses[0] == 429 and statuses.count(200) == 2


def test_malformed_conversations_fail_the_account_not_its_comments(
    engagement_world, db_url, tmp_path
):
    engine, sandbox, eng = (engagement_world[k] for k in ("engine", "sandbox", "eng"))
    _conversations(eng)
    _second_brand(engine, sandbox)  # answers: the run succeeds, b1 is named
    sandbox.faults.add(
        "engagement.conversations",
        "malformed_body",
        body='{"data": [{"updated_time": "2026-11-02T11:00:00+0000"}]}',
        path_contains="platform=messenger",
    )
    result = materialize(db_url, sandbox, None, tmp_path)
    assert result.success
    rows = inbox(engine)
    assert "501_9001_1" in rows and "dm:m_ig0_0" in rows  # comments, Instagram DMs kept
    assert not any(k.startswith("dm:m_fb") for k in rows)
    brands = _checks(result)["all_brands_processed"]
    assert brands.passed is False
    assert "facebook account acct-facebook: malformed answer" in brands.description
    assert "no id" in brands.description


def test_permission_denials_are_not_token_rejections():
    from marba_dagster.core.tokens import is_permission_denial, is_token_rejection

    assert is_permission_denial(403, 200) and is_permission_denial(400, 10)
    assert is_permission_denial(403) and is_permission_denial(400, 230)
    assert not is_permission_denial(400, 190) and not is_permission_denial(401)
    assert not is_permission_denial(400, 100) and not is_permission_denial(500)
    assert is_token_rejection(400, 190) and not is_token_rejection(403, 200)
