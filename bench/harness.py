"""Benchmark harness: a scenario measures its figures and its limit in the same run.

A scenario is a data size, the figures measured on it (wall seconds, peak memory, rates)
and a *baseline measured in the same run* (the time to read the same rows, a plain
concurrent HTTP loop, ...). The verdict is a ratio against that baseline, never an absolute
time, so a slow or noisy machine changes both sides alike. Results are appended to
``bench/results/<scenario>.json`` and rendered to ``bench/results/<scenario>.md``.

Usage in a scenario script::

    from bench.harness import Scenario, measure

    sc = Scenario("learning_scale", size={"brands": 100})
    with measure() as base:
        read_rows()
    with measure() as work:
        run_learning()
    sc.figure("read_seconds", base.seconds)
    sc.figure("learning_seconds", work.seconds)
    sc.figure("peak_rss_mb", work.peak_rss_mb)
    sc.ratio("learning_vs_read", work.seconds, base.seconds, limit=3.0)
    sc.limit("peak_rss_mb", work.peak_rss_mb, limit=2048)
    sc.save()
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _rss_mb() -> float:
    """Current resident set size of this process, in MiB (Linux /proc)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


@dataclass
class Measurement:
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    start_rss_mb: float = 0.0

    @property
    def added_rss_mb(self) -> float:
        return max(0.0, self.peak_rss_mb - self.start_rss_mb)


@contextmanager
def measure(sample_interval: float = 0.02):
    """Wall and CPU time of the block, and the peak RSS of this process during it.

    Peak RSS is sampled by a thread (ru_maxrss only ever grows, so it cannot isolate a
    block); children's peak comes from ``resource.RUSAGE_CHILDREN``.
    """
    m = Measurement(start_rss_mb=_rss_mb())
    peak = [m.start_rss_mb]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(sample_interval):
            peak[0] = max(peak[0], _rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield m
    finally:
        m.seconds = time.perf_counter() - t0
        m.cpu_seconds = time.process_time() - c0
        stop.set()
        sampler.join()
        m.peak_rss_mb = max(peak[0], _rss_mb())


def children_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _git_rev() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except Exception:
        return None


@dataclass
class Scenario:
    name: str
    size: dict[str, Any]
    figures: dict[str, float] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, key: str, value: float) -> float:
        self.figures[key] = round(float(value), 6)
        return value

    def ratio(
        self, key: str, value: float, baseline: float, *, limit: float, higher_is_better=False
    ):
        """Record value/baseline and whether it is within ``limit`` (both from this run)."""
        ratio = value / baseline if baseline else float("inf")
        ok = ratio >= limit if higher_is_better else ratio <= limit
        self.checks.append(
            {
                "check": key,
                "value": round(ratio, 4),
                "limit": limit,
                "direction": ">=" if higher_is_better else "<=",
                "pass": bool(ok),
            }
        )
        self.figures[key] = round(ratio, 4)
        return ratio

    def limit(self, key: str, value: float, *, limit: float, higher_is_better=False):
        ok = value >= limit if higher_is_better else value <= limit
        self.checks.append(
            {
                "check": key,
                "value": round(float(value), 4),
                "limit": limit,
                "direction": ">=" if higher_is_better else "<=",
                "pass": bool(ok),
            }
        )
        return ok

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def passed(self) -> bool:
        return all(c["pass"] for c in self.checks)

    def record(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": _git_rev(),
            "machine": {
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
            },
            "size": self.size,
            "figures": self.figures,
            "checks": self.checks,
            "passed": self.passed,
            "notes": self.notes,
        }

    def save(self, results_dir: Path = RESULTS_DIR) -> Path:
        """Append this run to ``<name>.json`` and rewrite ``<name>.md``; print the table."""
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"{self.name}.json"
        history = json.loads(path.read_text()) if path.exists() else []
        history.append(self.record())
        path.write_text(json.dumps(history, indent=2) + "\n")
        md = render_markdown(self.name, history)
        (results_dir / f"{self.name}.md").write_text(md)
        print(render_markdown(self.name, [self.record()]))
        return path


def render_markdown(name: str, history: list[dict[str, Any]]) -> str:
    """The report: the title, ``bench/<name>_notes.md`` if there is one (what the figures
    mean, written by hand after a run), then the last ten runs, newest first."""
    lines = [f"# Benchmark: {name}", ""]
    notes = Path(__file__).resolve().parent / f"{name}_notes.md"
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    for rec in reversed(history[-10:]):
        size = ", ".join(f"{k}={v}" for k, v in rec["size"].items())
        lines.append(f"## {rec['at']} ({size}; commit {rec.get('commit') or '?'})")
        lines.append("")
        lines.append("| figure | value |")
        lines.append("|---|---|")
        for k, v in rec["figures"].items():
            lines.append(f"| {k} | {v:g} |" if isinstance(v, (int, float)) else f"| {k} | {v} |")
        if rec["checks"]:
            lines.append("")
            lines.append("| check | value | limit | result |")
            lines.append("|---|---|---|---|")
            for c in rec["checks"]:
                verdict = "pass" if c["pass"] else "FAIL"
                lines.append(
                    f"| {c['check']} | {c['value']:g} | "
                    f"{c['direction']} {c['limit']:g} | {verdict} |"
                )
        for n in rec.get("notes", []):
            lines.append(f"\n- {n}")
        lines.append("")
    return "\n".join(lines)
