"""Brand shards: a tick split into runs of at most MARBA_BRANDS_PER_RUN brands, every brand
in exactly one shard, stable run keys, the run queue's per-shard key, a shard's brands as
the run sees them, and a tick's shards tracked as one execution."""

import gc
import random
from datetime import UTC, datetime

import dagster as dg
import pytest

from marba_dagster.core import catalog
from marba_dagster.core.brands import BRANDS_PARTITIONS_NAME, brand_id_of, brand_partition_key
from marba_dagster.core.runs import (
    BRANDS_BEFORE_TAG,
    BRANDS_FROM_TAG,
    SHARD_OF_TAG,
    SHARD_TAG,
    TICK_TAG,
)
from marba_dagster.core.shards import (
    PRIORITY_TAG,
    SHARD_PRIORITY,
    Shard,
    brand_range,
    combine_shards,
    in_shard,
    plan_by_id,
    plan_by_partition,
    queue_key,
    shard_key,
    shard_tags,
    tick_id,
)
from marba_dagster.defs.batches import scoped_brand_ids
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store import jobs as job_store
from marba_dagster.store import schema as s
from marba_dagster_tests import monitoring_helpers as mh

TICK = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def _ids(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"brand-{rng.randrange(10**9):09d}-{i}" for i in range(count)]


def _owners(brand: str, shards: list[Shard]) -> list[int]:
    return [sh.index for sh in shards if in_shard(brand, sh.first, sh.before)]


def test_every_brand_is_in_exactly_one_shard_of_at_most_the_limit():
    ids = _ids(1234)
    shards = plan_by_id(ids, 100)
    assert len(shards) == 13 and [sh.index for sh in shards] == list(range(1, 14))
    assert all(sh.count == 13 and sh.brands <= 100 for sh in shards)
    assert sum(sh.brands for sh in shards) == 1234
    assert shards[0].first is None and shards[-1].before is None  # open at both ends
    sizes = {sh.index: 0 for sh in shards}
    for brand in ids:
        owners = _owners(brand, shards)
        assert len(owners) == 1, (brand, owners)
        sizes[owners[0]] += 1
    assert sizes == {sh.index: sh.brands for sh in shards}
    # A brand activated after the tick (any id, below, between or above the planned ones)
    # falls in exactly one shard when the shard's run resolves its range.
    for late in ("", "a", "brand-", "brand-5", "brand-999999999-9", "zzz", *_ids(200, seed=8)):
        assert len(_owners(late, shards)) == 1, late


def test_a_small_install_is_one_run_over_every_brand():
    (only,) = plan_by_id(_ids(500), 500)
    assert (only.index, only.count, only.first, only.before) == (1, 1, None, None)
    assert plan_by_id([], 500) == [Shard(1, 1, 0)]
    tags = shard_tags("learning_engine", "learning_engine:t", only)
    assert tags == {SHARD_TAG: "learning_engine:1"}  # no tick: the run is the execution
    assert len(plan_by_id(_ids(501), 500)) == 2


def test_partition_shards_are_contiguous_ranges_in_the_partitions_order():
    keys = [brand_partition_key(b, f"Brand {b}") for b in _ids(1050)]  # insertion order
    shards = plan_by_partition(keys, 500)
    assert [sh.brands for sh in shards] == [350, 350, 350]
    covered = []
    for sh in shards:
        start, end = keys.index(sh.partition_start), keys.index(sh.partition_end)
        covered.extend(keys[start : end + 1])
    assert covered == keys  # contiguous, disjoint, complete
    assert plan_by_partition([], 500) == []


