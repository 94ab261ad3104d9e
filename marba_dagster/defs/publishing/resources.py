"""The auto-publisher's settings resource (``publisher_settings``).

``MARBA_PUBLISH_MAX_LATENESS`` (e.g. ``24h``, ``90m``, ``2d``), ``MARBA_PUBLISH_ACCOUNT_LIMITS``
and ``MARBA_PUBLISH_APP_LIMITS`` (``platform=N/period; ...``) and
``MARBA_PUBLISH_MEDIA_ALLOWED_HOSTS`` (``marba_dagster.settings``) are bound when Dagster
loads the code location and parsed when the step runs. A value that cannot work fails the
publisher's step at once with ``InvalidSetting`` (no retries: every attempt would read the
same value).
"""

import dagster as dg
from pydantic import Field

from marba_dagster import settings
from marba_dagster.defs.resources import InvalidSetting, bind, parse_setting
from marba_dagster.services.publishing import MAX_POSTS_PER_RUN, PublisherConfig


class PublisherSettings(dg.ConfigurableResource):
    """How the auto-publisher behaves: lateness, per-account and per-app limits, media hosts."""

    max_lateness: str = Field(
        default=settings.PUBLISH_MAX_LATENESS.default,
        description="later than this a post fails as missed (e.g. 24h, 90m)",
    )
    lease_seconds: float = Field(
        default=300.0, description="a claim older than this with no result is unknown"
    )
    concurrency: int = Field(
        default=int(settings.PUBLISH_CONCURRENCY.default),
        description="posts published at once (of different accounts in parallel)",
    )
    concurrency_env: str | None = Field(
        default=None,
        description=f"{settings.PUBLISH_CONCURRENCY.name} when set: overrides concurrency",
    )
    max_posts_per_run: int = Field(
        default=MAX_POSTS_PER_RUN,
        description="a run claims until nothing is due, at most this many posts",
    )
    account_limits: str = Field(
        default=settings.PUBLISH_ACCOUNT_LIMITS.default,
        description="sends per account in moving windows, e.g. instagram=100/24h; x=100/15m",
    )
    app_limits: str = Field(
        default=settings.PUBLISH_APP_LIMITS.default,
        description="sends per app (all accounts of a platform), e.g. x=10000/24h",
    )
    media_allowed_hosts: str = Field(
        default=settings.PUBLISH_MEDIA_ALLOWED_HOSTS.default,
        description="host:port pairs whose media URLs may be http or local",
    )

    def config(self) -> PublisherConfig:
        """The publisher's configuration; ``InvalidSetting`` names the first unusable value."""
        lateness = parse_setting(settings.PUBLISH_MAX_LATENESS, self.max_lateness)
        media_hosts = parse_setting(settings.PUBLISH_MEDIA_ALLOWED_HOSTS, self.media_allowed_hosts)
        # A platform the value does not name keeps its default.
        account_limits = {
            **settings.PUBLISH_ACCOUNT_LIMITS.parsed(settings.PUBLISH_ACCOUNT_LIMITS.default),
            **parse_setting(settings.PUBLISH_ACCOUNT_LIMITS, self.account_limits),
        }
        app_limits = {
            **settings.PUBLISH_APP_LIMITS.parsed(settings.PUBLISH_APP_LIMITS.default),
            **parse_setting(settings.PUBLISH_APP_LIMITS, self.app_limits),
        }
        concurrency = self.concurrency
        if self.concurrency_env is not None:
            concurrency = parse_setting(settings.PUBLISH_CONCURRENCY, self.concurrency_env)
        rules = [
            ("lease_seconds", self.lease_seconds > 0, "must be > 0"),
            ("concurrency", concurrency >= 1, "must be >= 1"),
            ("max_posts_per_run", self.max_posts_per_run >= 1, "must be >= 1"),
        ]
        for name, ok, rule in rules:
            if not ok:
                raise InvalidSetting(f"publisher_settings.{name}", getattr(self, name), rule)
        return PublisherConfig(
            max_lateness=lateness,
            lease_seconds=self.lease_seconds,
            concurrency=concurrency,
            max_posts_per_run=self.max_posts_per_run,
            allowed_media_hosts=media_hosts,
            account_limits=account_limits,
            app_limits=app_limits,
        )


@dg.definitions
def publisher_resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "publisher_settings": PublisherSettings(
                max_lateness=bind(settings.PUBLISH_MAX_LATENESS),
                account_limits=bind(settings.PUBLISH_ACCOUNT_LIMITS),
                app_limits=bind(settings.PUBLISH_APP_LIMITS),
                concurrency_env=bind(settings.PUBLISH_CONCURRENCY, None),
                media_allowed_hosts=bind(settings.PUBLISH_MEDIA_ALLOWED_HOSTS),
            )
        }
    )
