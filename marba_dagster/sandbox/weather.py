"""Synthetic weather: deterministic functions of (latitude, longitude, time).

Good enough to look like a forecast and, more to the point, to give downstream detectors
something to find. The ingredients:

* a climate by latitude (warm tropics, cold poles, a dry subtropical belt), seasons that
  flip between hemispheres, a daily cycle by solar time, and elevation lapse;
* smooth pseudo-random "synoptic" variation (hash-seeded, interpolated between knots), so
  neighbouring hours agree and the same request always gets the same answer;
* weather events per 1-degree region and 48-hour block: rain spells, heat, cold snaps
  (snow when it is cold enough), wind and storms, each with a smooth rise and fall. About
  two blocks in five carry one, so a week-long forecast usually contains something.

Time ``t`` is hours since the Unix epoch (UTC), as a float.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

EVENT_BLOCK_HOURS = 48.0
# Cumulative thresholds on a uniform draw per (region, block).
_EVENT_TABLE = (
    (0.12, "rain"),
    (0.20, "heat"),
    (0.28, "cold"),
    (0.35, "wind"),
    (0.40, "storm"),
)


@lru_cache(maxsize=1 << 18)
def _u(*key) -> float:
    """A uniform number in [0, 1) that depends only on ``key`` (stable across runs)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _smooth(key: tuple, t: float, period: float) -> float:
    """Smooth noise in [0, 1): cosine interpolation between hashed knots ``period`` apart."""
    x = t / period
    k = math.floor(x)
    f = x - k
    a, b = _u(*key, k), _u(*key, k + 1)
    w = (1.0 - math.cos(math.pi * f)) / 2.0
    return a + (b - a) * w


def _cell(lat: float, lon: float) -> tuple[int, int]:
    # 0.1 degree: brands in the same town share their weather.
    return round(lat * 10), round(lon * 10)


def _region(lat: float, lon: float) -> tuple[int, int]:
    return round(lat), round(lon)


def grid_coordinates(lat: float, lon: float) -> tuple[float, float]:
    """Like the real API, answer for the nearest grid point (a 0.02 degree grid here)."""
    return round(round(lat / 0.02) * 0.02, 6), round(round(lon / 0.02) * 0.02, 6)


def elevation(lat: float, lon: float) -> float:
    """A plausible terrain height in metres (mostly lowlands, some hills)."""
    return float(
        round(5 + 900 * _u("elevation", _region(lat, lon)) ** 3 + 60 * _u("elev2", _cell(lat, lon)))
    )


def event_at(lat: float, lon: float, t: float) -> tuple[str, float, float] | None:
    """(kind, intensity 0.6-1, envelope 0-1) of the weather event at ``t``, if any."""
    region = _region(lat, lon)
    block = math.floor(t / EVENT_BLOCK_HOURS)
    r = _u("event", region, block)
    kind = next((k for limit, k in _EVENT_TABLE if r < limit), None)
    if kind is None:
        return None
    length = 18.0 + 22.0 * _u("event-length", region, block)
    start = block * EVENT_BLOCK_HOURS + (EVENT_BLOCK_HOURS - length) * _u(
        "event-start", region, block
    )
    if not start <= t <= start + length:
        return None
    envelope = math.sin(math.pi * (t - start) / length) ** 2
    intensity = 0.6 + 0.4 * _u("event-intensity", region, block)
    return kind, intensity, envelope


def _day_of_year(t: float) -> float:
    return (t / 24.0 - 0.0) % 365.2425  # epoch day 0 is 1 January


def _is_day(lat: float, lon: float, t: float) -> int:
    doy = _day_of_year(t)
    decl = math.radians(23.44) * math.sin(2 * math.pi * (doy - 81) / 365.2425)
    solar_hour = ((t % 24.0) + lon / 15.0) % 24.0
    hour_angle = math.radians(15.0 * (solar_hour - 12.0))
    phi = math.radians(lat)
    sin_elev = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(
        hour_angle
    )
    return 1 if sin_elev > math.sin(math.radians(-0.83)) else 0


def weather_code(precip: float, snowfall: float, cloud: float, temp: float, storm: bool) -> int:
    """WMO weather interpretation code, as Open-Meteo reports it."""
    if snowfall > 0.0:
        return 71 if snowfall < 0.5 else 73 if snowfall < 1.5 else 75
    if precip > 0.0:
        if storm and precip >= 1.5 and temp > 10:
            return 95
        if storm:
            return 81 if precip < 2.5 else 82
        if precip < 0.3:
            return 51
        return 61 if precip < 1.0 else 63 if precip < 3.0 else 65
    if cloud < 20:
        return 0
    return 1 if cloud < 50 else 2 if cloud < 80 else 3


