"""The auto-publisher's settings resource (``publisher_settings``).

``MARBA_PUBLISH_MAX_LATENESS`` (e.g. ``24h``, ``90m``, ``2d``) sets the maximum lateness; it
is read when Dagster loads the code location, never at import time. A value that cannot work
fails the publisher's step at once with ``InvalidSetting`` (no retries: every attempt would
read the same value).
"""

import os

import dagster as dg
from pydantic import Field

from marba_dagster.core.publishing import parse_max_lateness
from marba_dagster.defs.publishing.publisher import PublisherConfig
from marba_dagster.defs.resources import InvalidSetting

LATENESS_ENV = "MARBA_PUBLISH_MAX_LATENESS"


class PublisherSettings(dg.ConfigurableResource):
    """How the auto-publisher behaves (``MARBA_PUBLISH_MAX_LATENESS`` sets the lateness)."""

    max_lateness: str = Field(
        default="24h", description="later than this a post fails as missed (e.g. 24h, 90m)"
    )
    lease_seconds: float = Field(
        default=300.0, description="a claim older than this with no result is unknown"
    )
    concurrency: int = Field(default=8, description="posts published at once")
    max_run_seconds: float = Field(default=240.0, description="stop claiming after this long")
    facebook_posts_per_second: float | None = 5.0
    instagram_posts_per_second: float | None = 2.0
    x_posts_per_second: float | None = 5.0

    def config(self) -> PublisherConfig:
        """The engine's configuration; ``InvalidSetting`` names the first unusable value."""
        try:
            lateness = parse_max_lateness(self.max_lateness)
        except (ValueError, OverflowError) as exc:
            raise InvalidSetting(LATENESS_ENV, self.max_lateness, str(exc)) from None
        rules = [
            ("lease_seconds", self.lease_seconds > 0, "must be > 0"),
            ("concurrency", self.concurrency >= 1, "must be >= 1"),
            ("max_run_seconds", self.max_run_seconds > 0, "must be > 0"),
        ]
        rules += [
            (
                f"{p}_posts_per_second",
                rate is None or rate >= 0,
                "must be >= 0 (or unset for no limit)",
            )
            for p, rate in (
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
            rate_per_second={
                "facebook": self.facebook_posts_per_second,
                "instagram": self.instagram_posts_per_second,
                "x": self.x_posts_per_second,
            },
        )


@dg.definitions
def publisher_resources() -> dg.Definitions:
    lateness = os.environ.get(LATENESS_ENV)
    settings = (
        PublisherSettings(max_lateness=dg.EnvVar(LATENESS_ENV)) if lateness else PublisherSettings()
    )
    return dg.Definitions(resources={"publisher_settings": settings})
