"""Full daily cycle: N brands on PostgreSQL, every job in production order, through Dagster.

    python -m bench.full_cycle --brands 100 300 1000 3000

For each N: a fresh PostgreSQL database (MARBA tables) and a fresh PostgreSQL database for the
Dagster instance (runs and event logs, as in production's ``dagster.yaml``), N demo brands
seeded, the API sandbox started **in its own process** (``marba sandbox``, serving the seeded
platform data) so its CPU is not counted against the jobs, then the seven jobs in
``core.catalog.DEMO_ORDER`` through ``marba_dagster.runner.run_job`` (``execute_in_process``
against the persistent instance, like ``marba run``). Per job and in total: wall seconds,
seconds per brand, peak RSS of this process (the run happens in it), MARBA rows added
(``count(*)`` before/after) and rows written (PostgreSQL's inserted+updated+deleted tuple
counters) per second.

Orchestration overhead, measured in the same run: the same cycle on a clone of the seeded
database (``CREATE DATABASE ... TEMPLATE``) run in-process with an ephemeral instance (no run
or event storage: the asset code plus Dagster's in-process executor), against the runner
through the persistent instance; and one job (learning_engine, idempotent) launched through a
real ``dagster-daemon`` with the queued run coordinator (submit -> run process -> success),
against the same job through the runner.

The verdict (ratios, measured in the same run): time per brand at the largest N divided by
time per brand at the smallest must stay <= 1.25 (flat or falling).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.harness import RESULTS_DIR, Scenario, measure

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get(
    "MARBA_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
NAME = "full_cycle"


# ----------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_url(name: str) -> str:
    return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _admin(sql: str) -> None:
    from marba_dagster.store.db import make_engine

    eng = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        eng.dispose()


def create_db(prefix: str, template: str | None = None) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name, _pg_url(name)


def drop_db(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table_counts(engine) -> dict[str, int]:
    from marba_dagster.store.schema import metadata

    names = [t.name for t in metadata.sorted_tables]
    sql = " UNION ALL ".join(f"SELECT '{n}', count(*) FROM \"{n}\"" for n in names)
    with engine.connect() as conn:
        return {n: int(c) for n, c in conn.execute(sa.text(sql))}


def tuples_written(engine) -> int:
    """Inserted + updated + deleted tuples of the MARBA tables (PostgreSQL's counters)."""
    from marba_dagster.store.schema import metadata

    names = [t.name for t in metadata.sorted_tables]
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        return int(
            conn.execute(
                sa.text(
                    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
                    "FROM pg_stat_user_tables "
                    "WHERE relname = ANY(:names)"
                ),
                {"names": names},
            ).scalar()
        )


def settle_stats() -> None:
    """Close the jobs' pooled connections so PostgreSQL flushes their tuple counters."""
    from marba_dagster.store.db import dispose_engines

    dispose_engines()
    time.sleep(0.7)


class Sandbox:
    """``marba sandbox --port P`` in its own process (loads platform data from the DB)."""

    def __init__(self, db_url: str, port: int, log: Path) -> None:
        self.port, self.base_url = port, f"http://127.0.0.1:{port}"
        env = dict(os.environ, MARBA_DATABASE_URL=db_url)
        self._log = open(log, "w")  # noqa: SIM115 - outlives __init__, closed in stop()
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "marba"), "sandbox", "--port", str(port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self.proc.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/_sandbox/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("sandbox did not start within 300 s")

    def add_latency(self, ms: float) -> None:
        """Every outside API answers ``ms`` later (a real API's round trip, not loopback's)."""
        body = json.dumps({"route": "*", "kind": "latency", "ms": ms}).encode()
        req = urllib.request.Request(
            f"{self.base_url}/_sandbox/faults",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def cpu_seconds(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return 0.0

    def request_count(self) -> int:
        with urllib.request.urlopen(
            f"{self.base_url}/_sandbox/requests?route=__count_only__", timeout=30
        ) as r:
            data = json.loads(r.read())
        counts = data.get("counts") if isinstance(data, dict) else None
        return int(sum(counts.values())) if isinstance(counts, dict) else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


STOCK_STORAGE = "storage:\n  postgres:\n    postgres_url:\n      env: DAGSTER_PG_URL\n"
# As in the repository's dagster.yaml: dagster-postgres with held connections.
POOLED_STORAGE = (
    "storage:\n  custom:\n    module: marba_dagster.instance.storage\n"
    "    class: PooledPostgresStorage\n    config:\n      postgres_url:\n"
    "        env: DAGSTER_PG_URL\n"
)


def dagster_home(path: Path, *, stock_storage: bool = False) -> Path:
    """A DAGSTER_HOME with PostgreSQL run/event storage (production's pooled storage, or
    stock dagster-postgres) and the queued run coordinator."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text(
        (STOCK_STORAGE if stock_storage else POOLED_STORAGE)
        + "run_coordinator:\n  module: dagster.core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
        "  config:\n    max_concurrent_runs: 4\n    dequeue_interval_seconds: 1\n"
        "run_launcher:\n  module: dagster.core.launcher\n  class: DefaultRunLauncher\n"
        "telemetry:\n  enabled: false\n"
    )
    return path


# ------------------------------------------------------------------------ one cycle


def run_cycle(
    jobs: list[str],
    engine,
    n_brands: int,
    *,
    instance,
    definitions,
    direct: bool,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """Every job once, in order; per-job figures. ``direct``: ephemeral instance.
    ``profile_dir``: each runner job under cProfile, stats in ``<dir>/<N>_<job>.prof``."""
    import dagster as dg

    from marba_dagster.core.catalog import resolve
    from marba_dagster.core.run_scope import NothingToRun
    from marba_dagster.instance.partitions import scope_now, sync_brand_partitions
    from marba_dagster.runner import run_job

    per_job: dict[str, Any] = {}
    for name in jobs:
        counts_before = table_counts(engine)
        written_before = tuples_written(engine)
        with measure() as m:
            if direct:
                # The same work in-process: the job's assets on an ephemeral (in-memory)
                # instance — no run/event storage, no partition sync through storage.
                eph = dg.DagsterInstance.ephemeral()
                sync_brand_partitions(eph, engine)
                spec = resolve(name)
                try:
                    key, tags = scope_now(spec, datetime.now(timezone.utc), eph)
                except NothingToRun:
                    key, tags = None, None
                ok, errors = True, []
                if tags is not None:
                    res = definitions.resolve_job_def(spec.name).execute_in_process(
                        instance=eph,
                        partition_key=key,
                        tags=tags,
                        raise_on_error=False,
                        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
                    )
                    ok = res.success
                    errors = [
                        e.step_key
                        for e in res.all_events
                        if e.event_type == dg.DagsterEventType.STEP_FAILURE
                    ]
                    del res
                eph.dispose()
                del eph
                # Collect the in-memory instance here: if a later job's worker thread ran the
                # collection, SQLite would complain about connections from another thread.
                gc.collect()
            elif profile_dir is not None:
                import cProfile

                prof = cProfile.Profile()
                outcome = prof.runcall(run_job, name, instance=instance, definitions=definitions)
                profile_dir.mkdir(parents=True, exist_ok=True)
                prof.dump_stats(str(profile_dir / f"{n_brands}_{name}.prof"))
                ok, errors = outcome.success, outcome.errors
            else:
                outcome = run_job(name, instance=instance, definitions=definitions)
                ok, errors = outcome.success, outcome.errors
        settle_stats()
        counts_after = table_counts(engine)
        written = tuples_written(engine) - written_before
        added = {
            t: counts_after[t] - counts_before.get(t, 0)
            for t in counts_after
            if counts_after[t] != counts_before.get(t, 0)
        }
        per_job[name] = {
            "seconds": round(m.seconds, 3),
            "cpu_seconds": round(m.cpu_seconds, 3),
            "seconds_per_brand_ms": round(1000 * m.seconds / n_brands, 3),
            "peak_rss_mb": round(m.peak_rss_mb, 1),
            "rows_added": sum(added.values()),
            "rows_written": written,
            "rows_written_per_s": round(written / m.seconds, 1) if m.seconds else 0.0,
            "tables": added,
            "success": bool(ok),
            "errors": errors[:5],
        }
        print(
            f"    {'direct' if direct else 'runner'} {name:<24} {m.seconds:8.1f}s "
            f"cpu {m.cpu_seconds:7.1f}s rss {m.peak_rss_mb:7.0f}MB rows+{sum(added.values()):>8} "
            f"written {written:>8} {'ok' if ok else 'FAILED ' + str(errors[:2])}",
            flush=True,
        )
    return per_job


def daemon_run(job: str, home: Path, env: dict[str, str], timeout: float = 1800) -> dict[str, Any]:
    """Submit ``job`` to the queued run coordinator and let a real dagster-daemon launch it."""
    import dagster as dg

    with open(home / "daemon.log", "w") as log:
        daemon = subprocess.Popen(
            [str(VENV_BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=str(ROOT),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            time.sleep(5)  # the daemon loads the code location before its first dequeue
            started = time.monotonic()
            out = subprocess.run(
                [
                    str(VENV_BIN / "dagster"),
                    "job",
                    "launch",
                    "-w",
                    str(ROOT / "workspace.yaml"),
                    "-j",
                    job,
                    "--tags",
                    json.dumps({"marba/job": job}),
                ],
                cwd=str(ROOT),
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            submitted = time.monotonic() - started
            if out.returncode != 0:
                return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:]}
            instance = dg.DagsterInstance.get()
            run = None
            while time.monotonic() - started < timeout:
                runs = instance.get_runs(dg.RunsFilter(job_name=job), limit=1)
                run = runs[0] if runs else None
                if run and run.is_finished:
                    break
                time.sleep(0.5)
            seconds = time.monotonic() - started
            stats = instance.get_run_stats(run.run_id) if run else None
            return {
                "status": run.status.value if run else "missing",
                "seconds_submit_to_finish": round(seconds, 3),
                "seconds_to_submit": round(submitted, 3),
                "run_seconds": round((stats.end_time or 0) - (stats.start_time or 0), 3)
                if stats and stats.start_time
                else None,
            }
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def run_size(n: int, args) -> dict[str, Any]:
    import dagster as dg

    from marba_dagster.core.catalog import DEMO_ORDER
    from marba_dagster.definitions import load_definitions
    from marba_dagster.sandbox.server import sandbox_env
    from marba_dagster.settings import job_crons
    from marba_dagster.store import migrate
    from marba_dagster.store.db import dispose_engines, make_engine
    from marba_dagster.store.demo import seed_demo
    from marba_dagster.store.jobs import sync_background_jobs

    jobs = list(args.jobs or DEMO_ORDER)
    work = Path(tempfile.mkdtemp(prefix=f"marba-fullcycle-{n}-"))
    made: list[str] = []
    sandbox = None
    saved_env = dict(os.environ)
    record: dict[str, Any] = {"brands": n}
    try:
        db_name, db_url = create_db("marba_fc")
        made.append(db_name)
        dg_name, dg_url = create_db("marba_fc_dagster")
        made.append(dg_name)
        engine = make_engine(db_url)
        migrate.upgrade(engine)
        with engine.begin() as conn:
            sync_background_jobs(conn, job_crons())
        port = _free_port()
        with measure() as seed_m:
            report = seed_demo(
                engine, n, seed=args.seed, sites_base_url=f"http://127.0.0.1:{port}/sites"
            )
        record["seed_seconds"] = round(seed_m.seconds, 2)
        record["seeded"] = {k: v for k, v in vars(report).items() if isinstance(v, int)}
        # The seeder ANALYZEs what it loaded (planner statistics). --vacuum-after-seed also
        # VACUUMs (visibility map, as autovacuum would in a steady-state database); off by
        # default: the committed report was measured without it.
        with measure() as vac_m:
            if args.vacuum_after_seed:
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(sa.text("VACUUM ANALYZE"))
        record["vacuum_analyze_seconds"] = (
            round(vac_m.seconds, 2) if args.vacuum_after_seed else None
        )
        print(
            f"  seeded {n} brands in {seed_m.seconds:.1f}s"
            + (f" (VACUUM ANALYZE {vac_m.seconds:.1f}s)" if args.vacuum_after_seed else ""),
            flush=True,
        )
        with measure() as sb_m:
            sandbox = Sandbox(db_url, port, work / "sandbox.log")
        record["sandbox_start_seconds"] = round(sb_m.seconds, 2)
        if args.api_latency_ms:
            sandbox.add_latency(args.api_latency_ms)
            record["api_latency_ms"] = args.api_latency_ms
        clone = None
        if n in args.overhead_sizes:
            engine.dispose()
            clone, clone_url = create_db("marba_fc_direct", template=db_name)
            made.append(clone)

        home = dagster_home(work / "dagster_home", stock_storage=args.stock_storage)
        os.environ.update(sandbox_env(sandbox.base_url, llm=False))
        os.environ.update(
            {
                "MARBA_DATABASE_URL": db_url,
                "DAGSTER_HOME": str(home),
                "DAGSTER_PG_URL": dg_url,
                # Every demo competitor site is on the sandbox's one host (as in `marba demo`).
                "MARBA_FETCH_PER_HOST_CONCURRENCY": "8",
                "MARBA_FETCH_PER_HOST_INTERVAL": "0",
            }
        )
        for k in (
            "MARBA_LLM_BASE_URL",
            "MARBA_LLM_API_KEY",
            "MARBA_LLM_MODEL",
            "MARBA_NOTIFY_WEBHOOK_URL",
        ):
            os.environ.pop(k, None)  # the analyzer, no AI latency; no webhook
        definitions = load_definitions()
        instance = dg.DagsterInstance.get()

        req0, cpu0 = sandbox.request_count(), sandbox.cpu_seconds()
        print(f"  cycle through the instance (runner), {len(jobs)} jobs", flush=True)
        with measure() as total:
            per_job = run_cycle(
                jobs,
                engine,
                n,
                instance=instance,
                definitions=definitions,
                direct=False,
                profile_dir=args.profile,
            )
        record["runner"] = {
            "jobs": per_job,
            "total_seconds": round(total.seconds, 3),
            "total_cpu_seconds": round(total.cpu_seconds, 3),
            "seconds_per_brand_ms": round(1000 * total.seconds / n, 3),
            "peak_rss_mb": round(total.peak_rss_mb, 1),
            "rows_added": sum(j["rows_added"] for j in per_job.values()),
            "rows_written": sum(j["rows_written"] for j in per_job.values()),
            "sandbox_requests": sandbox.request_count() - req0,
            "sandbox_cpu_seconds": round(sandbox.cpu_seconds() - cpu0, 2),
            "all_succeeded": all(j["success"] for j in per_job.values()),
        }
        r = record["runner"]
        r["rows_written_per_s"] = round(r["rows_written"] / r["total_seconds"], 1)
        print(
            f"  runner total {total.seconds:.1f}s ({r['seconds_per_brand_ms']:.0f} ms/brand), "
            f"sandbox {r['sandbox_requests']} requests, {r['sandbox_cpu_seconds']}s CPU",
            flush=True,
        )

        if clone:
            dispose_engines()
            engine.dispose()
            engine = make_engine(clone_url)
            os.environ["MARBA_DATABASE_URL"] = clone_url
            print(
                "  the same cycle in-process on an ephemeral instance (clone of the seeded DB)",
                flush=True,
            )
            with measure() as dtotal:
                dper = run_cycle(
                    jobs, engine, n, instance=None, definitions=definitions, direct=True
                )
            record["direct"] = {
                "jobs": dper,
                "total_seconds": round(dtotal.seconds, 3),
                "seconds_per_brand_ms": round(1000 * dtotal.seconds / n, 3),
                "peak_rss_mb": round(dtotal.peak_rss_mb, 1),
                "all_succeeded": all(j["success"] for j in dper.values()),
            }
            os.environ["MARBA_DATABASE_URL"] = db_url

        if n in args.daemon_sizes and "learning_engine" in jobs:
            dispose_engines()
            print(
                "  learning_engine again: runner, then through dagster-daemon (queued run)",
                flush=True,
            )
            with measure() as again:
                rerun = run_job_quiet("learning_engine", instance, definitions)
            d = daemon_run("learning_engine", home, dict(os.environ))
            d["runner_seconds_same_job"] = round(again.seconds, 3)
            d["runner_success"] = rerun
            record["daemon"] = d
            print(f"  daemon: {d}", flush=True)
        return record
    finally:
        if sandbox is not None:
            sandbox.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        try:
            from marba_dagster.store.db import dispose_engines

            dispose_engines()
            engine.dispose()
        except Exception:
            pass
        if not args.keep:
            for name in made:
                drop_db(name)
            shutil.rmtree(work, ignore_errors=True)


def event_store_probe(events: int = 300) -> dict[str, Any]:
    """Cost of storing one materialization event in a PostgreSQL Dagster instance: stock
    dagster-postgres (a new connection per operation: ``NullPool``) against production's
    ``PooledPostgresStorage`` (held connections)."""
    import dagster as dg

    out: dict[str, Any] = {"events": events}
    name, url = create_db("marba_fc_probe")
    home = Path(tempfile.mkdtemp(prefix="marba-fc-probe-"))
    saved = dict(os.environ)
    try:
        os.environ.update({"DAGSTER_PG_URL": url})
        for label, stock in (("new_connection_per_event", True), ("held_connection", False)):
            dagster_home(home / label, stock_storage=stock)
            instance = dg.DagsterInstance.from_config(str(home / label))
            key = dg.AssetKey(["bench_probe", label])
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=key, partition="warm-up")
            )
            t0 = time.perf_counter()
            for i in range(events):
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(
                        asset_key=key, partition=f"brand-{i}", metadata={"rows": i}
                    )
                )
            out[f"{label}_ms"] = round(1000 * (time.perf_counter() - t0) / events, 3)
            instance.dispose()
        print(f"  event store probe: {out}", flush=True)
        return out
    finally:
        os.environ.clear()
        os.environ.update(saved)
        drop_db(name)
        shutil.rmtree(home, ignore_errors=True)


def run_job_quiet(name: str, instance, definitions) -> bool:
    from marba_dagster.runner import run_job

    return run_job(name, instance=instance, definitions=definitions).success


# ------------------------------------------------------------------------- reporting


def render(records: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Benchmark: full daily cycle",
        "",
        f"{meta['at']} · commit {meta.get('commit') or '?'} · {meta['cpus']} CPUs · "
        "PostgreSQL for the MARBA tables and the Dagster instance · sandbox in its own process · "
        "built-in analyzer (no AI endpoint)",
        "",
        "Command: `" + meta["command"] + "`",
        "",
    ]
    lines += [
        "## Time per brand against N (through the instance)",
        "",
        "| brands | total s | ms per brand | without auto_publisher: s | ms per brand "
        "| peak RSS MB | rows written | rows written/s | sandbox requests | all ok |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for rec in records:
        r = rec["runner"]
        pub = r["jobs"].get("auto_publisher", {}).get("seconds", 0.0)
        rest = r["total_seconds"] - pub
        lines.append(
            f"| {rec['brands']:,} | {r['total_seconds']:.1f} | {r['seconds_per_brand_ms']:.1f} | "
            f"{rest:.1f} | {1000 * rest / rec['brands']:.1f} | "
            f"{r['peak_rss_mb']:.0f} | {r['rows_written']:,} | {r['rows_written_per_s']:,.0f} | "
            f"{r['sandbox_requests']:,} | {'yes' if r['all_succeeded'] else 'NO'} |"
        )
    jobs = list(records[0]["runner"]["jobs"]) if records else []
    lines += [
        "",
        "ms per brand, per job:",
        "",
        "| job | " + " | ".join(f"N={r['brands']:,}" for r in records) + " |",
        "|---|" + "---:|" * len(records),
    ]
    for j in jobs:
        lines.append(
            f"| {j} | "
            + " | ".join(
                f"{r['runner']['jobs'][j]['seconds_per_brand_ms']:.1f}"
                if j in r["runner"]["jobs"]
                else "–"
                for r in records
            )
            + " |"
        )
    for c in meta.get("checks", []):
        lines.append("")
        lines.append(
            f"- check `{c['check']}`: {c['value']:g} {c['direction']} {c['limit']:g}: "
            f"{'pass' if c['pass'] else 'FAIL'}"
        )
    for rec in records:
        r = rec["runner"]
        lines += ["", f"## N = {rec['brands']:,}", ""]
        if rec.get("from_run"):
            lines += [f"(measured by the invocation of {rec['from_run']}, same code)", ""]
        lines += [
            f"Seeded in {rec['seed_seconds']} s "
            f"({', '.join(f'{k} {v:,}' for k, v in rec['seeded'].items() if v)}); "
            f"sandbox up in {rec['sandbox_start_seconds']} s"
            + (
                f"; every API response delayed {rec['api_latency_ms']:g} ms"
                if rec.get("api_latency_ms")
                else ""
            )
            + ".",
            "",
            "| job | wall s | CPU s | ms/brand | peak RSS MB | rows added | rows written "
            "| rows written/s | direct s | overhead | ok |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        direct = rec.get("direct", {}).get("jobs", {})
        for j, f in r["jobs"].items():
            d = direct.get(j)
            ds = f"{d['seconds']:.2f}" if d else "–"
            ov = f"{f['seconds'] - d['seconds']:+.2f} s" if d else "–"
            lines.append(
                f"| {j} | {f['seconds']:.2f} | {f['cpu_seconds']:.2f} | "
                f"{f['seconds_per_brand_ms']:.1f} | "
                f"{f['peak_rss_mb']:.0f} | {f['rows_added']:,} | {f['rows_written']:,} | "
                f"{f['rows_written_per_s']:,.0f} | {ds} | {ov} | "
                f"{'yes' if f['success'] else 'NO ' + ', '.join(f['errors'])} |"
            )
        dt = rec.get("direct", {}).get("total_seconds")
        ov_total = f"{r['total_seconds'] - dt:+.1f} s" if dt else "–"
        lines.append(
            f"| **total** | **{r['total_seconds']:.1f}** | {r['total_cpu_seconds']:.1f} | "
            f"{r['seconds_per_brand_ms']:.1f} | {r['peak_rss_mb']:.0f} | {r['rows_added']:,} | "
            f"{r['rows_written']:,} | {r['rows_written_per_s']:,.0f} | {dt if dt else '–'} | "
            f"{ov_total} | {'yes' if r['all_succeeded'] else 'NO'} |"
        )
        lines.append("")
        lines.append(
            f"Sandbox (own process): {r['sandbox_requests']:,} requests, "
            f"{r['sandbox_cpu_seconds']} s CPU."
        )
        if "daemon" in rec:
            d = rec["daemon"]
            lines.append("")
            lines.append(
                f"Through `dagster-daemon` (queued run, `DefaultRunLauncher` subprocess): "
                f"learning_engine "
                f"{d.get('status')} in {d.get('seconds_submit_to_finish')} s from submit to finish "
                f"(run itself {d.get('run_seconds')} s; "
                f"`dagster job launch` {d.get('seconds_to_submit')} s) "
                f"against {d.get('runner_seconds_same_job')} s through the runner."
            )
    fixes = meta.get("fixes")
    if fixes:
        lines += [
            "",
            "## Fixes the curve exposed (each before / after pair: one machine, one command)",
            "",
            "| fix | measured | before | after |",
            "|---|---|---:|---:|",
        ]
        for f in fixes:
            lines.append(f"| {f['fix']} | {f['measure']} | {f['before']} | {f['after']} |")
    p = meta.get("event_store_probe")
    if p:
        lines += [
            "",
            "## Orchestration: storing one materialization event (PostgreSQL instance)",
            "",
            f"{p['events']} runless materializations: "
            f"{p['new_connection_per_event_ms']} ms each with "
            f"stock dagster-postgres (a new connection per operation), "
            f"{p['held_connection_ms']} ms each with `PooledPostgresStorage` "
            "(held connections, as in `dagster.yaml`).",
        ]
    for n in meta.get("notes", []):
        lines += ["", f"- {n}"]
    return "\n".join(lines) + "\n"


ANNOTATIONS = Path(__file__).resolve().parent / "full_cycle_annotations.json"


def _annotations(path: Path | None) -> dict[str, Any]:
    """Before/after figures of the fixes and notes, kept beside the code (measured by the
    commands each entry names), so the report can be rebuilt from the recorded run."""
    if path is None or not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {"fixes": data.get("fixes", []), "notes": data.get("notes", [])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brands", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--jobs", nargs="*", help="a subset of the jobs (default: all, DEMO_ORDER)")
    ap.add_argument(
        "--overhead-sizes",
        type=int,
        nargs="*",
        default=[100, 300],
        help="sizes at which the cycle is also run in-process on an ephemeral instance",
    )
    ap.add_argument(
        "--daemon-sizes",
        type=int,
        nargs="*",
        default=[100],
        help="sizes at which learning_engine also runs through dagster-daemon",
    )
    ap.add_argument(
        "--api-latency-ms",
        type=float,
        default=0.0,
        help="latency added to every sandbox API response (models a real API round trip)",
    )
    ap.add_argument(
        "--brand-concurrency",
        type=int,
        default=None,
        help="brands whose API calls overlap in the collectors (default: the code's)",
    )
    ap.add_argument(
        "--vacuum-after-seed",
        action="store_true",
        help="VACUUM ANALYZE the seeded database before the jobs run",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run each job under cProfile (slower; for finding hot spots, not for the report)",
    )
    ap.add_argument(
        "--stock-storage",
        action="store_true",
        help="the Dagster instance on stock dagster-postgres storage (a connection per "
        "operation) instead of production's PooledPostgresStorage",
    )
    ap.add_argument("--keep", action="store_true", help="keep the databases and work dirs")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR)
    ap.add_argument(
        "--no-probe-events",
        dest="probe_events",
        action="store_false",
        help="skip the per-event cost probe of the PostgreSQL instance",
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="report these sizes together with the other sizes of the previous run",
    )
    ap.add_argument("--tag", default="", help="label stored with the run (e.g. 'before fix')")
    ap.add_argument(
        "--annotations",
        type=Path,
        default=ANNOTATIONS,
        help="JSON with 'fixes' (before/after rows) and 'notes' for the report",
    )
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the Markdown report from the last recorded run and the annotations",
    )
    ap.add_argument(
        "--shards",
        type=int,
        default=None,
        help="run the cycle through dagster-daemon instead, each job queued as its schedule "
        "would queue it in this many brand shards (bench/sharded_cycle.py; report "
        "sharded_cycle.md)",
    )
    ap.add_argument(
        "--celery-workers",
        type=int,
        nargs="*",
        default=[],
        help="with --shards: then run --celery-job with its steps on this many Celery workers, "
        "for each number given (e.g. 1 2)",
    )
    ap.add_argument("--celery-job", default="analytics_collector")
    ap.add_argument(
        "--with-automation",
        action="store_true",
        help="with --shards: leave the automation-condition sensors running (by default they "
        "are stopped so the scheduled cycle is timed alone; their extra runs are counted "
        "either way)",
    )
    args = ap.parse_args(argv)
    if args.shards:
        from bench import sharded_cycle

        return sharded_cycle.main(args, argv)
    if args.render_only:
        history = json.loads((args.results / f"{NAME}.json").read_text())
        meta = dict(history[-1], **_annotations(args.annotations))
        md = render(meta["records"], meta)
        (args.results / f"{NAME}.md").write_text(md)
        print(md)
        return 0
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="marba-fc-home-"))

    path = args.results / f"{NAME}.json"
    history = json.loads(path.read_text()) if path.exists() else []
    if args.brand_concurrency is not None:
        import marba_dagster.services.prefetch as prefetch

        prefetch.BRAND_CONCURRENCY = args.brand_concurrency  # 1 = brands one after another
    probe = event_store_probe() if args.probe_events else None
    records = []
    for n in args.brands:
        print(f"N = {n}", flush=True)
        records.append(run_size(n, args))
    if args.merge and history:
        # Sizes measured by an earlier invocation (same code, same machine) join the curve.
        mine = {r["brands"] for r in records}
        earlier = [
            dict(r, from_run=history[-1].get("at"))
            for r in history[-1].get("records", [])
            if r["brands"] not in mine
        ]
        records = sorted(earlier + records, key=lambda r: r["brands"])
    sc = Scenario(NAME, size={"brands": [r["brands"] for r in records]})
    smallest, largest = records[0], records[-1]
    for rec in records:
        sc.figure(f"n{rec['brands']}_total_seconds", rec["runner"]["total_seconds"])
        sc.figure(f"n{rec['brands']}_ms_per_brand", rec["runner"]["seconds_per_brand_ms"])
    if len(records) > 1:
        sc.ratio(
            "ms_per_brand_largest_vs_smallest",
            largest["runner"]["seconds_per_brand_ms"],
            smallest["runner"]["seconds_per_brand_ms"],
            limit=1.25,
        )
    sc.limit(
        "all_jobs_succeeded",
        float(all(r["runner"]["all_succeeded"] for r in records)),
        limit=1.0,
        higher_is_better=True,
    )
    meta = sc.record()
    meta.update(_annotations(args.annotations))
    meta.update(
        {
            "cpus": os.cpu_count(),
            "command": "python -m bench.full_cycle " + " ".join(argv or sys.argv[1:]),
            "tag": args.tag,
            "records": records,
            "event_store_probe": probe,
            "api_latency_ms": args.api_latency_ms,
            "brand_concurrency": args.brand_concurrency,
        }
    )
    args.results.mkdir(parents=True, exist_ok=True)
    history.append(meta)
    path.write_text(json.dumps(history, indent=2, default=str) + "\n")
    md = render(records, meta)
    (args.results / f"{NAME}.md").write_text(md)
    print(md)
    return 0 if sc.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
