"""Place-relative weather thresholds, event detection and the batched Open-Meteo client."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from marba_dagster.connectors.http import ApiClient, HttpPolicy, RateLimited
from marba_dagster.connectors.open_meteo import OpenMeteoClient
from marba_dagster.core.opportunities.weather import (
    HourlySeries,
    detect_events,
    match_event_key,
    rounded_location,
    seasonal_norm,
    thresholds_for,
)

NOW = datetime(2025, 6, 20, 12, 0, tzinfo=timezone.utc)


def series(
    history_max,
    history_min,
    forecast_temp,
    *,
    rain=None,
    gusts=None,
    snow=None,
    hours_back=168,
    ahead=72,
):
    """Hourly series: a daily cycle between the history min/max, then a flat forecast."""
    start = int(NOW.timestamp()) - hours_back * 3600
    times, temp = [], []
    for i in range(hours_back + ahead):
        t = start + i * 3600
        times.append(t)
        if t < int(NOW.timestamp()):
            frac = (i % 24) / 23
            temp.append(
                history_min
                + (history_max - history_min) * (1 - abs(frac - 0.6) / 0.6 if frac <= 1 else 0)
            )
        else:
            temp.append(forecast_temp)
    n = len(times)
    return HourlySeries(times, temp, rain or [0.0] * n, snow or [0.0] * n, gusts or [20.0] * n)


def test_a_hot_day_in_oslo_is_not_a_hot_day_in_phoenix():
    oslo, phoenix = (59.91, 10.75), (33.45, -112.07)
    oslo_events, oslo_th = detect_events(oslo[0], series(19, 10, 28.0), NOW)
    phx_events, phx_th = detect_events(phoenix[0], series(41, 27, 28.0), NOW)
    assert [e.kind for e in oslo_events] == ["heat"]
    assert "heat" not in [e.kind for e in phx_events]
    assert phx_th.heat_c > oslo_th.heat_c + 10
    # 44 °C is hot even for Phoenix
    hot, _ = detect_events(phoenix[0], series(41, 27, 44.0), NOW)
    assert "heat" in [e.kind for e in hot]
    assert oslo_th.basis == "seasonal norm + recent week" and oslo_th.history_days >= 3


def test_without_history_the_seasonal_norm_decides():
    short = series(0, 0, 5.0, hours_back=0)
    th = thresholds_for(59.9, short, datetime(2025, 1, 15, tzinfo=timezone.utc))
    assert th.basis == "seasonal norm" and th.history_days == 0
    jan_max, _ = seasonal_norm(59.9, datetime(2025, 1, 15, tzinfo=timezone.utc))
    jul_max, _ = seasonal_norm(59.9, datetime(2025, 7, 15, tzinfo=timezone.utc))
    south_jan, _ = seasonal_norm(-33.9, datetime(2025, 1, 15, tzinfo=timezone.utc))
    south_jul, _ = seasonal_norm(-33.9, datetime(2025, 7, 15, tzinfo=timezone.utc))
    assert jul_max > jan_max + 15 and south_jan > south_jul  # seasons flip between hemispheres


def test_rain_snow_wind_and_cold_events():
    n = 168 + 72
    rain = [0.0] * n
    for i in range(168 + 5, 168 + 11):
        rain[i] = 1.5  # 9 mm over 6 hours, starting 5 h from now
    gusts = [25.0] * n
    gusts[168 + 30] = gusts[168 + 31] = 80.0
    snow = [0.0] * n
    for i in range(168 + 40, 168 + 44):
        snow[i] = 0.6
    s = series(12, 4, 8.0, rain=rain, gusts=gusts, snow=snow)
    events, th = detect_events(59.9, s, NOW)
    kinds = {e.kind: e for e in events}
    assert set(kinds) >= {"rain", "wind", "snow"}
    assert kinds["rain"].peak == pytest.approx(9.0) and kinds["rain"].start == NOW + timedelta(
        hours=5
    )
    assert kinds["rain"].end == NOW + timedelta(hours=11)
    assert kinds["wind"].peak == 80.0 and kinds["snow"].peak == pytest.approx(2.4)
    cold, _ = detect_events(45.0, series(15, 5, -9.0), NOW)
    assert "cold" in {e.kind for e in cold}
    # a rainy place needs more rain to call it an event
    wet = [2.0 if i < 168 else 0.0 for i in range(n)]
    wet[168 + 5 : 168 + 11] = [1.5] * 6
    events_wet, th_wet = detect_events(59.9, series(12, 4, 8.0, rain=wet), NOW)
    assert th_wet.rain_total_mm > th.rain_total_mm and "rain" not in {e.kind for e in events_wet}


def test_event_keys_are_stable_when_the_forecast_shifts():
    s = series(19, 10, 28.0)
    ev = detect_events(59.91, s, NOW)[0][0]
    key = match_event_key(ev, "59.90,10.80", [])
    shifted = detect_events(59.91, s, NOW + timedelta(hours=2))[0][0]
    assert shifted.start != ev.start
    assert match_event_key(shifted, "59.90,10.80", [(key, "heat", ev.start, ev.end)]) == key
    assert match_event_key(shifted, "59.90,10.80", [(key, "rain", ev.start, ev.end)]) != key
    assert rounded_location(59.9139, 10.7522) == (59.9, 10.8)


def test_open_meteo_batch_is_one_request_for_many_places(sandbox):
    locs = [(59.9, 10.8), (33.4, -112.1), (51.5, -0.1)]
    with ApiClient(sandbox.env()["MARBA_OPEN_METEO_URL"]) as c:
        got = OpenMeteoClient(c).forecast(locs)
    assert sandbox.request_count("open_meteo.forecast") == 1
    assert [g.requested for g in got] == locs
    for g in got:
        assert len(g.time) == 240 and len(g.hourly["temperature_2m"]) == 240
    # a 429 on one batch is reported for that batch only
    sandbox.clear_requests()
    sandbox.faults.add("open_meteo.forecast", "rate_limit", times=1, retry_after=0)
    policy = HttpPolicy(max_attempts=1)
    with ApiClient(sandbox.env()["MARBA_OPEN_METEO_URL"], policy=policy) as c:
        res = OpenMeteoClient(c).forecast_batches(locs, batch_size=2)
    assert isinstance(res[0].error, RateLimited) and res[0].forecasts is None
    assert res[1].error is None and len(res[1].forecasts) == 1
    assert sandbox.request_count("open_meteo.forecast") == 2
