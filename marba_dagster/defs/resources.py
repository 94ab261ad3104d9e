"""Shared resources: the MARBA database, the outside-API endpoints, the notifier.

Settings (``marba_dagster.settings``) are bound with ``dg.EnvVar`` when the variable is set,
so the UI shows where each value comes from; when unset, their declared defaults apply (the
embedded SQLite file, the real services). Nothing here reads the environment at import
time: only the ``@dg.definitions`` functions do, when Dagster loads the code location.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field
from sqlalchemy.engine import Connection, Engine

from marba_dagster import settings
from marba_dagster.connectors.http import ApiClient, HttpPolicy, redact_url
from marba_dagster.settings import Setting, SettingError
from marba_dagster.store.db import DatabaseError, default_database_url, shared_engine

_DECLARED = object()  # bind(): "the setting's declared default"


class InvalidSetting(dg.Failure, ValueError):
    """A setting whose value cannot work (``MARBA_PUBLISH_MAX_LATENESS=bogus``, a relevance
    file that is not JSON, ``max_attempts=0``): the step fails at once, never retried, since
    every attempt would meet the same value.

    The description is one line naming the setting and the bad value; callers pass a value
    that holds no secret (a redacted URL, never a token). Outside Dagster it is a plain
    ``ValueError``.
    """

    def __init__(
        self, setting: str, value: object, reason: str, *, shown: str | None = None
    ) -> None:
        self.setting = setting
        self.value = value
        self.reason = " ".join(str(reason).split())
        if shown is None:
            shown = " ".join(repr(value).split())
            if len(shown) > 200:
                shown = shown[:197] + "..."
        super().__init__(
            description=f"invalid setting {setting}={shown}: {self.reason}"[:1000],
            allow_retries=False,
        )

    @classmethod
    def from_error(cls, exc: SettingError) -> InvalidSetting:
        return cls(exc.name, exc.shown, exc.reason, shown=exc.shown)


class MarbaDatabase(dg.ConfigurableResource):
    """The MARBA database (SQLAlchemy URL; SQLite file by default, PostgreSQL in production)."""

    url: str = Field(default_factory=default_database_url, description="SQLAlchemy URL")

    @property
    def engine(self) -> Engine:
        try:
            return shared_engine(self.url)
        except DatabaseError as exc:  # an unparsable or unsupported URL: no retry helps
            raise InvalidSetting("MARBA_DATABASE_URL", redact_url(self.url), str(exc)) from None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside a transaction, committed on success."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn


class ApiEndpoint(dg.ConfigurableResource):
    """One outside API: its base URL and the HTTP policy its client uses."""

    base_url: str = Field(description="API root; tests and the demo point it at the sandbox")
    api_key: str | None = Field(default=None, description="secret; never logged")
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    deadline: float = Field(default=30.0, description="total seconds per request, retries included")
    max_bytes: int = Field(default=5 * 1024 * 1024, description="response size cap")
    max_attempts: int = 3
    requests_per_second: float | None = Field(default=None, description="client-side rate limit")
    setting: str | None = Field(
        default=None,
        description="the environment variable that sets base_url "
        "(named when the URL cannot be used)",
    )

    def policy(self) -> HttpPolicy:
        """The client's policy; a URL that is not http(s) or an impossible number fails with
        ``InvalidSetting`` (the step fails at once: no retry can fix it)."""
        parts = urlsplit(self.base_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidSetting(
                self.setting or "ApiEndpoint.base_url",
                redact_url(self.base_url or ""),
                "must be an http:// or https:// URL with a host",
            )
        checks = [
            (name, getattr(self, name) > 0, "must be > 0")
            for name in ("connect_timeout", "read_timeout", "deadline")
        ]
        checks += [
            ("max_bytes", self.max_bytes >= 1, "must be >= 1"),
            ("max_attempts", self.max_attempts >= 1, "must be >= 1"),
            (
                "requests_per_second",
                self.requests_per_second is None or self.requests_per_second > 0,
                "must be > 0 (or unset for no limit)",
            ),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise InvalidSetting(
                    f"ApiEndpoint({redact_url(self.base_url)}).{name}", getattr(self, name), rule
                )
        return HttpPolicy(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            deadline=self.deadline,
            max_bytes=self.max_bytes,
            max_attempts=self.max_attempts,
            requests_per_second=self.requests_per_second,
        )

    def client(self, name: str, headers: dict[str, str] | None = None) -> ApiClient:
        """A new client; callers close it (``with endpoint.client("x") as c``)."""
        return ApiClient(self.base_url, policy=self.policy(), headers=headers, name=name)


class LlmSettings(dg.ConfigurableResource):
    """An OpenAI-compatible chat completions API; unset base URL = built-in analyzer only."""

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    deadline: float = 60.0
    max_attempts: int = 3

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.api_key and self.model)


class Notifier(dg.ConfigurableResource):
    """Slack-compatible webhook for alerts; unset = alerts are only logged."""

    webhook_url: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url)


def bind(setting: Setting, default: object = _DECLARED):
    """A resource field's value for ``setting``: ``dg.EnvVar`` when the variable is set (the
    UI then shows where the value came from), else the declared default (or ``default``)."""
    if setting.is_set():
        return dg.EnvVar(setting.name)
    return setting.default if default is _DECLARED else default


def parse_setting(setting: Setting, text: str) -> object:
    """A bound value parsed when a step runs; ``InvalidSetting`` (no retries) if it cannot
    be used, naming the variable and the value (``<secret>`` for a secret)."""
    try:
        return setting.parsed(text)
    except SettingError as exc:
        raise InvalidSetting.from_error(exc) from None


def endpoint(setting: Setting, **kw) -> ApiEndpoint:
    return ApiEndpoint(base_url=bind(setting), setting=setting.name, **kw)


def build_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "marba_db": MarbaDatabase(url=bind(settings.DATABASE_URL, default_database_url())),
        "open_meteo": endpoint(settings.OPEN_METEO_URL),
        "trends_rss": endpoint(settings.TRENDS_RSS_URL),
        "news_rss": endpoint(settings.NEWS_RSS_URL),
        "graph_api": endpoint(settings.GRAPH_API_URL),
        "x_api": endpoint(settings.X_API_URL),
        # The same API with the app-only bearer token (competitors' public timelines).
        "x_app_api": endpoint(settings.X_API_URL, api_key=bind(settings.X_BEARER_TOKEN)),
        "gbp_api": endpoint(settings.GBP_API_URL),
        "llm": LlmSettings(
            base_url=bind(settings.LLM_BASE_URL),
            api_key=bind(settings.LLM_API_KEY),
            model=bind(settings.LLM_MODEL),
        ),
        "notifier": Notifier(webhook_url=bind(settings.NOTIFY_WEBHOOK_URL)),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
