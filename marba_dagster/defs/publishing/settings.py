"""The auto-publisher's settings resource (``publisher_settings``).

``MARBA_PUBLISH_MAX_LATENESS`` (e.g. ``24h``, ``90m``, ``2d``) sets the maximum lateness; it
is read when Dagster loads the code location, never at import time.
"""

import os

import dagster as dg
from pydantic import Field

from marba_dagster.core.publishing import parse_max_lateness
from marba_dagster.defs.publishing.publisher import PublisherConfig


class PublisherSettings(dg.ConfigurableResource):
    """How the auto-publisher behaves (``MARBA_PUBLISH_MAX_LATENESS`` sets the lateness)."""

    max_lateness: str = Field(default="24h", description="later than this a post fails as missed (e.g. 24h, 90m)")
    lease_seconds: float = Field(default=300.0, description="a claim older than this with no result is unknown")
    concurrency: int = Field(default=8, description="posts published at once")
    max_run_seconds: float = Field(default=240.0, description="stop claiming after this long")
    facebook_posts_per_second: float | None = 5.0
    instagram_posts_per_second: float | None = 2.0
    x_posts_per_second: float | None = 5.0

    def config(self) -> PublisherConfig:
        return PublisherConfig(
            max_lateness=parse_max_lateness(self.max_lateness),
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
    lateness = os.environ.get("MARBA_PUBLISH_MAX_LATENESS")
    settings = PublisherSettings(max_lateness=dg.EnvVar("MARBA_PUBLISH_MAX_LATENESS")) if lateness else PublisherSettings()
    return dg.Definitions(resources={"publisher_settings": settings})