def sample(lat: float, lon: float, t: float, elev: float | None = None) -> dict[str, float]:
    """Every variable at one place and time, in metric units (°C, mm, cm, km/h, %, hPa)."""
    cell = _cell(lat, lon)
    region = _region(lat, lon)
    alat = min(abs(lat), 90.0)
    if elev is None or math.isnan(elev):
        elev = elevation(lat, lon)

    doy = _day_of_year(t)
    season = math.cos(2 * math.pi * (doy - 200) / 365.2425) * (1.0 if lat >= 0 else -1.0)
    continentality = 0.7 + 0.6 * _u("continentality", region)
    t_mean = 27.0 - 0.0062 * lat * lat
    season_amp = 0.2 * alat * continentality
    solar_hour = ((t % 24.0) + lon / 15.0) % 24.0
    diurnal = math.cos(2 * math.pi * (solar_hour - 15.0) / 24.0)

    wet = 0.6 * _smooth(("wet", cell), t, 36.0) + 0.4 * _smooth(("wet2", cell), t, 9.0)
    dry_belt = math.exp(-(((alat - 27.0) / 9.0) ** 2))
    threshold = 0.60 + 0.15 * dry_belt
    diurnal_amp = 3.0 + 3.0 * dry_belt + 2.0 * (1.0 - wet)
    synoptic = (_smooth(("temp", cell), t, 72.0) - 0.5) * 8.0 + (
        _smooth(("temp2", cell), t, 20.0) - 0.5
    ) * 3.0

    temp = t_mean + season_amp * season + diurnal_amp * diurnal + synoptic - 0.0065 * elev
    wind = (6.0 + 12.0 * _smooth(("wind", cell), t, 30.0) + 5.0 * min(alat, 70.0) / 70.0) * (
        1.0 + 0.15 * diurnal
    )
    gust_factor = 1.45 + 0.3 * _smooth(("gust", cell), t, 6.0)
    pressure = 1013.0 + 22.0 * (0.5 - wet)
    storm = False

    event = event_at(lat, lon, t)
    if event is not None:
        kind, intensity, env = event
        if kind == "heat":
            temp += (7.0 + 5.0 * intensity) * env * (0.8 + 0.2 * max(0.0, diurnal))
            wet -= 0.3 * env
        elif kind == "cold":
            temp -= (8.0 + 6.0 * intensity) * env
            wet += 0.12 * env  # cold air meeting moisture: snow where it is cold enough
        elif kind == "rain":
            wet += (0.35 + 0.15 * intensity) * env
        elif kind == "wind":
            wind += (30.0 + 30.0 * intensity) * env
            gust_factor += 0.2 * env
            pressure -= 12.0 * env
        elif kind == "storm":
            wet += (0.4 + 0.2 * intensity) * env
            wind += (25.0 + 25.0 * intensity) * env
            gust_factor += 0.3 * env
            temp -= 2.0 * env
            pressure -= 18.0 * env
            storm = env > 0.3

    excess = wet - threshold
    precip = max(0.0, excess) * 9.0
    if precip < 0.05:
        precip = 0.0
    probability = 100.0 / (1.0 + math.exp(-(wet - threshold + 0.04) * 14.0))
    cloud = min(1.0, max(0.0, (wet - 0.2) / 0.5)) * 100.0
    rh = min(100.0, max(8.0, 40.0 + 55.0 * wet - 12.0 * diurnal * (1.0 - min(1.0, wet))))

    if temp <= 0.5:
        rain, snowfall = 0.0, precip * 0.7
    elif temp < 2.0:
        rain, snowfall = precip * 0.5, precip * 0.5 * 0.7
    else:
        rain, snowfall = precip, 0.0

    # Magnus dew point and Steadman apparent temperature.
    a, b = 17.27, 237.7
    gamma = (a * temp) / (b + temp) + math.log(max(rh, 1.0) / 100.0)
    dew = (b * gamma) / (a - gamma)
    vapour = rh / 100.0 * 6.105 * math.exp(17.27 * temp / (237.7 + temp))
    apparent = temp + 0.33 * vapour - 0.70 * (wind / 3.6) - 4.0

    wind_dir = (250.0 + 140.0 * (_smooth(("wind-dir", cell), t, 24.0) - 0.5)) % 360.0

    return {
        "temperature_2m": temp,
        "apparent_temperature": apparent,
        "dew_point_2m": dew,
        "relative_humidity_2m": rh,
        "precipitation": precip,
        "rain": rain,
        "showers": 0.0,
        "snowfall": snowfall,
        "precipitation_probability": probability,
        "weather_code": float(weather_code(precip, snowfall, cloud, temp, storm)),
        "cloud_cover": cloud,
        "pressure_msl": pressure,
        "wind_speed_10m": wind,
        "wind_direction_10m": wind_dir,
        "wind_gusts_10m": wind * gust_factor,
        "is_day": float(_is_day(lat, lon, t)),
    }
