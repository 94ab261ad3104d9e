"""Open-Meteo forecast API: hourly forecasts for many places in one request.

``GET {MARBA_OPEN_METEO_URL}/v1/forecast?latitude=52.52,48.14&longitude=13.41,11.58
&hourly=temperature_2m,precipitation,snowfall,wind_gusts_10m&past_days=7&forecast_days=3
&timeformat=unixtime&timezone=GMT`` answers one JSON object for one place or a JSON list,
one object per place in request order, for comma-separated coordinates. Each object has
``latitude``/``longitude`` (the grid point used), ``utc_offset_seconds``, ``hourly_units``
and ``hourly`` with ``time`` (Unix seconds here) and one array per variable, ``null`` where
a value is missing. Errors are HTTP 400 ``{"error": true, "reason": "..."}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marba_dagster.connectors.http import ApiClient, ClientError, HttpError, MalformedResponse

HOURLY = ("temperature_2m", "precipitation", "snowfall", "wind_gusts_10m")
# Short enough for any proxy's URL limit (about 30 characters per place).
DEFAULT_BATCH_SIZE = 100
# Extra requests one batch may spend isolating the places a 4xx is about (per doubling of
# the batch size: a batch of 100 with one bad place needs about 2 x 7).
BISECT_REQUESTS_PER_LEVEL = 4


@dataclass(frozen=True)
class LocationForecast:
    requested: tuple[float, float]
    latitude: float
    longitude: float
    time: list[int]
    hourly: dict[str, list[float | None]]
    units: dict[str, str]


@dataclass
class BatchResult:
    locations: list[tuple[float, float]]
    forecasts: list[LocationForecast] | None
    error: HttpError | None


def _malformed(message: str) -> MalformedResponse:
    return MalformedResponse(f"Open-Meteo answer: {message}", client="open_meteo")


def _parse_one(
    obj: Any, requested: tuple[float, float], variables: Sequence[str]
) -> LocationForecast:
    if not isinstance(obj, dict):
        raise _malformed(f"expected an object per location, got {type(obj).__name__}")
    hourly = obj.get("hourly")
    if not isinstance(hourly, dict) or not isinstance(hourly.get("time"), list):
        raise _malformed("missing hourly.time")
    times = hourly["time"]
    if not all(isinstance(t, int) for t in times):
        raise _malformed("hourly.time must be Unix seconds (timeformat=unixtime)")
    values: dict[str, list[float | None]] = {}
    for v in variables:
        arr = hourly.get(v)
        if not isinstance(arr, list) or len(arr) != len(times):
            raise _malformed(f"hourly.{v} missing or not aligned with time")
        if not all(x is None or isinstance(x, int | float) for x in arr):
            raise _malformed(f"hourly.{v} has non-numeric values")
        values[v] = arr
    try:
        lat, lon = float(obj["latitude"]), float(obj["longitude"])
    except (KeyError, TypeError, ValueError):
        raise _malformed("missing latitude/longitude") from None
    units = obj.get("hourly_units") if isinstance(obj.get("hourly_units"), dict) else {}
    return LocationForecast(requested, lat, lon, list(times), values, dict(units))


class OpenMeteoClient:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def forecast(
        self,
        locations: Sequence[tuple[float, float]],
        *,
        hourly: Sequence[str] = HOURLY,
        past_days: int = 7,
        forecast_days: int = 3,
    ) -> list[LocationForecast]:
        """One request for every location (in order); metric units, UTC, Unix times."""
        if not locations:
            return []
        params = {
            "latitude": ",".join(f"{lat:.4f}" for lat, _ in locations),
            "longitude": ",".join(f"{lon:.4f}" for _, lon in locations),
            "hourly": ",".join(hourly),
            "past_days": past_days,
            "forecast_days": forecast_days,
            "timeformat": "unixtime",
            "timezone": "GMT",
        }
        data = self.client.get_json("/v1/forecast", params=params)
        if len(locations) == 1 and isinstance(data, dict):
            data = [data]
        if not isinstance(data, list) or len(data) != len(locations):
            got = len(data) if isinstance(data, list) else type(data).__name__
            raise _malformed(f"expected {len(locations)} locations, got {got}")
        return [
            _parse_one(obj, tuple(loc), hourly) for obj, loc in zip(data, locations, strict=True)
        ]

    def forecast_batches(
        self,
        locations: Sequence[tuple[float, float]],
        batch_size: int = DEFAULT_BATCH_SIZE,
        **kw: Any,
    ) -> list[BatchResult]:
        """``locations`` in batches of ``batch_size``, one request each; a failed batch is
        reported (its ``error``) and the others still return.

        One member never fails its batch: coordinates out of range are refused before any
        request (a ``ClientError`` of their own), and a batch answered with a 4xx (other
        than 429) is split in halves, recursively, until the places it is about are
        isolated, each reported alone; the budget of extra requests is bounded
        (``BISECT_REQUESTS_PER_LEVEL`` per halving), what is left of it failed whole.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        out: list[BatchResult] = []
        locs: list[tuple[float, float]] = []
        for location in locations:
            why = invalid_coordinates(location)
            if why:
                out.append(BatchResult([location], None, _refused(why)))
            else:
                locs.append(location)
        for i in range(0, len(locs), batch_size):
            chunk = locs[i : i + batch_size]
            budget = [BISECT_REQUESTS_PER_LEVEL * max(1, math.ceil(math.log2(len(chunk) + 1)))]
            out += self._batch(chunk, budget, kw)
        return out

    def _batch(
        self, chunk: list[tuple[float, float]], budget: list[int], kw: dict[str, Any]
    ) -> list[BatchResult]:
        try:
            return [BatchResult(chunk, self.forecast(chunk, **kw), None)]
        except ClientError as exc:
            if len(chunk) == 1 or exc.status == 429 or budget[0] < 2:
                return [BatchResult(chunk, None, exc)]
            budget[0] -= 2
            half = len(chunk) // 2
            return self._batch(chunk[:half], budget, kw) + self._batch(chunk[half:], budget, kw)
        except HttpError as exc:
            return [BatchResult(chunk, None, exc)]


def invalid_coordinates(location: Sequence[Any]) -> str | None:
    """Why ``(latitude, longitude)`` cannot be asked for, or None."""
    try:
        lat, lon = (float(v) for v in location)
    except (TypeError, ValueError):
        return f"coordinates {location!r:.60} are not two numbers"
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        return f"latitude {lat:g} is out of range [-90, 90]"
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        return f"longitude {lon:g} is out of range [-180, 180]"
    return None


def _refused(why: str) -> ClientError:
    return ClientError(f"not sent: {why}", client="open_meteo", status=None)
