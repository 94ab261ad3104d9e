"""Which process executes a run, and whether it is still alive.

Every run is tagged, when it starts, with the process that executes it (host, pid and the
process's start time, so a recycled pid is not mistaken for the run's). A run whose process
is gone but whose status still says it is going (killed with SIGKILL, out of memory, the
machine rebooted) is detected from that tag: by Dagster's run monitoring through
``MarbaRunLauncher.check_run_worker_health``, and by the ``marba`` command before it runs or
reports a job, so a dead run never holds a slot of the run queue.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from marba_dagster.core.runs import WORKER_TAG

_LIVE_STATUSES = (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), or ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):  # a zombie or dead process is not running a run
        return None
    return fields[19]


@dataclass(frozen=True)
class Worker:
    host: str
    pid: int
    started: str  # start ticks; "" where /proc is not available

    def tag(self) -> str:
        return f"{self.host}:{self.pid}:{self.started}"

    @classmethod
    def parse(cls, value: str | None) -> Worker | None:
        if not value:
            return None
        host, _, rest = value.rpartition(":")
        host, _, pid = host.rpartition(":")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), rest)

    @classmethod
    def current(cls) -> Worker:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _start_ticks(pid) or "")

    def alive(self) -> bool | None:
        """True or False for a process on this host; ``None`` for another host's (unknown)."""
        if self.host != socket.gethostname():
            return None
        if Path("/proc").is_dir():
            ticks = _start_ticks(self.pid)
            return ticks is not None and (not self.started or ticks == self.started)
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def worker_of(run: dg.DagsterRun) -> Worker | None:
    return Worker.parse(run.tags.get(WORKER_TAG))


def dead_worker_message(run: dg.DagsterRun) -> str | None:
    """Why ``run`` cannot be going any more, or ``None`` when it may be (or is unknown)."""
    worker = worker_of(run)
    if worker is None or run.status not in _LIVE_STATUSES or worker.alive() is not False:
        return None
    return (
        f"the process running this run (pid {worker.pid} on {worker.host}) is gone: "
        "it was killed or crashed before the run could finish"
    )


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed (or canceled, if it was being canceled) every started run of this host
    whose process is gone;
    returns their run ids. Safe to call from any process, any number of times."""
    failed = []
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=list(_LIVE_STATUSES)), limit=500)
    for run in runs:
        message = dead_worker_message(run)
        if message is None:
            continue
        current = instance.get_run_by_id(run.run_id)  # another process may have got there first
        if current is None or current.status not in _LIVE_STATUSES:
            continue
        if current.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(current, message)
        else:
            instance.report_run_failed(current, message)
        failed.append(run.run_id)
    return failed