def test_shard_tags_carry_the_queue_key_the_place_and_the_range():
    shards = plan_by_id(_ids(30), 10)
    tick = tick_id("analytics_collector", TICK)
    assert tick == "analytics_collector:2026-12-07T03:00:00+00:00"
    tags = shard_tags("analytics_collector", tick, shards[1])
    assert tags[SHARD_TAG] == "analytics_collector:2"
    assert tags[SHARD_OF_TAG] == "2/3" and tags[TICK_TAG] == tick
    assert brand_range(tags) == (shards[1].first, shards[1].before)
    assert BRANDS_FROM_TAG not in shard_tags("analytics_collector", tick, shards[0])
    assert BRANDS_BEFORE_TAG not in shard_tags("analytics_collector", tick, shards[2])
    # A tick's shards go ahead of queued one-brand runs; a tick of one shard is an ordinary run.
    assert tags[PRIORITY_TAG] == SHARD_PRIORITY
    one = plan_by_id(_ids(3), 10)[0]
    assert PRIORITY_TAG not in shard_tags("analytics_collector", tick, one)


def test_a_run_outside_a_tick_is_keyed_by_its_partition_or_as_every_brand():
    job = catalog.ENRICHMENT_JOB
    # One brand's refresh (automation, a person's Materialize): its own queue key, so a
    # burst of them neither runs one at a time nor takes the scheduled shards' keys.
    one = queue_key(job, {"dagster/partition": "ellis-co~b7"})
    assert one == f"{job}:partition:ellis-co~b7"
    assert one != queue_key(job, {"dagster/partition": "oslo-coffee~b8"})
    assert one not in {shard_key(job, i) for i in range(1, 50)}
    assert queue_key(job, {}) == shard_key(job) == f"{job}:1"


def _repository():
    # A repository of its own (not the helpers' shared one): a failed evaluation keeps its
    # context alive in the exception, and with it the test's instance.
    from marba_dagster_tests.monitoring_location import defs

    return defs().get_repository_def()


def _schedule(repository, name: str) -> dg.ScheduleDefinition:
    return repository.get_schedule_def(f"{name}_schedule")


def _context(instance, repository) -> dg.ScheduleEvaluationContext:
    return dg.build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, repository_def=repository
    )


def _tick(instance, name: str):
    repository = _repository()
    return _schedule(repository, name).evaluate_tick(_context(instance, repository)).run_requests


def test_the_schedule_emits_one_run_per_shard_with_stable_run_keys(monkeypatch):
    monkeypatch.setenv("MARBA_BRANDS_PER_RUN", "400")
    keys = [brand_partition_key(b, "Shop") for b in _ids(1001)]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(BRANDS_PARTITIONS_NAME, keys)
        first = _tick(instance, "analytics_collector")
        # The daemon evaluates the same tick again after a restart: the same run keys, so
        # Dagster launches none of the shards a second time.
        again = _tick(instance, "analytics_collector")
    tick = "analytics_collector:2026-12-07T03:00:00+00:00"
    assert [r.run_key for r in first] == [f"{tick}:{i}/3" for i in (1, 2, 3)]
    assert [r.run_key for r in again] == [r.run_key for r in first]
    assert [r.tags for r in again] == [r.tags for r in first]
    assert all(r.partition_key == "2026-12-06" for r in first)  # the day before the tick
    assert {r.tags[SHARD_TAG] for r in first} == {f"analytics_collector:{i}" for i in (1, 2, 3)}
    ranges = [brand_range(r.tags) for r in first]
    for brand in map(brand_id_of, keys):
        assert sum(in_shard(brand, *rng) for rng in ranges) == 1


def test_the_enrichment_schedule_shards_its_brand_partitions(monkeypatch):
    monkeypatch.setenv("MARBA_BRANDS_PER_RUN", "2")
    with dg.instance_for_test() as instance:
        repository = _repository()
        skipped = _schedule(repository, catalog.ENRICHMENT_JOB).evaluate_tick(
            _context(instance, repository)
        )
        assert skipped.run_requests == [] or skipped.run_requests is None
        assert "no brand partitions yet" in skipped.skip_message
        instance.add_dynamic_partitions(BRANDS_PARTITIONS_NAME, ["e~e", "a~a", "c~c", "b~b"])
        requests = _tick(instance, catalog.ENRICHMENT_JOB)
    ranges = [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in requests
    ]
    assert ranges == [("e~e", "a~a"), ("c~c", "b~b")]  # the partitions' own order
    assert [r.tags[SHARD_OF_TAG] for r in requests] == ["1/2", "2/2"]
    assert all(BRANDS_FROM_TAG not in r.tags for r in requests)


