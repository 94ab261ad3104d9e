"""Weather events in a 48-hour forecast, with thresholds relative to the place.

A hot day in Oslo is not a hot day in Phoenix, so no threshold is a fixed number alone.
Each place gets its thresholds from two references:

* its **seasonal norm**: a zonal climatology by latitude and day of year (annual mean
  falling with latitude, a seasonal swing growing with latitude, flipped between the
  hemispheres), giving the expected daily maximum and minimum for the date;
* its **own recent weather**: the past seven days of the same forecast request
  (``past_days=7``), whose daily maxima/minima, rain, snow and gusts show what is normal
  there right now.

heat   hourly temperature >= max(expected max + 6 °C, recent p90 daily max + 2 °C, 20 °C)
cold   hourly temperature <= min(expected min - 6 °C, recent p10 daily min - 2 °C, 10 °C)
rain   a spell of >= 0.3 mm hours totalling >= max(3 mm, 1.5 x recent mean daily rain)
snow   snowfall totalling >= max(0.5 cm, 1.5 x recent mean daily snowfall)
wind   gusts >= max(55 km/h, recent p95 gust + 10 km/h)

The expected max/min blend the norm with the recent week half and half when at least three
days of history exist (otherwise the norm alone). Hours closer than ``MERGE_GAP_HOURS``
join one event. Pure functions: numbers in, :class:`WeatherEvent` out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

HORIZON_HOURS = 48
MERGE_GAP_HOURS = 3
HEAT_ANOMALY_C, COLD_ANOMALY_C = 6.0, 6.0
HEAT_FLOOR_C, COLD_CEILING_C = 20.0, 10.0
RAIN_HOUR_MM, RAIN_MIN_TOTAL_MM = 0.3, 3.0
SNOW_MIN_TOTAL_CM = 0.5
WIND_MIN_GUST_KMH = 55.0
KINDS = ("rain", "heat", "cold", "snow", "wind")


@dataclass(frozen=True)
class HourlySeries:
    """Hourly values at one place: ``time`` in Unix seconds (UTC), metric units."""

    time: Sequence[int]
    temperature_2m: Sequence[float | None]
    precipitation: Sequence[float | None]
    snowfall: Sequence[float | None]
    wind_gusts_10m: Sequence[float | None]


@dataclass(frozen=True)
class Thresholds:
    heat_c: float
    cold_c: float
    rain_total_mm: float
    snow_total_cm: float
    wind_gust_kmh: float
    expected_max_c: float
    expected_min_c: float
    history_days: int
    basis: str  # "seasonal norm" or "seasonal norm + recent week"

    def as_dict(self) -> dict:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class WeatherEvent:
    kind: str
    start: datetime
    end: datetime  # exclusive: the hour after the last hour of the event
    peak: float  # °C for heat/cold, mm or cm totals for rain/snow, km/h for wind
    threshold: float
    unit: str
    hours: int
    strength: float  # 0..1: how far beyond the threshold

    def title(self, place: str) -> str:
        when = self.start.strftime("%a %H:%M UTC")
        text = {
            "rain": f"Rain in {place}: {self.peak:.1f} mm from {when}",
            "heat": f"Heat in {place}: up to {self.peak:.1f} °C from {when}",
            "cold": f"Cold snap in {place}: down to {self.peak:.1f} °C from {when}",
            "snow": f"Snow in {place}: {self.peak:.1f} cm from {when}",
            "wind": f"Strong wind in {place}: gusts {self.peak:.0f} km/h from {when}",
        }
        return text[self.kind]


def seasonal_norm(latitude: float, when: datetime) -> tuple[float, float]:
    """(expected daily max, expected daily min) in °C from latitude and day of year."""
    alat = min(abs(latitude), 90.0)
    doy = when.timetuple().tm_yday
    peak_day = 200 if latitude >= 0 else 17  # warmest about three weeks after the solstice
    season = math.cos(2 * math.pi * (doy - peak_day) / 365.25)
    annual_mean = 27.5 - 0.0063 * alat * alat
    half_range = 0.2 * alat
    mean = annual_mean + half_range * season
    diurnal = 4.5 if 15 <= alat <= 40 else 3.5  # dry subtropics swing more
    return mean + diurnal, mean - diurnal


def _arr(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _daily(times: np.ndarray, values: np.ndarray, how: str) -> np.ndarray:
    days = times // 86400
    out = []
    for d in np.unique(days):
        v = values[(days == d) & ~np.isnan(values)]
        if len(v) >= 18:  # a mostly complete day
            out.append({"max": v.max(), "min": v.min(), "sum": v.sum()}[how])
    return np.array(out, dtype=float)


def thresholds_for(latitude: float, series: HourlySeries, now: datetime) -> Thresholds:
    """The place's thresholds from its seasonal norm and the history part of ``series``."""
    t = np.asarray(series.time, dtype=np.int64)
    past = t < int(now.timestamp())
    temp = _arr(series.temperature_2m)
    precip = _arr(series.precipitation)
    snow = _arr(series.snowfall)
    gust = _arr(series.wind_gusts_10m)
    norm_max, norm_min = seasonal_norm(latitude, now)
    dmax = _daily(t[past], temp[past], "max")
    dmin = _daily(t[past], temp[past], "min")
    history_days = int(min(len(dmax), len(dmin)))
    if history_days >= 3:
        exp_max = 0.5 * norm_max + 0.5 * float(dmax.mean())
        exp_min = 0.5 * norm_min + 0.5 * float(dmin.mean())
        heat = max(exp_max + HEAT_ANOMALY_C, float(np.percentile(dmax, 90)) + 2.0, HEAT_FLOOR_C)
        cold = min(exp_min - COLD_ANOMALY_C, float(np.percentile(dmin, 10)) - 2.0, COLD_CEILING_C)
        rain_daily = _daily(t[past], precip[past], "sum")
        snow_daily = _daily(t[past], snow[past], "sum")
        g = gust[past][~np.isnan(gust[past])]
        rain = max(RAIN_MIN_TOTAL_MM, 1.5 * float(rain_daily.mean()) if len(rain_daily) else 0.0)
        snow_t = max(SNOW_MIN_TOTAL_CM, 1.5 * float(snow_daily.mean()) if len(snow_daily) else 0.0)
        wind = max(WIND_MIN_GUST_KMH, float(np.percentile(g, 95)) + 10.0 if len(g) else 0.0)
        basis = "seasonal norm + recent week"
    else:
        exp_max, exp_min = norm_max, norm_min
        heat = max(exp_max + HEAT_ANOMALY_C, HEAT_FLOOR_C)
        cold = min(exp_min - COLD_ANOMALY_C, COLD_CEILING_C)
        rain, snow_t, wind = RAIN_MIN_TOTAL_MM, SNOW_MIN_TOTAL_CM, WIND_MIN_GUST_KMH
        basis = "seasonal norm"
    return Thresholds(heat, cold, rain, snow_t, wind, exp_max, exp_min, history_days, basis)


