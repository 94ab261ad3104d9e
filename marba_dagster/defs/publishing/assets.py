"""auto_publisher: publishes due scheduled content exactly once (group ``publishing``).

The engine is :mod:`marba_dagster.defs.publishing.publisher`; this module wires it to
Dagster: the asset and a check that surfaces posts needing a person. The
``publisher_settings`` resource is defined in :mod:`.settings`.
"""

import dataclasses
from contextlib import ExitStack

import dagster as dg
import sqlalchemy as sa

from marba_dagster.connectors.http import ApiClient
from marba_dagster.connectors.publishing import GraphPublisher, XPublisher
from marba_dagster.defs import pools
from marba_dagster.defs.common import markdown_table, requested_brands, scoped_brand_ids
from marba_dagster.defs.publishing.alerts import push_once
from marba_dagster.defs.publishing.publisher import PublishRun
from marba_dagster.defs.publishing.settings import PublisherSettings
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.store import schema as s


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
        "outcomes become 'unknown' and are alerted, never retried automatically."
    ),
    retry_policy=dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
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
        push_once(engine, notifier.webhook_url, dedup_key=dedup_key, kind=kind, text=text, brand_id=brand_id)

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
    with marba_db.connect() as conn:
        waiting = conn.execute(
            sa.select(s.scheduled_content.c.status, sa.func.count())
            .where(s.scheduled_content.c.status.in_(("scheduled", "unknown", "publishing")))
            .group_by(s.scheduled_content.c.status)
        ).all()
    backlog = {status: n for status, n in waiting}
    context.log.info(f"publisher run: {summary.as_metadata()}")
    return dg.MaterializeResult(
        metadata={
            **summary.as_metadata(),
            "still_scheduled": backlog.get("scheduled", 0),
            "unknown_total": backlog.get("unknown", 0),
            "preview": dg.MetadataValue.md(
                markdown_table(summary.rows, ["id", "platform", "status", "external_post_id", "lateness_s", "error"])
            ),
        }
    )


@dg.asset_check(
    asset=published_posts,
    description="No post is waiting for a person: none in 'unknown', none stuck in 'publishing'.",
)
def no_unresolved_posts(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    sc = s.scheduled_content
    with marba_db.connect() as conn:
        unknown = conn.execute(sa.select(sa.func.count()).where(sc.c.status == "unknown")).scalar_one()
        stuck = conn.execute(sa.select(sa.func.count()).where(sc.c.status == "publishing")).scalar_one()
    return dg.AssetCheckResult(
        passed=unknown == 0 and stuck == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unknown_posts": unknown, "publishing_posts": stuck},
        description=None if unknown == 0 else f"{unknown} post(s) need a person to check the platform",
    )
