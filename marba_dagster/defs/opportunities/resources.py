"""The opportunity detector's settings: the ``opportunity_settings`` resource (the
relevance mapping file) and ``WeatherConfig`` (the ``weather_signals`` run config).

``MARBA_RELEVANCE_FILE`` (``marba_dagster.settings``) is bound when Dagster loads the code
location and read when the step runs: a file that is missing, not JSON or not a valid
mapping fails that step at once with ``InvalidSetting`` (no retries: every attempt would
read the same file), naming the file.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from marba_dagster import settings
from marba_dagster.connectors.open_meteo import DEFAULT_BATCH_SIZE
from marba_dagster.core.opportunities.relevance import RelevanceError, RelevanceMap
from marba_dagster.defs.resources import InvalidSetting, bind, parse_setting
from marba_dagster.services.opportunities import load_relevance


class WeatherConfig(dg.Config):
    batch_size: int = DEFAULT_BATCH_SIZE  # locations per Open-Meteo request
    grid_degrees: float = 0.1  # brands within one grid cell share a forecast

    def check_numbers(self) -> None:
        """``InvalidSetting`` (no retry) for a number the detector cannot work with."""
        if self.batch_size < 1:
            raise InvalidSetting(
                "weather_signals config batch_size", self.batch_size, "must be >= 1"
            )
        if not 0 < self.grid_degrees <= 10:
            raise InvalidSetting(
                "weather_signals config grid_degrees", self.grid_degrees, "must be > 0 and <= 10"
            )


class OpportunitySettings(dg.ConfigurableResource):
    """Where the event -> industry relevance mapping comes from."""

    relevance_file: str | None = Field(
        default=None,
        description=f"{settings.RELEVANCE_FILE.name}: a JSON file overriding the built-in "
        "mapping; unset: the built-in mapping",
    )

    def relevance(self) -> tuple[RelevanceMap, str]:
        """The mapping and where it came from; ``InvalidSetting`` for a file it cannot use."""
        if self.relevance_file is None:
            return load_relevance(None)
        path = parse_setting(settings.RELEVANCE_FILE, self.relevance_file)
        try:
            return load_relevance(path)
        except (OSError, ValueError, RelevanceError) as exc:
            raise InvalidSetting(
                settings.RELEVANCE_FILE.name, str(path), f"cannot use the file: {exc}"
            ) from None


def build_opportunity_settings() -> OpportunitySettings:
    """The resource as the code location binds it (the variable, when it is set)."""
    return OpportunitySettings(relevance_file=bind(settings.RELEVANCE_FILE))


@dg.definitions
def opportunity_resources() -> dg.Definitions:
    return dg.Definitions(resources={"opportunity_settings": build_opportunity_settings()})