def test_a_small_install_keeps_its_one_run_and_run_key(monkeypatch):
    monkeypatch.delenv("MARBA_BRANDS_PER_RUN", raising=False)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(BRANDS_PARTITIONS_NAME, ["a~a", "b~b"])
        (request,) = _tick(instance, "learning_engine")
    assert request.run_key == "learning_engine:2026-12-07T03:00:00+00:00"
    assert TICK_TAG not in request.tags and request.tags[SHARD_TAG] == "learning_engine:1"


def test_an_unusable_brands_per_run_fails_the_tick_naming_the_variable(monkeypatch):
    monkeypatch.setenv("MARBA_BRANDS_PER_RUN", "0")
    with dg.instance_for_test() as instance:
        with pytest.raises(dg.DagsterUserCodeExecutionError) as raised:
            _tick(instance, "learning_engine")
        cause = str(raised.value.__cause__)
        # The failed evaluation's frames keep a context manager of Dagster's open (the
        # process-wide definitions state storage, bound to this instance): collect them
        # while the instance is still the current one, so they restore what they found.
        del raised
        gc.collect()
    # The tick's error in the UI: the setting, its value and the rule.
    assert cause == "invalid setting MARBA_BRANDS_PER_RUN='0': must be a whole number >= 1"


# -------------------------------------------------------------- a shard's brands in a run


@dg.asset(description="Reports the brands its run covers.")
def covered_brands(context: dg.AssetExecutionContext, marba_db: MarbaDatabase):
    return dg.MaterializeResult(
        metadata={"brands": dg.MetadataValue.json(scoped_brand_ids(context, marba_db))}
    )


def _brands_of_run(db_url: str, tags: dict[str, str]) -> list[str]:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [covered_brands],
            resources={"marba_db": MarbaDatabase(url=db_url)},
            instance=instance,
            tags=tags,
        )
        return result.asset_materializations_for_node("covered_brands")[0].metadata["brands"].value


def test_a_shard_run_covers_the_active_brands_of_its_range(engine, db_url):
    with engine.begin() as conn:
        conn.execute(
            s.brands.insert(),
            [
                {"id": b, "name": b, "industry": "bakery", "keywords": [], "is_active": active}
                for b, active in [("b1", True), ("b2", True), ("b3", False), ("b4", True)]
            ],
        )
    first = _brands_of_run(db_url, {BRANDS_BEFORE_TAG: "b3"})
    second = _brands_of_run(db_url, {BRANDS_FROM_TAG: "b3"})
    assert first == ["b1", "b2"] and second == ["b4"]  # b3 inactive
    assert _brands_of_run(db_url, {BRANDS_FROM_TAG: "b2", "marba/brands": "b1,b2"}) == ["b2"]
    assert _brands_of_run(db_url, {}) == ["b1", "b2", "b4"]


# ------------------------------------------------------------------ one execution per tick


def _shard_facts(index: int, status: str, processed: int, error: str | None = None) -> dict:
    return {
        "shard_index": index,
        "status": status,
        "trigger": "schedule",
        "partition_key": None,
        "started_at": datetime(2026, 12, 7, 3, index, tzinfo=UTC),
        "finished_at": None
        if status in ("queued", "running")
        else datetime(2026, 12, 7, 3, 10 + index, tzinfo=UTC),
        "brands_processed": processed,
        "brands_failed": 0,
        "error": error,
    }


