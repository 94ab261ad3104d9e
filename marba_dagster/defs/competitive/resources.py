"""The ``safe_fetch`` resource: how competitor sites and feeds are fetched.

``MARBA_FETCH_ALLOWED_HOSTS``, ``MARBA_FETCH_PER_HOST_CONCURRENCY`` and
``MARBA_FETCH_PER_HOST_INTERVAL`` (``marba_dagster.settings``) are bound as text when Dagster
loads the code location and parsed when the step runs, so a bad value fails that step at
once with ``InvalidSetting`` (no retries) instead of stopping the code location from loading.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from marba_dagster import settings
from marba_dagster.connectors.safe_fetch import (
    FetchPolicy,
    Resolver,
    SafeFetcher,
)
from marba_dagster.defs.resources import InvalidSetting, bind, parse_setting

MiB = 1024 * 1024


class SafeFetchSettings(dg.ConfigurableResource):
    """The safe fetcher for competitor sites: limits, politeness and the loopback allow-list.

    ``per_host_concurrency_env`` and ``per_host_interval_env`` hold the variables' text when
    they are set; they override ``per_host_concurrency`` and ``per_host_interval``.
    """

    allowed_hosts: str = Field(
        default="",
        description="comma-separated host:port reachable although private/loopback "
        f"({settings.FETCH_ALLOWED_HOSTS.name})",
    )
    max_bytes: int = Field(default=5 * MiB, description="body cap after decompression")
    deadline: float = Field(default=20.0, description="total seconds per fetch, redirects included")
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_redirects: int = 5
    max_concurrency: int = Field(default=16, description="fetches in flight at once, all hosts")
    per_host_concurrency: int = 2
    per_host_interval: float = Field(
        default=0.25, description="seconds between requests to one host"
    )
    failure_limit: int = Field(
        default=3, description="consecutive failed runs before a competitor is unreachable"
    )
    per_host_concurrency_env: str | None = Field(
        default=None,
        description=f"{settings.FETCH_PER_HOST_CONCURRENCY.name} when set: overrides "
        "per_host_concurrency",
    )
    per_host_interval_env: str | None = Field(
        default=None,
        description=f"{settings.FETCH_PER_HOST_INTERVAL.name} when set: overrides "
        "per_host_interval (seconds)",
    )

    def _allowed_hosts(self) -> frozenset[tuple[str, int]]:
        return parse_setting(settings.FETCH_ALLOWED_HOSTS, self.allowed_hosts)

    def policy(self) -> FetchPolicy:
        """The fetcher's policy; a value it cannot work with fails with ``InvalidSetting``."""
        concurrency, interval = self.per_host_concurrency, self.per_host_interval
        if self.per_host_concurrency_env is not None:
            concurrency = parse_setting(
                settings.FETCH_PER_HOST_CONCURRENCY, self.per_host_concurrency_env
            )
        if self.per_host_interval_env is not None:
            interval = parse_setting(settings.FETCH_PER_HOST_INTERVAL, self.per_host_interval_env)
        rules = [
            ("max_bytes", self.max_bytes >= 1, "must be >= 1"),
            ("deadline", self.deadline > 0, "must be > 0"),
            ("connect_timeout", self.connect_timeout > 0, "must be > 0"),
            ("read_timeout", self.read_timeout > 0, "must be > 0"),
            ("max_redirects", self.max_redirects >= 0, "must be >= 0"),
            ("max_concurrency", self.max_concurrency >= 1, "must be >= 1"),
            ("per_host_concurrency", concurrency >= 1, "must be >= 1"),
            ("per_host_interval", interval >= 0, "must be >= 0"),
            ("failure_limit", self.failure_limit >= 1, "must be >= 1"),
        ]
        for name, ok, rule in rules:
            if not ok:
                value = {"per_host_concurrency": concurrency, "per_host_interval": interval}.get(
                    name, getattr(self, name)
                )
                raise InvalidSetting(f"safe_fetch.{name}", value, rule)
        return FetchPolicy(
            max_bytes=self.max_bytes,
            deadline=self.deadline,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_redirects=self.max_redirects,
            max_concurrency=self.max_concurrency,
            per_host_concurrency=concurrency,
            per_host_interval=interval,
            allowed_hosts=self._allowed_hosts(),
        )

    def fetcher(self, resolver: Resolver | None = None) -> SafeFetcher:
        return SafeFetcher(self.policy(), resolver=resolver)


def build_safe_fetch() -> SafeFetchSettings:
    """The resource as the code location binds it: each variable that is set, as text.
    Politeness per competitor host; the demo's sandbox serves every site from one host."""
    return SafeFetchSettings(
        allowed_hosts=bind(settings.FETCH_ALLOWED_HOSTS),
        per_host_concurrency_env=bind(settings.FETCH_PER_HOST_CONCURRENCY, None),
        per_host_interval_env=bind(settings.FETCH_PER_HOST_INTERVAL, None),
    )


@dg.definitions
def competitive_resources() -> dg.Definitions:
    return dg.Definitions(resources={"safe_fetch": build_safe_fetch()})
