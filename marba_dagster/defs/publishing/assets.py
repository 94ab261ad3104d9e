"""auto_publisher: publishes due scheduled content exactly once (group ``publishing``).

The engine is :mod:`marba_dagster.defs.publishing.publisher`; this module wires it to
Dagster: the asset, its ``all_brands_processed`` check (a brand with a post that failed, was
missed or became unknown in the run is named with those posts and their reasons, read from
the run's ``publish_events``) and a check that surfaces posts needing a person. The
``publisher_settings`` resource is defined in :mod:`.settings`.
"""

import dataclasses
from contextlib import ExitStack

import dagster as dg
import sqlalchemy as sa

from marba_dagster.connectors.describe import one_line
from marba_dagster.connectors.http import ApiClient
from marba_dagster.connectors.publishing import GraphPublisher, XPublisher
from marba_dagster.defs import pools
from marba_dagster.defs.batches import (
    BrandBatch,
    completeness_check_specs,
    requested_brands,
    scoped_brand_ids,
)
from marba_dagster.defs.metadata import markdown_table
from marba_dagster.defs.publishing.publisher import PublishRun
from marba_dagster.defs.publishing.settings import PublisherSettings
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.defs.retries import PLATFORM_RETRY
from marba_dagster.services.notifications import push_once
from marba_dagster.store import schema as s

# Outcomes of a post in a run that leave it unpublished for good (until a person acts).
UNPUBLISHED = ("failed", "missed", "unknown")
# Posts named per brand in the check (the brand's count is exact).
POSTS_NAMED = 5


def run_post_outcomes(conn, run_id: str) -> dict[str, dict[str, dict]]:
    """``{brand: {post id: last event}}`` of every post the run touched (claimed, published,
    rescheduled, failed, missed or found unknown), from ``publish_events``: the publisher's
    record of each outcome, retries of the step included."""
    pe = s.publish_events
    out: dict[str, dict[str, dict]] = {}
    for r in conn.execute(
        sa.select(pe.c.brand_id, pe.c.scheduled_content_id, pe.c.platform, pe.c.status, pe.c.error)
        .where(pe.c.run_id == run_id)
        .order_by(pe.c.id)
    ).mappings():
        out.setdefault(r["brand_id"], {})[r["scheduled_content_id"]] = dict(r)
    return out


def _reason(post: dict) -> str:
    reason = post["error"] or "no reason recorded"
    if reason.lower().startswith(post["status"] + ":"):  # "missed: due at ..."
        reason = reason[len(post["status"]) + 1 :]
    return one_line(reason, 100)


def unpublished_text(posts: list[dict]) -> str:
    """One line naming a brand's unpublished posts and why (at most ``POSTS_NAMED``)."""
    posts = sorted(posts, key=lambda p: p["scheduled_content_id"])
    named = "; ".join(
        f"post {p['scheduled_content_id']} ({p['platform']}) {p['status']}: {_reason(p)}"
        for p in posts[:POSTS_NAMED]
    )
    more = f"; and {len(posts) - POSTS_NAMED} more" if len(posts) > POSTS_NAMED else ""
    return f"{len(posts)} post(s) not published: {named}{more}"


def single_attempt_client(endpoint: ApiEndpoint, name: str) -> ApiClient:
    """A client that sends each request once: retrying a post is the publisher's decision."""
    policy = dataclasses.replace(endpoint.policy(), max_attempts=1)
    return ApiClient(endpoint.base_url, policy=policy, name=name)