def test_a_tick_is_under_way_until_every_shard_has_finished():
    done = [_shard_facts(1, "success", 5)]
    assert combine_shards("j", "j:t", 2, done).status == "running"  # shard 2 not seen yet
    facts = combine_shards("j", "j:t", 2, [*done, _shard_facts(2, "partial", 4, "b9 failed")])
    assert facts.status == "partial" and facts.brands_processed == 9
    assert facts.error == "shard 2/2: b9 failed"
    assert facts.started_at == datetime(2026, 12, 7, 3, 1, tzinfo=UTC)
    assert facts.finished_at == datetime(2026, 12, 7, 3, 12, tzinfo=UTC)
    failed = combine_shards("j", "j:t", 2, [*done, _shard_facts(2, "failure", 0, "db down")])
    assert failed.status == "failure" and failed.error == "shard 2/2: db down"
    queued = [{**_shard_facts(i, "queued", 0), "started_at": None} for i in (1, 2)]
    assert combine_shards("j", "j:t", 2, queued).status == "queued"


def test_a_sharded_tick_is_one_execution_with_per_shard_detail(
    db_url, engine, tmp_path, monkeypatch
):
    monkeypatch.setenv(mh.CONTROL_DIR_VAR, str(tmp_path))
    tick = tick_id("learning_engine", TICK)
    shards = plan_by_id(["a", "b", "c", "d"], 2)
    with mh.marba_instance(tmp_path / "home", db_url) as instance:
        first = mh.run_job(
            instance, "learning_engine", db_url, shard_tags("learning_engine", tick, shards[0])
        )
        with engine.connect() as conn:
            (row,) = job_store.executions(conn, "learning_engine")
        assert row["run_id"] == tick and row["status"] == "running"  # shard 2 to come
        mh.set_failing(tmp_path, "learning_engine", True)
        second = mh.run_job(
            instance, "learning_engine", db_url, shard_tags("learning_engine", tick, shards[1])
        )
        mh.set_failing(tmp_path, "learning_engine", False)
        # The shard is retried (Dagster's run retry copies the run's tags) and succeeds.
        retried = mh.run_job(
            instance, "learning_engine", db_url, shard_tags("learning_engine", tick, shards[1])
        )
    with engine.connect() as conn:
        executions = job_store.executions(conn, "learning_engine")
        detail = job_store.execution_shards(conn, tick)
        job = job_store.job_row(conn, "learning_engine")
        logs = job_store.logs(conn, "learning_engine", level="error")
    assert [e["run_id"] for e in executions] == [tick]  # one execution, not three runs
    (execution,) = executions
    assert execution["status"] == "success" and execution["brands_processed"] == 6
    assert execution["finished_at"] is not None and execution["error"] is None
    assert [(d["shard_index"], d["run_id"], d["status"]) for d in detail] == [
        (1, first, "success"),
        (2, second, "failure"),
        (2, retried, "success"),
    ]
    assert all(d["shard_count"] == 2 for d in detail)
    assert job["last_run_id"] == tick and job["last_run_status"] == "success"
    # The failed shard run is in job_logs under its own run id.
    assert [log["run_id"] for log in logs] == [second]


def test_a_failed_shard_fails_the_execution_naming_the_shard(db_url, engine, tmp_path, monkeypatch):
    monkeypatch.setenv(mh.CONTROL_DIR_VAR, str(tmp_path))
    tick = tick_id("learning_engine", TICK)
    shards = plan_by_id(["a", "b", "c", "d"], 2)
    with mh.marba_instance(tmp_path / "home", db_url) as instance:
        mh.run_job(
            instance, "learning_engine", db_url, shard_tags("learning_engine", tick, shards[0])
        )
        mh.set_failing(tmp_path, "learning_engine", True)
        mh.run_job(
            instance, "learning_engine", db_url, shard_tags("learning_engine", tick, shards[1])
        )
    with engine.connect() as conn:
        (execution,) = job_store.executions(conn, "learning_engine")
        report = job_store.job_health(conn, "learning_engine")
    assert execution["status"] == "failure" and execution["brands_processed"] == 3
    assert execution["error"].startswith("shard 2/2: ")
    assert "told to fail" in execution["error"]
    assert report.runs == 1 and report.health == "unhealthy"