def _runs(mask: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """[start, end) index runs of True, joining runs separated by at most ``gap`` False."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    runs, start, prev = [], int(idx[0]), int(idx[0])
    for i in idx[1:]:
        i = int(i)
        if i - prev - 1 > gap:
            runs.append((start, prev + 1))
            start = i
        prev = i
    runs.append((start, prev + 1))
    return runs


def _strength(excess: float, scale: float) -> float:
    return round(min(1.0, 0.5 + 0.5 * max(0.0, excess) / scale), 4)


def detect_events(
    latitude: float, series: HourlySeries, now: datetime, horizon_hours: int = HORIZON_HOURS
) -> tuple[list[WeatherEvent], Thresholds]:
    """Events starting or under way within ``horizon_hours`` after ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    th = thresholds_for(latitude, series, now)
    t = np.asarray(series.time, dtype=np.int64)
    start_s = int(now.timestamp()) // 3600 * 3600
    window = (t >= start_s) & (t < start_s + horizon_hours * 3600)
    if not window.any():
        return [], th
    tw = t[window]
    temp = _arr(series.temperature_2m)[window]
    precip = np.nan_to_num(_arr(series.precipitation)[window])
    snow = np.nan_to_num(_arr(series.snowfall)[window])
    gust = _arr(series.wind_gusts_10m)[window]

    def at(i: int) -> datetime:
        return datetime.fromtimestamp(int(tw[i]), tz=timezone.utc)

    def end_at(i: int) -> datetime:
        return at(i - 1) + timedelta(hours=1)

    events: list[WeatherEvent] = []
    with np.errstate(invalid="ignore"):
        heat_mask = temp >= th.heat_c
        cold_mask = temp <= th.cold_c
        wind_mask = gust >= th.wind_gust_kmh
    for a, b in _runs(heat_mask, MERGE_GAP_HOURS):
        peak = float(np.nanmax(temp[a:b]))
        events.append(
            WeatherEvent(
                "heat",
                at(a),
                end_at(b),
                round(peak, 1),
                round(th.heat_c, 1),
                "°C",
                int(heat_mask[a:b].sum()),
                _strength(peak - th.heat_c, 6.0),
            )
        )
    for a, b in _runs(cold_mask, MERGE_GAP_HOURS):
        low = float(np.nanmin(temp[a:b]))
        events.append(
            WeatherEvent(
                "cold",
                at(a),
                end_at(b),
                round(low, 1),
                round(th.cold_c, 1),
                "°C",
                int(cold_mask[a:b].sum()),
                _strength(th.cold_c - low, 6.0),
            )
        )
    for a, b in _runs(precip >= RAIN_HOUR_MM, MERGE_GAP_HOURS):
        total = float(precip[a:b].sum())
        if total >= th.rain_total_mm:
            events.append(
                WeatherEvent(
                    "rain",
                    at(a),
                    end_at(b),
                    round(total, 1),
                    round(th.rain_total_mm, 1),
                    "mm",
                    int((precip[a:b] >= RAIN_HOUR_MM).sum()),
                    _strength(total - th.rain_total_mm, 10.0),
                )
            )
    for a, b in _runs(snow > 0.0, MERGE_GAP_HOURS):
        total = float(snow[a:b].sum())
        if total >= th.snow_total_cm:
            events.append(
                WeatherEvent(
                    "snow",
                    at(a),
                    end_at(b),
                    round(total, 2),
                    round(th.snow_total_cm, 2),
                    "cm",
                    int((snow[a:b] > 0).sum()),
                    _strength(total - th.snow_total_cm, 5.0),
                )
            )
    for a, b in _runs(wind_mask, MERGE_GAP_HOURS):
        peak = float(np.nanmax(gust[a:b]))
        events.append(
            WeatherEvent(
                "wind",
                at(a),
                end_at(b),
                round(peak, 0),
                round(th.wind_gust_kmh, 0),
                "km/h",
                int(wind_mask[a:b].sum()),
                _strength(peak - th.wind_gust_kmh, 30.0),
            )
        )
    events.sort(key=lambda e: (e.start, e.kind))
    return events, th


def rounded_location(latitude: float, longitude: float, step: float = 0.1) -> tuple[float, float]:
    """The grid point a brand's weather is fetched for (0.1° ≈ 11 km: one town)."""
    return round(round(latitude / step) * step, 4), round(round(longitude / step) * step, 4)


def match_event_key(
    event: WeatherEvent, place_key: str, existing: Sequence[tuple[str, str, datetime, datetime]]
) -> str:
    """A stable dedup key for ``event``: the key of an existing event of the same kind at the
    same place whose window overlaps (or nearly touches) this one, else a new key from the
    kind, the place and the event's start hour. Forecasts shift an event by an hour or two
    between runs; this keeps it one signal and one opportunity.

    ``existing``: (key, kind, start, end) of the place's current weather signals.
    """
    slack = timedelta(hours=MERGE_GAP_HOURS)
    for key, kind, start, end in existing:
        if kind == event.kind and start - slack <= event.end and event.start <= end + slack:
            return key
    return f"weather:{event.kind}:{place_key}:{event.start.strftime('%Y%m%dT%H')}"