@dg.asset(
    name="published_posts",
    group_name="publishing",
    kinds={"python", "sql"},
    pool=pools.PLATFORM_PUBLISH,
    description=(
        "Publishes every due scheduled post (scheduled_at up to 5 minutes ahead, including "
        "catch-up) exactly once to Facebook, Instagram and X; records every attempt in "
        "publish_events. Posts later than the maximum lateness fail as missed; unknowable "
        "outcomes become 'unknown' and are alerted, never retried automatically. A brand "
        "with a post that failed, was missed or became unknown in the run is named, with "
        "those posts and their reasons, by the all_brands_processed check (WARN)."
    ),
    check_specs=completeness_check_specs("published_posts"),
    retry_policy=PLATFORM_RETRY,
)
def published_posts(
    context: dg.AssetExecutionContext,
    marba_db: MarbaDatabase,
    graph_api: ApiEndpoint,
    x_api: ApiEndpoint,
    notifier: Notifier,
    publisher_settings: PublisherSettings,
) -> dg.MaterializeResult:
    brand_ids = scoped_brand_ids(context, marba_db) if requested_brands(context) else None
    engine = marba_db.engine

    def alert(dedup_key: str, kind: str, text: str, brand_id: str | None) -> None:
        push_once(
            engine,
            notifier.webhook_url,
            dedup_key=dedup_key,
            kind=kind,
            text=text,
            brand_id=brand_id,
        )

    with ExitStack() as stack:
        graph = stack.enter_context(single_attempt_client(graph_api, "graph_publish"))
        x = stack.enter_context(single_attempt_client(x_api, "x_publish"))
        graph_publisher = GraphPublisher(graph)
        run = PublishRun(
            engine,
            {"facebook": graph_publisher, "instagram": graph_publisher, "x": XPublisher(x)},
            publisher_settings.config(),
            run_id=context.run.run_id,
            brand_ids=brand_ids,
            alert=alert,
            logger=context.log,
        )
        summary = run.run()
    batch = BrandBatch(context, marba_db)
    with marba_db.connect() as conn:
        outcomes = run_post_outcomes(conn, context.run.run_id)
        waiting = conn.execute(
            sa.select(s.scheduled_content.c.status, sa.func.count())
            .where(s.scheduled_content.c.status.in_(("scheduled", "unknown", "publishing")))
            .group_by(s.scheduled_content.c.status)
        ).all()
    backlog = {status: n for status, n in waiting}
    unpublished: list[dict] = []
    for brand_id in sorted(outcomes):
        bad = [p for p in outcomes[brand_id].values() if p["status"] in UNPUBLISHED]
        unpublished += [
            {
                "post": p["scheduled_content_id"],
                "brand_id": brand_id,
                "platform": p["platform"],
                "status": p["status"],
                "reason": _reason(p),
            }
            for p in bad
        ]
        if bad:
            # Not raised: the other brands' posts are out; the check names these.
            batch.record_failure(brand_id, unpublished_text(bad))
        else:
            batch.succeeded.append(brand_id)
    context.log.info(f"publisher run: {summary.as_metadata()}")
    return dg.MaterializeResult(
        metadata={
            **summary.as_metadata(),
            **batch.metadata(),
            "still_scheduled": backlog.get("scheduled", 0),
            "unpublished_posts": dg.MetadataValue.json(unpublished[:50]),
            "unknown_total": backlog.get("unknown", 0),
            "preview": dg.MetadataValue.md(
                markdown_table(
                    summary.rows,
                    ["id", "platform", "status", "external_post_id", "lateness_s", "error"],
                )
            ),
        },
        check_results=batch.check_results("published_posts"),
    )


@dg.asset_check(
    asset=published_posts,
    description="No post is waiting for a person: none in 'unknown', none stuck in 'publishing'.",
)
def no_unresolved_posts(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    sc = s.scheduled_content
    with marba_db.connect() as conn:
        unknown = conn.execute(
            sa.select(sa.func.count()).where(sc.c.status == "unknown")
        ).scalar_one()
        stuck = conn.execute(
            sa.select(sa.func.count()).where(sc.c.status == "publishing")
        ).scalar_one()
    return dg.AssetCheckResult(
        passed=unknown == 0 and stuck == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unknown_posts": unknown, "publishing_posts": stuck},
        description=None
        if unknown == 0
        else f"{unknown} post(s) need a person to check the platform",
    )