def test_trigger_queues_one_run_per_shard_and_tracks_them_as_one(
    engine, db_url, tmp_path, monkeypatch
):
    from marba_dagster.api import BackgroundJobScheduler

    monkeypatch.setenv(mh.CONTROL_DIR_VAR, str(tmp_path))
    monkeypatch.setenv("MARBA_BRANDS_PER_RUN", "2")
    with engine.begin() as conn:
        conn.execute(
            s.brands.insert(),
            [{"id": b, "name": b, "industry": "bakery", "keywords": []} for b in "abc"],
        )
    with mh.queued_instance(tmp_path / "home") as instance:
        sched = BackgroundJobScheduler(
            engine=engine, instance=instance, definitions_module=mh.TEST_MODULE
        )
        try:
            execution_id, run_ids = sched.trigger_job_runs("cron-learning-engine")
            runs = [instance.get_run_by_id(r) for r in run_ids]
            assert execution_id.startswith("learning_engine:") and len(runs) == 2
            assert [r.tags[SHARD_OF_TAG] for r in runs] == ["1/2", "2/2"]
            assert {r.tags[TICK_TAG] for r in runs} == {execution_id}
            assert [r.tags[SHARD_TAG] for r in runs] == ["learning_engine:1", "learning_engine:2"]
            assert all(r.status == dg.DagsterRunStatus.QUEUED for r in runs)
            assert brand_range(runs[0].tags) == (None, "b") and brand_range(runs[1].tags) == (
                "b",
                None,
            )
            for run_id in run_ids:  # what the daemon's run workers do
                mh.execute_queued(instance, run_id, db_url)
            (history,) = sched.get_execution_history("learning_engine")
            assert history["run_id"] == execution_id and history["status"] == "success"
            assert history["shards"] == 2 and history["brands_processed"] == 6
            detail = sched.get_execution_shards(execution_id)
            assert [(d["shard_index"], d["run_id"]) for d in detail] == [
                (1, run_ids[0]),
                (2, run_ids[1]),
            ]
            # One brand: one run, no shards, its run id is the execution's.
            run_id = sched.trigger_job("learning_engine", brand_id="c")
            assert TICK_TAG not in instance.get_run_by_id(run_id).tags
        finally:
            sched.close()


def _facts(run_id: str, status: str, processed: int):
    from marba_dagster.core.runs import RunFacts

    return RunFacts(
        job_name="learning_engine",
        run_id=run_id,
        status=status,
        trigger="schedule",
        partition_key=None,
        started_at=datetime(2026, 12, 7, 3, 0, tzinfo=UTC),
        finished_at=None if status == "running" else datetime(2026, 12, 7, 3, 5, tzinfo=UTC),
        brands_processed=processed,
        brands_failed=0,
        error=None,
    )


def _lock_waiters(engine) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()


def test_two_shards_recorded_at_once_combine_into_a_finished_execution(engine):
    """Shard 1's process has recorded its end but not committed when shard 2's process
    records its own: the second waits for the first (the execution's row is locked), so
    it combines both and the execution does not stay 'running'."""
    import threading

    tick = tick_id("learning_engine", TICK)
    with engine.begin() as conn:
        job_store.sync_background_jobs(conn)
        job_store.record_shard_run(conn, _facts("r1", "running", 0), tick, 1, 2)
        job_store.record_shard_run(conn, _facts("r2", "running", 0), tick, 2, 2)
    first = engine.connect()
    first_tx = first.begin()
    job_store.record_shard_run(first, _facts("r1", "success", 3), tick, 1, 2)
    second_done = threading.Event()

    def record_second() -> None:
        with engine.begin() as conn:
            job_store.record_shard_run(conn, _facts("r2", "success", 4), tick, 2, 2)
        second_done.set()

    thread = threading.Thread(target=record_second)
    thread.start()
    if engine.dialect.name == "postgresql":
        # The second recorder is waiting on the execution's row (not done before we commit).
        mh.wait_for(
            lambda: _lock_waiters(engine) > 0, 30, "the second recorder to wait", interval=0.1
        )
    first_tx.commit()
    first.close()
    thread.join(30)
    assert second_done.is_set()
    with engine.connect() as conn:
        (execution,) = job_store.executions(conn, "learning_engine")
    assert execution["status"] == "success" and execution["brands_processed"] == 7
