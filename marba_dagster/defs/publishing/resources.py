"""The auto-publisher's settings resource (``publisher_settings``).

``MARBA_PUBLISH_MAX_LATENESS`` (e.g. ``24h``, ``90m``, ``2d``; ``marba_dagster.settings``)
sets the maximum lateness; it is bound when Dagster loads the code location and parsed when
the step runs. A value that cannot work fails the publisher's step at once with
``InvalidSetting`` (no retries: every attempt would read the same value).
"""

import dagster as dg
from pydantic import Field

from marba_dagster import settings
from marba_dagster.defs.resources import InvalidSetting, bind, parse_setting
from marba_dagster.services.publishing import PublisherConfig


class PublisherSettings(dg.ConfigurableResource):
    """How the auto-publisher behaves (``MARBA_PUBLISH_MAX_LATENESS`` sets the lateness)."""

    max_lateness: str = Field(
        default=settings.PUBLISH_MAX_LATENESS.default,
        description="later than this a post fails as missed (e.g. 24h, 90m)",
    )
    lease_seconds: float = Field(
        default=300.0, description="a claim older than this with no result is unknown"
    )
    concurrency: int = Field(default=8, description="posts published at once")
    max_run_seconds: float = Field(default=240.0, description="stop claiming after this long")
    media_allowed_hosts: str = Field(
        default=settings.PUBLISH_MEDIA_ALLOWED_HOSTS.default,
        description="host:port pairs whose media URLs may be http or local",
    )
    facebook_posts_per_second: float | None = 5.0
    instagram_posts_per_second: float | None = 2.0
    x_posts_per_second: float | None = 5.0

    def config(self) -> PublisherConfig:
        """The publisher's configuration; ``InvalidSetting`` names the first unusable value."""
        lateness = parse_setting(settings.PUBLISH_MAX_LATENESS, self.max_lateness)
        media_hosts = parse_setting(settings.PUBLISH_MEDIA_ALLOWED_HOSTS, self.media_allowed_hosts)
        rules = [
            ("lease_seconds", self.lease_seconds > 0, "must be > 0"),
            ("concurrency", self.concurrency >= 1, "must be >= 1"),
            ("max_run_seconds", self.max_run_seconds > 0, "must be > 0"),
        ]
        rules += [
            (
                f"{platform}_posts_per_second",
                rate is None or rate >= 0,
                "must be >= 0 (or unset for no limit)",
            )
            for platform, rate in (
                ("facebook", self.facebook_posts_per_second),
                ("instagram", self.instagram_posts_per_second),
                ("x", self.x_posts_per_second),
            )
        ]
        for name, ok, rule in rules:
            if not ok:
                raise InvalidSetting(f"publisher_settings.{name}", getattr(self, name), rule)
        return PublisherConfig(
            max_lateness=lateness,
            lease_seconds=self.lease_seconds,
            concurrency=self.concurrency,
            max_run_seconds=self.max_run_seconds,
            allowed_media_hosts=media_hosts,
            rate_per_second={
                "facebook": self.facebook_posts_per_second,
                "instagram": self.instagram_posts_per_second,
                "x": self.x_posts_per_second,
            },
        )


@dg.definitions
def publisher_resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "publisher_settings": PublisherSettings(
                max_lateness=bind(settings.PUBLISH_MAX_LATENESS),
                media_allowed_hosts=bind(settings.PUBLISH_MEDIA_ALLOWED_HOSTS),
            )
        }
    )
