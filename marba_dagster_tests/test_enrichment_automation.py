"""Enrichment under Dagster's own daemons, in process, on the real code location: the asset
daemon evaluates ``enrichment_automation_sensor``, the backfill daemon runs the backfill it
emits, queued runs execute as a run worker would, and the freshness daemon grades the
sections."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.api import execute_run
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import (
    InProcessTestWorkspaceLoadTarget,
    create_test_daemon_workspace_context,
    freeze_time,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.asset_daemon import AssetDaemon
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.freshness import FreshnessDaemon
from dagster._utils.hosted_user_process import recon_job_from_origin

from marba_dagster.core.enrichment.refresh import DUE, refresh_mode
from marba_dagster.core.enrichment.sections import TTL
from marba_dagster.core.runs import JOB_TAG, REFRESH_TAG
from marba_dagster.store import schema
from marba_dagster.store.types import utcnow
from marba_dagster_tests.enrichment_fixtures import seed_brands

REPO = Path(__file__).resolve().parent.parent
QUEUED = {
    "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}
}
BRANDS = ["b1", "b2", "b3", "b4"]
REFLECT = dg.AssetKey(["enrichment", "reflect"])
LOG = logging.getLogger("enrichment-automation-test")


@contextmanager
def daemon_world(home: Path):
    """A persistent instance with a run queue and the real code location loaded in process."""
    with dg.instance_for_test(temp_dir=str(home), overrides=QUEUED) as instance:
        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(
                module_name="marba_dagster.definitions", working_directory=str(REPO)
            ),
            location_name="marba_dagster",
        )
        with create_test_daemon_workspace_context(
            InProcessTestWorkspaceLoadTarget(origin), instance
        ) as workspace:
            yield instance, workspace


def initial_run(instance) -> None:
    """Every section of every brand, as a nightly run makes them."""
    from marba_dagster.definitions import load_definitions

    result = (
        load_definitions()
        .resolve_job_def("enrichment_scheduler")
        .execute_in_process(
            instance=instance,
            tags={
                JOB_TAG: "enrichment_scheduler",
                REFRESH_TAG: DUE,
                "dagster/asset_partition_range_start": BRANDS[0],
                "dagster/asset_partition_range_end": BRANDS[-1],
            },
        )
    )
    assert result.success


def tick_automation(daemon: AssetDaemon, workspace, when) -> None:
    with freeze_time(when):  # the sensor's minimum interval is measured on Dagster's clock
        daemon._run_iteration_impl(
            workspace, threadpool_executor=None, amp_tick_futures={}, debug_crash_flags={}
        )


def drain_backfills(instance, workspace) -> list[dg.DagsterRun]:
    """Backfill daemon iterations and queued runs until nothing is left to launch."""
    ran = []
    for _ in range(10):
        list(execute_backfill_iteration(workspace, LOG))
        queued = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
        if not queued:
            break
        for run in queued:
            execute_run(
                recon_job_from_origin(run.job_code_origin),
                run.with_status(dg.DagsterRunStatus.NOT_STARTED),
                instance,
            )
            ran.append(instance.get_run_by_id(run.run_id))
    list(execute_backfill_iteration(workspace, LOG))
    return ran


@pytest.mark.slow
def test_automation_backfill_of_mostly_unchanged_sections_succeeds(marba_env, engine):
    """New learning patterns request reach and optimize for every brand; only b1's inputs
    changed, so three brands of four are unchanged. The backfill still ends green with a
    materialization for every partition (it ended COMPLETED_FAILED while fresh sections
    produced no materialization)."""
    seed_brands(engine, utcnow(), BRANDS)
    with daemon_world(marba_env["dagster_home"]) as (instance, workspace):
        instance.add_dynamic_partitions("brands", BRANDS)
        initial_run(instance)
        daemon = AssetDaemon(
            settings=instance.get_auto_materialize_settings(), pre_sensor_interval_seconds=0
        )
        now = utcnow()
        tick_automation(daemon, workspace, now)  # the sensor's first evaluation: nothing new
        assert instance.get_backfills() == []

        with engine.begin() as conn:  # the learning engine found a new pattern for b1 only
            conn.execute(
                schema.learning_patterns.update()
                .where(
                    schema.learning_patterns.c.brand_id == "b1",
                    schema.learning_patterns.c.pattern_key == "18",
                )
                .values(lift=1.7)
            )
        instance.report_runless_asset_event(
            dg.AssetMaterialization(dg.AssetKey(["learning", "learning_patterns"]))
        )
        tick_automation(daemon, workspace, now + timedelta(seconds=90))
        (backfill,) = instance.get_backfills()
        assert (
            backfill.tags[JOB_TAG] == "enrichment_scheduler"
        )  # the run queue's per-job limit applies

        (run,) = drain_backfills(instance, workspace)
        backfill = instance.get_backfill(backfill.backfill_id)
        assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
        assert run.status == dg.DagsterRunStatus.SUCCESS

        # The tags Dagster 1.13 puts on an automation-launched backfill's run, and the mode
        # they mean.
        assert {
            k: v
            for k, v in run.tags.items()
            if k
            in (
                "dagster/backfill",
                "dagster/sensor_name",
                "dagster/auto_materialize",
                "dagster/from_automation_condition",
                JOB_TAG,
            )
        } == {
            "dagster/backfill": backfill.backfill_id,
            "dagster/sensor_name": "enrichment_automation_sensor",
            "dagster/auto_materialize": "true",
            "dagster/from_automation_condition": "true",
            JOB_TAG: "enrichment_scheduler",
        }
        assert "dagster/asset_evaluation_id" in run.tags and "dagster/from_ui" not in run.tags
        assert refresh_mode(run.tags, REFRESH_TAG).mode == DUE

        outcomes = {}
        for record in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records:
            m = record.event_log_entry.asset_materialization
            outcomes[(m.asset_key.path[-1], m.partition)] = m.metadata["outcome"].value
        assert outcomes == {
            (section, b): ("refreshed" if b == "b1" else "unchanged")
            for section in ("reach", "optimize")
            for b in BRANDS
        }
        for section in ("reach", "optimize"):
            assert set(
                instance.get_status_by_partition(
                    dg.AssetKey(["enrichment", section]), BRANDS, _partitions()
                ).values()
            ) == {dg.AssetPartitionStatus.MATERIALIZED}


def _partitions():
    from marba_dagster.defs.brands import brands_partitions

    return brands_partitions


@pytest.mark.slow
def test_freshness_warns_at_three_quarters_of_the_ttl(marba_env, engine):
    seed_brands(engine, utcnow(), BRANDS[:1])
    with daemon_world(marba_env["dagster_home"]) as (instance, workspace):
        instance.add_dynamic_partitions("brands", BRANDS[:1])
        from marba_dagster.definitions import load_definitions

        assert (
            load_definitions()
            .resolve_job_def("enrichment_scheduler")
            .execute_in_process(instance=instance, partition_key="b1", asset_selection=[REFLECT])
            .success
        )
        made = instance.get_latest_materialization_event(REFLECT).timestamp
        daemon = FreshnessDaemon()
        ttl = TTL["reflect"].total_seconds()

        def state_at(seconds_after: float) -> str:
            with freeze_time(made + seconds_after):
                list(daemon.run_iteration(workspace))
            return instance.get_freshness_state_records([REFLECT])[REFLECT].freshness_state.value

        assert state_at(0.7 * ttl) == "PASS"
        assert state_at(0.8 * ttl) == "WARN"
        assert state_at(ttl + 60) == "FAIL"
