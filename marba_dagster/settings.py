"""Every setting MARBA reads from the environment, declared once.

A ``Setting`` names its variable, says what it holds, gives its default and whether it is a
secret, and parses its text into a value. Everything that reads the environment goes
through here: the Dagster resources bind a set variable with ``dg.EnvVar`` (the UI then
shows where a value came from) and otherwise use the declared default; run-time code calls
``value()``. Nothing is read at import time. A value that cannot be parsed raises
``SettingError`` naming the variable and the value (``<secret>`` for a secret), never a
traceback from deep inside a job. The README's configuration table lists exactly these
variables (a test keeps the two equal).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from marba_dagster.core.catalog import JOBS, JobSpec, validate_cron
from marba_dagster.core.durations import parse_duration
from marba_dagster.core.publishing import (
    DEFAULT_ACCOUNT_LIMITS,
    DEFAULT_APP_LIMITS,
    parse_limits,
    parse_max_lateness,
)


class SettingError(ValueError):
    """A setting whose text cannot be used: one line naming the variable and the value."""

    def __init__(self, name: str, shown: str, reason: str) -> None:
        self.name = name
        self.shown = shown
        self.reason = " ".join(str(reason).split())
        super().__init__(f"invalid setting {name}={shown}: {self.reason}"[:1000])


@dataclass(frozen=True)
class Setting:
    name: str
    doc: str
    default: str | None = None
    parse: Callable[[str], Any] = str
    secret: bool = False

    def raw(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The variable's text when it is set to something other than blanks."""
        text = (os.environ if environ is None else environ).get(self.name)
        return text.strip() if text and text.strip() else None

    def is_set(self, environ: Mapping[str, str] | None = None) -> bool:
        return self.raw(environ) is not None

    def text(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The variable's text, else the default."""
        raw = self.raw(environ)
        return raw if raw is not None else self.default

    def shown(self, text: str) -> str:
        if self.secret:
            return "<secret>"
        shown = " ".join(repr(text).split())
        return shown if len(shown) <= 200 else shown[:197] + "..."

    def parsed(self, text: str) -> Any:
        """``text`` parsed as this setting's value, or ``SettingError``."""
        try:
            return self.parse(text)
        except (ValueError, TypeError, OverflowError) as exc:
            raise SettingError(
                self.name, self.shown(text), str(exc) or type(exc).__name__
            ) from None

    def value(self, environ: Mapping[str, str] | None = None) -> Any:
        """The parsed value (the default's when unset; ``None`` with no default)."""
        text = self.text(environ)
        return None if text is None else self.parsed(text)


# ---------------------------------------------------------------------------- parsers


def _number(kind: type, text: str, rule: str) -> Any:
    """``text`` as an int or a finite float; text that is not one fails with ``rule`` (the
    reason an operator reads), not Python's conversion message."""
    try:
        number = kind(text)
    except ValueError:
        raise ValueError(rule) from None
    if not math.isfinite(number):
        raise ValueError(rule)
    return number


def positive_int(text: str) -> int:
    rule = "must be a whole number >= 1"
    number = _number(int, text, rule)
    if number < 1:
        raise ValueError(rule)
    return number


def non_negative_float(text: str) -> float:
    rule = "must be a number >= 0"
    number = _number(float, text, rule)
    if not number >= 0:
        raise ValueError(rule)
    return number


def positive_float(text: str) -> float:
    rule = "must be a number > 0"
    number = _number(float, text, rule)
    if not number > 0:
        raise ValueError(rule)
    return number


def fraction(text: str) -> float:
    rule = "must be a number between 0 and 1"
    number = _number(float, text, rule)
    if not 0 < number < 1:
        raise ValueError(rule)
    return number


def http_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return text.rstrip("/")


_HOST_PORT = re.compile(r"\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([^:\[\]\s/@\\]+):(\d{1,5})")


def host_ports(text: str) -> frozenset[tuple[str, int]]:
    """``127.0.0.1:8123, localhost:8123, [::1]:9000`` -> {(host, port)}.

    Every entry names its port: an exception to the private-address rule is one service,
    never every port of a host.
    """
    out: set[tuple[str, int]] = set()
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        m = _HOST_PORT.fullmatch(item)
        if not m:
            raise ValueError(f"{item!r} is not host:port")
        port = int(m.group(2) or m.group(4))
        if not 0 < port < 65536:
            raise ValueError(f"bad port in {item!r}")
        out.add(((m.group(1) or m.group(3)).lower().rstrip("."), port))
    return frozenset(out)


def json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


def existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError("no such file")
    return path


def duration(text: str) -> timedelta:
    """``90m``, ``24h``, ``2d``, ``1w`` (a bare number is seconds)."""
    return parse_duration(text)


# --------------------------------------------------------------------------- settings

DATABASE_URL = Setting(
    "MARBA_DATABASE_URL",
    "the MARBA database (SQLAlchemy URL; `postgresql://` gets the psycopg2 driver); unset: "
    "the SQLite file `.marba/marba.db`",
    secret=False,  # the password part is redacted wherever the URL is shown
)
OPEN_METEO_URL = Setting(
    "MARBA_OPEN_METEO_URL",
    "Open-Meteo root (the client appends `/v1/forecast`)",
    "https://api.open-meteo.com",
    http_url,
)
TRENDS_RSS_URL = Setting(
    "MARBA_TRENDS_RSS_URL",
    "Google Trends trending RSS (the client adds `?geo=XX`)",
    "https://trends.google.com/trending/rss",
    http_url,
)
NEWS_RSS_URL = Setting(
    "MARBA_NEWS_RSS_URL",
    "Google News RSS search (the client adds `?q=...`)",
    "https://news.google.com/rss/search",
    http_url,
)
GRAPH_API_URL = Setting(
    "MARBA_GRAPH_API_URL",
    "Graph API root with its version",
    "https://graph.facebook.com/v21.0",
    http_url,
)
X_API_URL = Setting("MARBA_X_API_URL", "X API v2 root", "https://api.x.com/2", http_url)
X_BEARER_TOKEN = Setting(
    "MARBA_X_BEARER_TOKEN",
    "X API app-only bearer token, for competitors' public timelines "
    "(`competitive/social_activity`); unset: competitors' X accounts are not read",
    None,
    secret=True,
)
GBP_API_URL = Setting(
    "MARBA_GBP_API_URL",
    "Google Business Profile API root",
    "https://mybusiness.googleapis.com/v4",
    http_url,
)
LLM_BASE_URL = Setting(
    "MARBA_LLM_BASE_URL",
    "OpenAI-compatible API root (the client appends `/chat/completions`); unset: built-in "
    "analyzer only",
    None,
    http_url,
)
LLM_API_KEY = Setting("MARBA_LLM_API_KEY", "the AI API's key", secret=True)
LLM_MODEL = Setting("MARBA_LLM_MODEL", "the model enrichment asks")
LLM_PRICES = Setting(
    "MARBA_LLM_PRICES",
    'JSON, USD per million tokens: `{"model": {"input_per_mtok": 0.15, "output_per_mtok": '
    "0.6}}`; a model without a price gets no AI calls; unset: the built-in table",
    None,
    json_object,
)
LLM_RPM = Setting(
    "MARBA_LLM_RPM",
    "the provider's requests per minute (unset: only 429 handling)",
    None,
    positive_int,
)
LLM_TPM = Setting(
    "MARBA_LLM_TPM",
    "the provider's tokens per minute (unset: only 429 handling)",
    None,
    positive_int,
)
AI_MONTHLY_BUDGET_USD = Setting(
    "MARBA_AI_MONTHLY_BUDGET_USD",
    "global monthly AI budget in USD (each brand's own is `brands.monthly_ai_budget_usd`); "
    "unset: no global cap",
    None,
    non_negative_float,
)
NOTIFY_WEBHOOK_URL = Setting(
    "MARBA_NOTIFY_WEBHOOK_URL",
    "Slack-compatible webhook for alerts (the URL is itself a credential); unset: alerts are "
    "only recorded",
    None,
    http_url,
    secret=True,
)
FETCH_ALLOWED_HOSTS = Setting(
    "MARBA_FETCH_ALLOWED_HOSTS",
    "`host:port,...` the competitor fetcher may reach although private or loopback",
    "",
    host_ports,
)
FETCH_PER_HOST_CONCURRENCY = Setting(
    "MARBA_FETCH_PER_HOST_CONCURRENCY", "competitor fetches in flight per host", "2", positive_int
)
FETCH_PER_HOST_INTERVAL = Setting(
    "MARBA_FETCH_PER_HOST_INTERVAL",
    "seconds between two requests to one competitor host",
    "0.25",
    non_negative_float,
)
RELEVANCE_FILE = Setting(
    "MARBA_RELEVANCE_FILE",
    "JSON file overriding the event -> industries relevance mapping of the opportunity "
    "detector (read at run time); unset: the built-in mapping",
    None,
    existing_file,
)
PUBLISH_MAX_LATENESS = Setting(
    "MARBA_PUBLISH_MAX_LATENESS",
    "a scheduled post later than this fails as missed instead of going out late (`90m`, `2d`, ...)",
    "24h",
    parse_max_lateness,
)


def publish_limits(text: str) -> dict:
    """``instagram=100/24h; x=100/15m,300/3h; facebook=none`` -> windows per platform."""
    return parse_limits(text, PUBLISH_PLATFORMS)


PUBLISH_PLATFORMS = ("facebook", "instagram", "x", "google_business")
PUBLISH_ACCOUNT_LIMITS = Setting(
    "MARBA_PUBLISH_ACCOUNT_LIMITS",
    "posts per account in moving windows (`platform=N/period[,N/period]; ...`, `none` for no "
    "limit); a platform not named keeps its default",
    DEFAULT_ACCOUNT_LIMITS,
    publish_limits,
)
PUBLISH_APP_LIMITS = Setting(
    "MARBA_PUBLISH_APP_LIMITS",
    "posts per app, every account of a platform together (same format)",
    DEFAULT_APP_LIMITS,
    publish_limits,
)
PUBLISH_CONCURRENCY = Setting(
    "MARBA_PUBLISH_CONCURRENCY",
    "posts one publisher run sends at once (posts of different accounts in parallel); a post "
    "waits about 0.3 s on a platform, so this width sets the burst rate",
    "16",
    positive_int,
)
PUBLISH_MEDIA_ALLOWED_HOSTS = Setting(
    "MARBA_PUBLISH_MEDIA_ALLOWED_HOSTS",
    "`host:port,...` whose media URLs the publisher accepts although http or local (a "
    "sandbox's media server); every other media URL must be public https",
    "",
    host_ports,
)
CIRCUIT_WINDOW = Setting(
    "MARBA_CIRCUIT_WINDOW", "circuit breaker: finished runs looked at", "10", positive_int
)
CIRCUIT_MIN_FAILURES = Setting(
    "MARBA_CIRCUIT_MIN_FAILURES",
    "circuit breaker: opens at this many failures or more",
    "3",
    positive_int,
)
CIRCUIT_FAILURE_RATE = Setting(
    "MARBA_CIRCUIT_FAILURE_RATE", "circuit breaker: and a failure rate above this", "0.5", fraction
)
CIRCUIT_COOLDOWN_MINUTES = Setting(
    "MARBA_CIRCUIT_COOLDOWN_MINUTES",
    "circuit breaker: minutes before one probe run",
    "30",
    positive_float,
)
BRANDS_PER_RUN = Setting(
    "MARBA_BRANDS_PER_RUN",
    "the most active brands one run of a job covers: a scheduled tick (or a trigger) with "
    "more is split into brand shards, one run each, run side by side",
    "500",
    positive_int,
)
EXECUTORS = ("multiprocess", "celery")


def executor_name(text: str) -> str:
    name = text.strip().lower()
    if name not in EXECUTORS:
        raise ValueError(f"must be one of {', '.join(EXECUTORS)}")
    return name


EXECUTOR = Setting(
    "MARBA_EXECUTOR",
    "where the steps of a launched run execute: `multiprocess` (subprocesses of the run's "
    "process) or `celery` (Celery workers through MARBA_CELERY_BROKER_URL; start them with "
    "`make workers`); read when the code location loads. `marba run` always runs in-process",
    "multiprocess",
    executor_name,
)
CELERY_BROKER_URL = Setting(
    "MARBA_CELERY_BROKER_URL",
    "the Celery broker of MARBA_EXECUTOR=celery (the code location and every worker)",
    "redis://127.0.0.1:6379/0",
    secret=True,
)
CELERY_BACKEND_URL = Setting(
    "MARBA_CELERY_BACKEND_URL",
    "where Celery workers store step results for the run that waits on them",
    "redis://127.0.0.1:6379/1",
    secret=True,
)
DAGSTER_LOCATION = Setting(
    "MARBA_DAGSTER_LOCATION",
    "the code location's name in the workspace the daemon loads (the CLI and API queue runs "
    "and toggle schedules there)",
    "marba_dagster",
)
DAGSTER_MODULE = Setting(
    "MARBA_DAGSTER_MODULE",
    "the module holding the code location's definitions",
    "marba_dagster.definitions",
)


def cron_setting(spec: JobSpec) -> Setting:
    """``MARBA_CRON_<JOB>``: the job's schedule, overriding its cron (configuration, not code)."""
    return Setting(
        f"MARBA_CRON_{spec.name.upper()}",
        f"the cron of {spec.name} (UTC)",
        spec.cron,
        validate_cron,
    )


def job_cron(spec: JobSpec, environ: Mapping[str, str] | None = None) -> str:
    """The job's cron: its ``MARBA_CRON_<JOB>`` when set, else the catalog's."""
    return cron_setting(spec).value(environ)


def job_crons(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    return {spec.name: job_cron(spec, environ) for spec in JOBS}


# Every variable (the seven MARBA_CRON_<JOB> included): the README lists exactly these.
SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        *(cron_setting(spec) for spec in JOBS),
        DATABASE_URL,
        OPEN_METEO_URL,
        TRENDS_RSS_URL,
        NEWS_RSS_URL,
        GRAPH_API_URL,
        X_API_URL,
        X_BEARER_TOKEN,
        GBP_API_URL,
        LLM_BASE_URL,
        LLM_API_KEY,
        LLM_MODEL,
        LLM_PRICES,
        LLM_RPM,
        LLM_TPM,
        AI_MONTHLY_BUDGET_USD,
        NOTIFY_WEBHOOK_URL,
        FETCH_ALLOWED_HOSTS,
        FETCH_PER_HOST_CONCURRENCY,
        FETCH_PER_HOST_INTERVAL,
        RELEVANCE_FILE,
        PUBLISH_MAX_LATENESS,
        PUBLISH_ACCOUNT_LIMITS,
        PUBLISH_APP_LIMITS,
        PUBLISH_CONCURRENCY,
        PUBLISH_MEDIA_ALLOWED_HOSTS,
        CIRCUIT_WINDOW,
        CIRCUIT_MIN_FAILURES,
        CIRCUIT_FAILURE_RATE,
        CIRCUIT_COOLDOWN_MINUTES,
        BRANDS_PER_RUN,
        EXECUTOR,
        CELERY_BROKER_URL,
        CELERY_BACKEND_URL,
        DAGSTER_LOCATION,
        DAGSTER_MODULE,
    )
}
