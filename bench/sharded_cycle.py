"""The daily cycle through ``dagster-daemon`` in brand shards, and steps on 1 vs 2 Celery workers.

    python -m bench.full_cycle --shards 4 --brands 1000 [--celery-workers 1 2]

For each N: fresh PostgreSQL databases for the MARBA tables and the Dagster instance, N demo
brands seeded, the sandbox in its own process (as ``bench.full_cycle``), and a
``DAGSTER_HOME`` with the repository's ``dagster.yaml`` (``PooledPostgresStorage``, the run
queue's limits: 4 runs per job, 1 per shard, 8 in all; ``MarbaInstance``; the default run
launcher). ``MARBA_BRANDS_PER_RUN`` is ``ceil(N / shards)``. A real ``dagster-daemon`` runs,
and each job in production order is queued as its schedule would queue it
(``BackgroundJobScheduler.trigger_job_runs``: one run per shard); the next job is queued when
every shard run of the previous one has finished. Per job: wall seconds from queueing to the
last shard's end, ms per brand, the shards' own run times, the peak RSS of any one process of
its runs (run processes and their step processes, read from ``/proc``), and the execution's
``job_executions`` row (status, brands).

``--celery-workers 1 2``: afterwards, on the same data, ``MARBA_EXECUTOR=celery`` and W
Celery workers (``dagster-celery worker start``, one step at a time each) for each W; one job
(``--celery-job``, default analytics_collector: it redoes the same day's work each time) is
queued in shards and timed the same way. The check is the throughput ratio of 2 workers to 1.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import Scenario

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
NAME = "sharded_cycle"
BROKER = "redis://127.0.0.1:6379/12"
# Sensors that launch enrichment and learning runs when the sections' inputs are
# materialized: each upstream job of the cycle makes them request every brand again.
AUTOMATION_SENSORS = ("enrichment_automation_sensor", "learning_automation_sensor")


class ProcessPeaks:
    """Peak RSS of every process started with ``DAGSTER_HOME=<home>`` (run and step
    processes; the daemon and its code server are left out), sampled every second.

    A process's environment is read once per command line (a forked process that then
    executes another program is classified again); so the sampling costs little of the two
    cores the benchmark measures."""

    def __init__(self, home: Path) -> None:
        self.marker = f"DAGSTER_HOME={home}".encode()
        self.peaks: dict[int, float] = {}
        self._ours: dict[int, tuple[bytes, bool]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _is_ours(self, pid: int) -> bool:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        known = self._ours.get(pid)
        if known is not None and known[0] == cmd:
            return known[1]
        ours = False
        if not (b"dagster-daemon" in cmd or b"grpc" in cmd or b"code-server" in cmd):
            try:
                ours = self.marker in Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                ours = False
        self._ours[pid] = (cmd, ours)
        return ours

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            pids = {int(e) for e in os.listdir("/proc") if e.isdigit()}
            for gone in set(self._ours) - pids:
                del self._ours[gone]
            for pid in pids:
                if not self._is_ours(pid):
                    continue
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    # VmHWM: the process's own peak, so a short spike between samples counts.
                    if line.startswith("VmHWM:"):
                        rss = int(line.split()[1]) / 1024
                        self.peaks[pid] = max(self.peaks.get(pid, 0.0), rss)

    def window(self) -> dict[int, float]:
        """Peaks seen so far, then forgotten (one job's processes at a time)."""
        seen, self.peaks = self.peaks, {}
        return seen

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def background(args: list[str], env: dict[str, str], log: Path, ready: str | None = None):
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, cwd=str(ROOT), env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while ready and ready not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not start; see {log}")
                time.sleep(0.5)
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def stop_instigators(*, with_automation: bool) -> None:
    """Stop the seven jobs' schedules (and, unless ``with_automation``, the automation
    sensors) in the instance of ``DAGSTER_HOME`` before the daemon starts.

    The benchmark queues each job as its schedule would, one after another: a job's own tick
    (the publisher's every five minutes, the hourly collectors) would otherwise run beside
    whichever job is being measured."""
    from marba_dagster.core.catalog import DEMO_ORDER

    stop = [("schedule", f"{job}_schedule") for job in DEMO_ORDER]
    if not with_automation:
        stop += [("sensor", sensor) for sensor in AUTOMATION_SENSORS]
    for kind, name in stop:
        subprocess.run(
            [str(VENV_BIN / "dagster"), kind, "stop", name, "-w", str(ROOT / "workspace.yaml")],
            cwd=str(ROOT), env=dict(os.environ), check=True, capture_output=True,
        )  # fmt: skip


def finished_execution(sched, job: str, execution_id: str, wait: float = 120) -> dict[str, Any]:
    """The execution's ``job_executions`` row once its last shard is recorded (each run's
    process records it just after the run ends)."""
    deadline = time.monotonic() + wait
    while True:
        row = next(
            (h for h in sched.get_execution_history(job, limit=5) if h["run_id"] == execution_id),
            {},
        )
        if row.get("status") not in (None, "queued", "running") or time.monotonic() > deadline:
            return row
        time.sleep(0.5)


def run_job_in_shards(sched, instance, job: str, n: int, peaks: ProcessPeaks) -> dict[str, Any]:
    """Queue ``job`` as its schedule would and wait for every shard run to end."""
    import dagster as dg

    peaks.window()
    load_before = os.getloadavg()[0]
    wall_started = time.time()
    started = time.monotonic()
    execution_id, run_ids = sched.trigger_job_runs(job)
    while True:
        runs = [instance.get_run_by_id(r) for r in run_ids]
        if all(r.is_finished for r in runs):
            break
        if time.monotonic() - started > 3600:
            raise TimeoutError(f"{job}: shard runs still going after an hour")
        time.sleep(0.5)
    seconds = time.monotonic() - started
    # Runs that something else launched while this job ran (sensors: automation, refreshes).
    others = [
        r
        for r in instance.get_run_records(
            dg.RunsFilter(created_after=datetime.fromtimestamp(wall_started, UTC))
        )
        if r.dagster_run.run_id not in run_ids
    ]
    shard_seconds = []
    for r in run_ids:
        record = instance.get_run_record_by_id(r)
        if record and record.start_time and record.end_time:
            shard_seconds.append(round(record.end_time - record.start_time, 2))
    row = finished_execution(sched, job, execution_id)
    processes = peaks.window()
    return {
        "seconds": round(seconds, 2),
        "ms_per_brand": round(1000 * seconds / n, 1),
        "shards": len(run_ids),
        "shard_run_seconds": shard_seconds,
        "statuses": sorted({r.status.value for r in runs}),
        "execution_status": row.get("status"),
        "brands_processed": row.get("brands_processed"),
        "peak_process_rss_mb": round(max(processes.values()), 0) if processes else None,
        "processes": len(processes),
        "success": all(r.status.value == "SUCCESS" for r in runs),
        "other_runs": len(others),
        "other_run_jobs": sorted({r.dagster_run.job_name for r in others}),
        # The machine's 1-minute load average as the job was queued and when it ended: this
        # benchmark's own processes plus anything else running (a shared machine shows it).
        "load_before": round(load_before, 1),
        "load_after": round(os.getloadavg()[0], 1),
    }


def run_size(n: int, args) -> dict[str, Any]:
    import dagster as dg

    from bench.full_cycle import Sandbox, _free_port, create_db, drop_db
    from marba_dagster.api import BackgroundJobScheduler
    from marba_dagster.core.catalog import DEMO_ORDER
    from marba_dagster.sandbox.server import sandbox_env
    from marba_dagster.settings import job_crons
    from marba_dagster.store import migrate
    from marba_dagster.store.db import dispose_engines, make_engine
    from marba_dagster.store.demo import seed_demo
    from marba_dagster.store.jobs import sync_background_jobs

    jobs = list(args.jobs or DEMO_ORDER)
    per_run = math.ceil(n / args.shards)
    work = Path(tempfile.mkdtemp(prefix=f"marba-sharded-{n}-"))
    made: list[str] = []
    sandbox = None
    saved_env = dict(os.environ)
    record: dict[str, Any] = {"brands": n, "shards": args.shards, "brands_per_run": per_run}
    try:
        db_name, db_url = create_db("marba_sc")
        made.append(db_name)
        dg_name, dg_url = create_db("marba_sc_dagster")
        made.append(dg_name)
        engine = make_engine(db_url)
        migrate.upgrade(engine)
        with engine.begin() as conn:
            sync_background_jobs(conn, job_crons())
        port = _free_port()
        seed_demo(engine, n, seed=args.seed, sites_base_url=f"http://127.0.0.1:{port}/sites")
        sandbox = Sandbox(db_url, port, work / "sandbox.log")
        home = work / "dagster_home"
        home.mkdir()
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
        os.environ.update(sandbox_env(sandbox.base_url, llm=False))
        os.environ.update(
            {
                "MARBA_DATABASE_URL": db_url,
                "DAGSTER_HOME": str(home),
                "DAGSTER_PG_URL": dg_url,
                "MARBA_BRANDS_PER_RUN": str(per_run),
                "MARBA_FETCH_PER_HOST_CONCURRENCY": "8",
                "MARBA_FETCH_PER_HOST_INTERVAL": "0",
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        for k in ("MARBA_LLM_BASE_URL", "MARBA_LLM_API_KEY", "MARBA_LLM_MODEL",
                  "MARBA_NOTIFY_WEBHOOK_URL", "MARBA_EXECUTOR"):  # fmt: skip
            os.environ.pop(k, None)
        print(f"  seeded {n} brands; {args.shards} shards of <= {per_run}", flush=True)
        stop_instigators(with_automation=args.with_automation)
        record["automation_sensors"] = "running" if args.with_automation else "stopped"
        peaks = ProcessPeaks(home)
        daemon_args = [str(VENV_BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")]
        with (
            background(daemon_args, dict(os.environ), work / "daemon.log"),
            dg.DagsterInstance.get() as instance,
        ):
            time.sleep(5)  # the daemon loads the code location before its first dequeue
            sched = BackgroundJobScheduler(engine=engine, instance=instance)
            try:
                per_job = {}
                started = time.monotonic()
                for job in jobs:
                    per_job[job] = run_job_in_shards(sched, instance, job, n, peaks)
                    print(f"    {job:<24} {per_job[job]}", flush=True)
                total = time.monotonic() - started
            finally:
                sched.close()
        record["cycle"] = {
            "jobs": per_job,
            "total_seconds": round(total, 2),
            "ms_per_brand": round(1000 * total / n, 1),
            "all_succeeded": all(j["success"] for j in per_job.values()),
        }
        if args.celery_workers:
            record["celery"] = celery_scaling(n, args, work, engine, peaks)
        peaks.stop()
        return record
    finally:
        if sandbox is not None:
            sandbox.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        dispose_engines()
        if not args.keep:
            for name in made:
                drop_db(name)
            shutil.rmtree(work, ignore_errors=True)


def celery_scaling(n: int, args, work: Path, engine, peaks: ProcessPeaks) -> dict[str, Any]:
    """The same job in shards with its steps on W Celery workers, for each W."""
    import dagster as dg
    import redis

    from marba_dagster.api import BackgroundJobScheduler

    out: dict[str, Any] = {"job": args.celery_job}
    env = dict(
        os.environ,
        MARBA_EXECUTOR="celery",
        MARBA_CELERY_BROKER_URL=BROKER,
        MARBA_CELERY_BACKEND_URL=BROKER,
    )
    os.environ.update(env)
    for workers in args.celery_workers:
        redis.Redis.from_url(BROKER).flushdb()
        with ExitStack() as stack:
            for i in range(workers):
                name = f"marba-bench-{i + 1}"
                stack.enter_context(
                    background(
                        [
                            str(VENV_BIN / "dagster-celery"),
                            "worker",
                            "start",
                            "-A",
                            "dagster_celery.app",
                            "-y",
                            str(ROOT / "celery_worker.yaml"),
                            "-n",
                            name,
                            "--",
                            "--pool=prefork",
                            "--concurrency=1",
                        ],
                        env,
                        work / f"{name}.log",
                        ready=f"{name}@",
                    )  # fmt: skip
                )
            stack.enter_context(
                background(
                    [str(VENV_BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
                    env,
                    work / f"daemon-celery-{workers}.log",
                )
            )
            instance = stack.enter_context(dg.DagsterInstance.get())
            time.sleep(5)
            sched = BackgroundJobScheduler(engine=engine, instance=instance)
            try:
                result = run_job_in_shards(sched, instance, args.celery_job, n, peaks)
            finally:
                sched.close()
        result["brands_per_second"] = round(n / result["seconds"], 2)
        result["workers"] = workers
        out.setdefault("runs", []).append(result)
        print(f"    celery, {workers} worker(s): {result}", flush=True)
    redis.Redis.from_url(BROKER).flushdb()
    return out


NOTES = Path(__file__).resolve().parent / f"{NAME}_notes.md"


def render_all(history: list[dict[str, Any]]) -> str:
    """The report: ``bench/sharded_cycle_notes.md`` (what the figures mean, written after a
    run), then every recorded run, newest first."""
    lines = ["# Benchmark: the daily cycle in brand shards through dagster-daemon", ""]
    if NOTES.exists():
        lines += [NOTES.read_text().strip(), ""]
    for meta in reversed(history):
        lines += [render(meta), ""]
    return "\n".join(lines).rstrip() + "\n"


def render(meta: dict[str, Any]) -> str:
    lines = [
        f"## Run of {meta['at']}",
        "",
        f"{meta['at']} · commit {meta.get('commit') or '?'} · {meta['machine']['cpus']} CPUs · "
        "PostgreSQL for the MARBA tables and the Dagster instance (the repository's "
        "dagster.yaml) · sandbox in its own process · built-in analyzer",
        "",
        "Command: `" + meta["command"] + "`",
        "",
    ]
    for rec in meta["records"]:
        cycle = rec["cycle"]
        pub = cycle["jobs"].get("auto_publisher", {}).get("seconds", 0.0)
        rest = cycle["total_seconds"] - pub
        lines += [
            f"### N = {rec['brands']:,}: {rec['shards']} shards of at most "
            f"{rec['brands_per_run']} brands",
            "",
            f"Whole cycle: **{cycle['total_seconds']:.1f} s** ({cycle['ms_per_brand']:.1f} ms "
            f"per brand); without auto_publisher {rest:.1f} s "
            f"({1000 * rest / rec['brands']:.1f} ms per brand). All runs succeeded: "
            f"{'yes' if cycle['all_succeeded'] else 'NO'}.",
            "",
            "| job | wall s (queued → last shard done) | ms per brand | shard runs (s) "
            "| peak RSS of one process MB | processes | execution | brands | load avg "
            "| other runs meanwhile |",
            "|---|---:|---:|---|---:|---:|---|---:|---|---:|",
        ]
        for job, j in cycle["jobs"].items():
            lines.append(
                f"| {job} | {j['seconds']:.1f} | {j['ms_per_brand']:.1f} | "
                f"{', '.join(f'{s:.1f}' for s in j['shard_run_seconds'])} | "
                f"{j['peak_process_rss_mb'] or '–'} | {j['processes']} | "
                f"{j['execution_status']} | {j['brands_processed']} | "
                f"{j['load_before']} → {j['load_after']} | {j.get('other_runs', '–')} |"
            )
        if "automation_sensors" in rec:
            lines += [
                "",
                f"Automation-condition sensors ({', '.join(AUTOMATION_SENSORS)}): "
                f"{rec['automation_sensors']}; the seven jobs' schedules stopped (the benchmark "
                "queues each job as its schedule would); the other sensors and schedules as "
                "deployed.",
            ]
        celery = rec.get("celery")
        if celery:
            lines += [
                "",
                f"#### Steps on Celery workers: {celery['job']}, {rec['shards']} shards",
                "",
                "| workers | wall s | brands/s | shard runs (s) | all ok | load avg |",
                "|---:|---:|---:|---|---|---|",
            ]
            for r in celery.get("runs", []):
                lines.append(
                    f"| {r['workers']} | {r['seconds']:.1f} | {r['brands_per_second']:.2f} | "
                    f"{', '.join(f'{s:.1f}' for s in r['shard_run_seconds'])} | "
                    f"{'yes' if r['success'] else 'NO'} | {r['load_before']} → {r['load_after']} |"
                )
        lines.append("")
    if meta.get("checks"):
        lines += ["| check | value | limit | result |", "|---|---|---|---|"]
        for c in meta["checks"]:
            verdict = "pass" if c["pass"] else "FAIL"
            lines.append(
                f"| {c['check']} | {c['value']:g} | {c['direction']} {c['limit']:g} | {verdict} |"
            )
    for note in meta.get("notes", []):
        lines.append(f"\n- {note}")
    return "\n".join(lines) + "\n"


def main(args, argv: list[str] | None) -> int:
    from bench.harness import RESULTS_DIR

    if args.render_only:
        results = args.results or RESULTS_DIR
        history = json.loads((results / f"{NAME}.json").read_text())
        (results / f"{NAME}.md").write_text(render_all(history))
        return 0
    records = []
    for n in args.brands:
        print(f"N = {n} in {args.shards} shards", flush=True)
        records.append(run_size(n, args))
    sc = Scenario(NAME, size={"brands": [r["brands"] for r in records], "shards": args.shards})
    for rec in records:
        sc.figure(f"n{rec['brands']}_total_seconds", rec["cycle"]["total_seconds"])
        by_workers: dict[int, list[float]] = {}
        for run in (rec.get("celery") or {}).get("runs", []):
            by_workers.setdefault(run["workers"], []).append(run["brands_per_second"])
        if 1 in by_workers and 2 in by_workers:
            # Medians of the repetitions (``--celery-workers 1 2 2 1`` alternates them, so
            # a change in the machine's other load weighs on both sides).
            sc.ratio(
                f"n{rec['brands']}_celery_2_vs_1_workers_throughput",
                statistics.median(by_workers[2]),
                statistics.median(by_workers[1]),
                limit=1.0,
                higher_is_better=True,
            )
    sc.limit(
        "all_runs_succeeded",
        float(all(r["cycle"]["all_succeeded"] for r in records)),
        limit=1.0,
        higher_is_better=True,
    )
    meta = sc.record()
    meta["command"] = "python -m bench.full_cycle " + " ".join(argv or sys.argv[1:])
    meta["records"] = records
    results = args.results or RESULTS_DIR
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{NAME}.json"
    history = json.loads(path.read_text()) if path.exists() else []
    history.append(meta)
    path.write_text(json.dumps(history, indent=2, default=str) + "\n")
    (results / f"{NAME}.md").write_text(render_all(history))
    print(render(meta))
    return 0 if sc.passed else 1
