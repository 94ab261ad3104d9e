"""The marketing calendar and public holidays with lead times."""

from __future__ import annotations

from datetime import date, datetime, timezone

from marba_dagster.core.opportunities import calendar as cal


def test_country_specific_dates():
    assert cal.mothers_day(2025, "US") == date(2025, 5, 11)
    assert cal.mothers_day(2025, "GB") == date(2025, 3, 30)  # Mothering Sunday
    assert cal.mothers_day(2025, "MX") == date(2025, 5, 10)
    assert cal.fathers_day(2025, "US") == date(2025, 6, 15)
    assert cal.fathers_day(2025, "AU") == date(2025, 9, 7)
    assert cal.fathers_day(2025, "DE") == date(2025, 5, 29)  # Ascension Day
    assert cal.thanksgiving_us(2025) == date(2025, 11, 27)
    names = {e.kind: e for e in cal.marketing_events(2025, "US")}
    assert names["black_friday"].start == date(2025, 11, 28)
    assert names["cyber_monday"].start == date(2025, 12, 1)
    assert names["holiday_shopping"].end == date(2025, 12, 24)


def test_lead_time_window():
    kinds = lambda d: {e.kind for e in cal.active_events(d, "US", "CA")[0]}  # noqa: E731
    assert "valentines_day" not in kinds(date(2025, 1, 23))  # 22 days before
    assert "valentines_day" in kinds(date(2025, 1, 24))  # 21 days before: opens
    assert "valentines_day" in kinds(date(2025, 2, 14))
    assert "valentines_day" not in kinds(date(2025, 2, 15))
    assert {"black_friday", "holiday_shopping"} <= kinds(date(2025, 11, 25))
    assert "new_year" in kinds(date(2025, 12, 31))


def test_public_holidays_follow_subdivision_and_fall_back():
    events, note = cal.active_events(date(2025, 3, 10), "US", "MA")
    assert note is None
    assert "Patriots' Day" not in {e.name for e in events}  # April 21: beyond the 10-day lead
    events, _ = cal.active_events(date(2025, 4, 15), "US", "MA")
    assert "Patriots' Day" in {e.name for e in events}
    events, _ = cal.active_events(date(2025, 4, 15), "US", "CA")
    assert "Patriots' Day" not in {e.name for e in events}
    _, note = cal.active_events(date(2025, 4, 15), "US", "XX")
    assert "subdivision 'XX' unknown" in note
    events, note = cal.active_events(date(2025, 4, 15), None)
    assert events == [] and "no country" in note


def test_expiry_is_end_of_day_in_brand_timezone():
    ev = cal.CalendarEvent(
        "halloween", "Halloween", date(2025, 10, 31), date(2025, 10, 31), 28, "marketing_calendar"
    )
    assert ev.expires_at("America/Los_Angeles") == datetime(2025, 11, 1, 7, 0, tzinfo=timezone.utc)
    assert ev.expires_at("Not/AZone") == datetime(2025, 11, 1, 0, 0, tzinfo=timezone.utc)
    assert ev.dedup_key == "seasonal:halloween:halloween:2025-10-31"
