"""Open-Meteo forecast API: ``GET /open-meteo/v1/forecast`` (route ``open_meteo.forecast``).

Same request parameters and response shape as https://api.open-meteo.com/v1/forecast:
``latitude``/``longitude`` (comma-separated lists give a JSON list, one object per
location), ``hourly``, ``daily``, ``current``, ``forecast_days`` (0-16, default 7),
``past_days``, ``forecast_hours``/``past_hours``, ``start_date``/``end_date``,
``timezone`` (IANA name, ``auto`` or GMT), ``temperature_unit``, ``wind_speed_unit``,
``precipitation_unit``, ``timeformat``, ``elevation``. Invalid parameters get a 400 with
``{"error": true, "reason": "..."}`` like the real service. Values come from
:mod:`marba_dagster.sandbox.weather`: deterministic, with weather events to detect.

Differences from the real service: ``timezone=auto`` resolves to a whole-hour
``Etc/GMT±N`` zone from the longitude rather than the local IANA zone, and ``models`` is
accepted but ignored.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox import weather

ROUTE_NAME = "open_meteo.forecast"
PREFIX = "/open-meteo"

# variable -> (physical kind for unit conversion, unit in the default units)
HOURLY_VARIABLES: dict[str, tuple[str, str]] = {
    "temperature_2m": ("temperature", "°C"),
    "apparent_temperature": ("temperature", "°C"),
    "dew_point_2m": ("temperature", "°C"),
    "relative_humidity_2m": ("percent", "%"),
    "precipitation": ("precipitation", "mm"),
    "rain": ("precipitation", "mm"),
    "showers": ("precipitation", "mm"),
    "snowfall": ("snow", "cm"),
    "precipitation_probability": ("percent", "%"),
    "weather_code": ("code", "wmo code"),
    "cloud_cover": ("percent", "%"),
    "pressure_msl": ("pressure", "hPa"),
    "wind_speed_10m": ("wind", "km/h"),
    "wind_direction_10m": ("direction", "°"),
    "wind_gusts_10m": ("wind", "km/h"),
    "is_day": ("flag", ""),
}
# Older names the real API still accepts (and echoes back as requested).
ALIASES = {
    "weathercode": "weather_code",
    "windspeed_10m": "wind_speed_10m",
    "winddirection_10m": "wind_direction_10m",
    "windgusts_10m": "wind_gusts_10m",
    "relativehumidity_2m": "relative_humidity_2m",
    "dewpoint_2m": "dew_point_2m",
    "cloudcover": "cloud_cover",
}
# daily variable -> (hourly source, aggregation)
DAILY_VARIABLES: dict[str, tuple[str, str]] = {
    "temperature_2m_max": ("temperature_2m", "max"),
    "temperature_2m_min": ("temperature_2m", "min"),
    "temperature_2m_mean": ("temperature_2m", "mean"),
    "apparent_temperature_max": ("apparent_temperature", "max"),
    "apparent_temperature_min": ("apparent_temperature", "min"),
    "precipitation_sum": ("precipitation", "sum"),
    "rain_sum": ("rain", "sum"),
    "showers_sum": ("showers", "sum"),
    "snowfall_sum": ("snowfall", "sum"),
    "precipitation_hours": ("precipitation", "hours"),
    "precipitation_probability_max": ("precipitation_probability", "max"),
    "precipitation_probability_mean": ("precipitation_probability", "mean"),
    "weather_code": ("weather_code", "max"),
    "wind_speed_10m_max": ("wind_speed_10m", "max"),
    "wind_gusts_10m_max": ("wind_gusts_10m", "max"),
    "wind_direction_10m_dominant": ("wind_direction_10m", "mean"),
}
DAILY_ALIASES = {
    "weathercode": "weather_code",
    "windspeed_10m_max": "wind_speed_10m_max",
    "windgusts_10m_max": "wind_gusts_10m_max",
    "winddirection_10m_dominant": "wind_direction_10m_dominant",
}

TEMPERATURE_UNITS = {"celsius": "°C", "fahrenheit": "°F"}
WIND_UNITS = {"kmh": "km/h", "ms": "m/s", "mph": "mp/h", "kn": "kn"}
PRECIPITATION_UNITS = {"mm": "mm", "inch": "inch"}
MAX_FORECAST_DAYS, MAX_PAST_DAYS, MAX_LOCATIONS = 16, 92, 1000


class ApiError(Exception):
    """A parameter error; the real API answers 400 {"error": true, "reason": ...}."""


def _error(reason: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": True, "reason": reason}, status_code=status)


# ---- parameter parsing ---------------------------------------------------------------


def _values(request: Request, key: str) -> list[str]:
    """All values of a parameter, whether repeated or comma-separated."""
    out: list[str] = []
    for raw in request.query_params.getlist(key):
        out.extend(v.strip() for v in raw.split(",") if v.strip() != "")
    return out


def _floats(request: Request, key: str, required: bool) -> list[float] | None:
    raw = _values(request, key)
    if not raw:
        if required:
            raise ApiError(f"Value required for key '{key}'.")
        return None
    try:
        return [float(v) for v in raw]
    except ValueError:
        raise ApiError(f"Value of type 'Float' required for key '{key}'.") from None


def _int(request: Request, key: str, low: int, high: int, label: str) -> int | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"Value of type 'Int' required for key '{key}'.") from None
    if not low <= value <= high:
        raise ApiError(f"{label} is invalid. Allowed range {low} to {high}.")
    return value


def _choice(
    request: Request, keys: tuple[str, ...], choices: dict[str, str], default: str, type_name: str
) -> str:
    for key in keys:
        raw = request.query_params.get(key)
        if raw:
            if raw not in choices:
                raise ApiError(
                    f"Cannot initialize {type_name} from invalid String value {raw} for key {key}"
                )
            return raw
    return default


def _variables(
    request: Request, key: str, known: dict, aliases: dict[str, str]
) -> list[tuple[str, str]]:
    """(name as requested, canonical name) for each requested variable."""
    out = []
    for name in _values(request, key):
        canonical = aliases.get(name, name)
        if canonical not in known:
            raise ApiError(
                f"Cannot initialize "
                f"{'SurfaceVariable' if key != 'daily' else 'DailyVariable'} "
                f"from invalid String value {name} for key {key}"
            )
        out.append((name, canonical))
    return out


def _timezone(name: str | None, lon: float, now: dt.datetime) -> tuple[str, dt.tzinfo, str]:
    """(identifier, tzinfo, abbreviation) for a ``timezone`` value."""
    if name is None or name.upper() in ("GMT", "UTC", ""):
        return ("GMT", dt.timezone.utc, "GMT")
    if name == "auto":
        hours = max(-12, min(14, round(lon / 15.0)))
        if hours == 0:
            return ("GMT", dt.timezone.utc, "GMT")
        name = f"Etc/GMT{-hours:+d}"  # POSIX sign convention: Etc/GMT-1 is UTC+1
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError("Invalid timezone") from None
    return (name, zone, now.astimezone(zone).tzname() or "GMT")


def _date(raw: str, key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ApiError(
            f"Invalid date format for parameter '{key}'. Please use YYYY-MM-DD."
        ) from None


# ---- computing -----------------------------------------------------------------------


def _convert(
    kind: str, value: float, temp_unit: str, wind_unit: str, precip_unit: str
) -> float | int:
    """Convert from metric and round like the real API."""
    if kind == "temperature":
        if temp_unit == "fahrenheit":
            value = value * 9.0 / 5.0 + 32.0
        return round(value, 1)
    if kind == "wind":
        value = {"kmh": value, "ms": value / 3.6, "mph": value / 1.609344, "kn": value / 1.852}[
            wind_unit
        ]
        return round(value, 1)
    if kind == "precipitation":
        return round(value / 25.4, 3) if precip_unit == "inch" else round(value, 1)
    if kind == "snow":
        return round(value / 2.54, 3) if precip_unit == "inch" else round(value, 2)
    if kind in ("percent", "code", "flag", "direction"):
        return int(round(value))
    if kind == "hours":
        return round(value, 1)
    return round(value, 1)


def _unit(kind: str, default_unit: str, temp_unit: str, wind_unit: str, precip_unit: str) -> str:
    if kind == "temperature":
        return TEMPERATURE_UNITS[temp_unit]
    if kind == "wind":
        return WIND_UNITS[wind_unit]
    if kind == "precipitation":
        return PRECIPITATION_UNITS[precip_unit]
    if kind == "snow":
        return "inch" if precip_unit == "inch" else "cm"
    return default_unit


def _aggregate(values: list[float], how: str) -> float:
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    if how == "sum":
        return sum(values)
    if how == "hours":
        return float(sum(1 for v in values if v > 0))
    return sum(values) / len(values)


def _forecast(
    lat: float,
    lon: float,
    elev_param: float | None,
    tz_name: str | None,
    now: dt.datetime,
    opts: dict[str, Any],
) -> dict[str, Any]:
    started = time.perf_counter()
    identifier, zone, abbreviation = _timezone(tz_name, lon, now)
    offset = int(now.astimezone(zone).utcoffset().total_seconds())  # type: ignore[union-attr]
    elev = (
        elev_param
        if elev_param is not None and not math.isnan(elev_param)
        else weather.elevation(lat, lon)
    )
    units = (opts["temperature_unit"], opts["wind_speed_unit"], opts["precipitation_unit"])
    unixtime = opts["timeformat"] == "unixtime"
    cache: dict[float, dict[str, float]] = {}

    def at(t: float) -> dict[str, float]:
        s = cache.get(t)
        if s is None:
            s = cache[t] = weather.sample(lat, lon, t, elev)
        return s

    local_now = now + dt.timedelta(seconds=offset)
    today = local_now.date()
    if opts["start_date"] is not None:
        first_day, last_day = opts["start_date"], opts["end_date"]
    else:
        first_day = today - dt.timedelta(days=opts["past_days"])
        last_day = today + dt.timedelta(days=opts["forecast_days"] - 1)
    n_days = max(0, (last_day - first_day).days + 1)

    def local_epoch(d: dt.date, hour: int = 0) -> int:
        # seconds since epoch of a local wall time, expressed as if it were UTC
        return int(dt.datetime(d.year, d.month, d.day, hour, tzinfo=dt.timezone.utc).timestamp())

    def fmt(local_seconds: int, daily: bool = False) -> str | int:
        if unixtime:
            return local_seconds - offset
        stamp = dt.datetime.fromtimestamp(local_seconds, dt.timezone.utc)
        return stamp.strftime("%Y-%m-%d") if daily else stamp.strftime("%Y-%m-%dT%H:%M")

    result: dict[str, Any] = {
        "latitude": 0.0,
        "longitude": 0.0,
        "generationtime_ms": 0.0,
        "utc_offset_seconds": offset,
        "timezone": identifier,
        "timezone_abbreviation": abbreviation,
        "elevation": float(elev),
    }
    result["latitude"], result["longitude"] = weather.grid_coordinates(lat, lon)

    if opts["current"]:
        step = 900
        local_s = int(local_now.replace(tzinfo=dt.timezone.utc).timestamp()) // step * step
        s = at((local_s - offset) / 3600.0)
        result["current_units"] = {
            "time": "unixtime" if unixtime else "iso8601",
            "interval": "seconds",
        }
        result["current"] = {"time": fmt(local_s), "interval": step}
        for name, canonical in opts["current"]:
            kind, unit = HOURLY_VARIABLES[canonical]
            result["current_units"][name] = _unit(kind, unit, *units)
            result["current"][name] = _convert(kind, s[canonical], *units)

    if opts["hourly"]:
        if opts["forecast_hours"] is not None or opts["past_hours"] is not None:
            past = opts["past_hours"] or 0
            ahead = (
                opts["forecast_hours"]
                if opts["forecast_hours"] is not None
                else opts["forecast_days"] * 24
            )
            start = local_epoch(local_now.date(), local_now.hour) - past * 3600
            count = past + ahead
        else:
            start = local_epoch(first_day)
            count = n_days * 24
        stamps = [start + i * 3600 for i in range(count)]
        result["hourly_units"] = {"time": "unixtime" if unixtime else "iso8601"}
        hourly: dict[str, list] = {"time": [fmt(s) for s in stamps]}
        samples = [at((s - offset) / 3600.0) for s in stamps]
        for name, canonical in opts["hourly"]:
            kind, unit = HOURLY_VARIABLES[canonical]
            result["hourly_units"][name] = _unit(kind, unit, *units)
            hourly[name] = [_convert(kind, s[canonical], *units) for s in samples]
        result["hourly"] = hourly

    if opts["daily"]:
        days = [first_day + dt.timedelta(days=i) for i in range(n_days)]
        result["daily_units"] = {"time": "unixtime" if unixtime else "iso8601"}
        daily: dict[str, list] = {"time": [fmt(local_epoch(d), daily=True) for d in days]}
        per_day = [
            [at((local_epoch(d) + h * 3600 - offset) / 3600.0) for h in range(24)] for d in days
        ]
        for name, canonical in opts["daily"]:
            source, how = DAILY_VARIABLES[canonical]
            kind, unit = HOURLY_VARIABLES[source]
            if how == "hours":
                kind, unit = "hours", "h"
            result["daily_units"][name] = _unit(kind, unit, *units)
            daily[name] = [
                _convert(kind, _aggregate([s[source] for s in day], how), *units) for day in per_day
            ]
        result["daily"] = daily

    result["generationtime_ms"] = round((time.perf_counter() - started) * 1000.0, 4)
    return result


def _parse(
    request: Request, now: dt.datetime
) -> tuple[list[tuple[float, float, float | None, str | None]], dict[str, Any]]:
    lats = _floats(request, "latitude", True)
    lons = _floats(request, "longitude", True)
    assert lats is not None and lons is not None
    if len(lats) != len(lons):
        raise ApiError("Parameter 'latitude' and 'longitude' must have the same number of elements")
    if len(lats) > MAX_LOCATIONS:
        raise ApiError(f"Too many locations. At most {MAX_LOCATIONS} coordinates are allowed.")
    for lat in lats:
        if not -90 <= lat <= 90:
            raise ApiError(f"Latitude must be in range of -90 to 90°. Given: {lat}.")
    for lon in lons:
        if not -180 <= lon <= 180:
            raise ApiError(f"Longitude must be in range of -180 to 180°. Given: {lon}.")
    elevations = _floats(request, "elevation", False)
    if elevations is not None and len(elevations) not in (1, len(lats)):
        raise ApiError("Parameter 'elevation' must have the same number of elements as coordinates")
    timezones = _values(request, "timezone")
    if timezones and len(timezones) not in (1, len(lats)):
        raise ApiError("Parameter 'latitude' and 'longitude' must have the same number of elements")
    locations = []
    for i, (lat, lon) in enumerate(zip(lats, lons, strict=True)):
        elev = None if elevations is None else elevations[i if len(elevations) > 1 else 0]
        tz = None if not timezones else timezones[i if len(timezones) > 1 else 0]
        locations.append((lat, lon, elev, tz))

    opts: dict[str, Any] = {
        "hourly": _variables(request, "hourly", HOURLY_VARIABLES, ALIASES),
        "current": _variables(request, "current", HOURLY_VARIABLES, ALIASES),
        "daily": _variables(request, "daily", DAILY_VARIABLES, DAILY_ALIASES),
        "temperature_unit": _choice(
            request, ("temperature_unit",), TEMPERATURE_UNITS, "celsius", "TemperatureUnit"
        ),
        "wind_speed_unit": _choice(
            request, ("wind_speed_unit", "windspeed_unit"), WIND_UNITS, "kmh", "WindspeedUnit"
        ),
        "precipitation_unit": _choice(
            request, ("precipitation_unit",), PRECIPITATION_UNITS, "mm", "PrecipitationUnit"
        ),
        "timeformat": _choice(
            request, ("timeformat",), {"iso8601": "", "unixtime": ""}, "iso8601", "Timeformat"
        ),
        "forecast_days": _int(request, "forecast_days", 0, MAX_FORECAST_DAYS, "Forecast days"),
        "past_days": _int(request, "past_days", 0, MAX_PAST_DAYS, "Past days"),
        "forecast_hours": _int(
            request, "forecast_hours", 0, MAX_FORECAST_DAYS * 24, "Forecast hours"
        ),
        "past_hours": _int(request, "past_hours", 0, MAX_PAST_DAYS * 24, "Past hours"),
        "start_date": None,
        "end_date": None,
    }
    start_raw, end_raw = (
        request.query_params.get("start_date"),
        request.query_params.get("end_date"),
    )
    if start_raw or end_raw:
        if not (start_raw and end_raw):
            raise ApiError("Parameter 'start_date' and 'end_date' must be set together")
        if opts["forecast_days"] or opts["past_days"]:
            raise ApiError(
                "Parameter 'past_days' and 'forecast_days' are mutually exclusive "
                "with 'start_date' and 'end_date'"
            )
        start, end = _date(start_raw, "start_date"), _date(end_raw, "end_date")
        if end < start:
            raise ApiError("End-date must be larger or equals than start-date")
        today = now.date()
        low, high = (
            today - dt.timedelta(days=MAX_PAST_DAYS),
            today + dt.timedelta(days=MAX_FORECAST_DAYS),
        )
        for key, d in (("start_date", start), ("end_date", end)):
            if not low <= d <= high:
                raise ApiError(
                    f"Parameter '{key}' is out of allowed range from "
                    f"{low.isoformat()} to {high.isoformat()}"
                )
        opts["start_date"], opts["end_date"] = start, end
    if opts["forecast_days"] is None:
        opts["forecast_days"] = 7
    if opts["past_days"] is None:
        opts["past_days"] = 0
    return locations, opts


def routes(state) -> list[Route]:
    async def forecast(request: Request):
        now = state.now().astimezone(dt.timezone.utc)

        def compute() -> list[dict[str, Any]]:
            locations, opts = _parse(request, now)
            return [_forecast(lat, lon, elev, tz, now, opts) for lat, lon, elev, tz in locations]

        try:
            # Off the event loop: a many-location request must not stall other requests.
            results = await run_in_threadpool(compute)
        except ApiError as exc:
            return _error(str(exc))
        if len(results) == 1:
            return JSONResponse(results[0])
        for i, r in enumerate(results):
            r["location_id"] = i
        return JSONResponse(results)

    return [Route(f"{PREFIX}/v1/forecast", forecast, methods=["GET"], name=ROUTE_NAME)]
