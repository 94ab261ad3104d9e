"""``MarbaRunLauncher``: Dagster's default run launcher, with run-worker health checks.

Dagster's ``DefaultRunLauncher`` starts each run as a subprocess of the code server but
cannot tell run monitoring whether that process is still alive, so a run worker killed
with SIGKILL leaves its run STARTED until the maximum runtime (two hours), holding a slot
of the run queue. This launcher answers from the process tag every MARBA run carries
(``workers``): run monitoring then marks such a run failed within one poll interval, and
``run_retries`` re-executes it when the operator enabled that. The same check covers runs
started in-process by ``marba run`` or ``dagster job execute`` on this host.
"""

from __future__ import annotations

from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

from marba_dagster.instance.workers import dead_worker_message, worker_of


class MarbaRunLauncher(DefaultRunLauncher):
    """Launches runs like ``DefaultRunLauncher``; reports dead run workers to run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        message = dead_worker_message(run)
        if message is not None:
            return CheckRunHealthResult(WorkerStatus.FAILED, message)
        # Run monitoring fails a run on any answer but RUNNING, so a run whose process is not
        # known to be gone (not tagged yet, or on another host) counts as running; its
        # maximum runtime still bounds it.
        worker = worker_of(run)
        where = "on another host" if worker is not None and worker.alive() is None else "alive"
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker {where}")
