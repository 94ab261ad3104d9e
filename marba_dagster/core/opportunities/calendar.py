"""Public holidays (the ``holidays`` package) plus a marketing calendar, with lead times.

An event becomes a seasonal signal from ``lead_days`` before it starts until it ends; it
expires at the end of its last day in the brand's timezone. Dates that differ by country
(Mother's and Father's Day, back-to-school) follow the country's custom; countries not
listed use the most common date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from dateutil.easter import easter

PUBLIC_HOLIDAY_LEAD_DAYS = 10


@dataclass(frozen=True)
class CalendarEvent:
    kind: str  # relevance key: valentines_day, black_friday, public_holiday, ...
    name: str
    start: date
    end: date  # inclusive
    lead_days: int
    source: str  # "marketing_calendar" or "holidays"

    @property
    def dedup_key(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:60]
        return f"seasonal:{self.kind}:{slug}:{self.start.isoformat()}"

    def opens(self) -> date:
        return self.start - timedelta(days=self.lead_days)

    def expires_at(self, tz: str | None) -> datetime:
        """The end of the event's last day in ``tz`` (UTC when unknown)."""
        zone = _zone(tz)
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=zone).astimezone(
            ZoneInfo("UTC")
        )

    def starts_at(self, tz: str | None) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=_zone(tz)).astimezone(ZoneInfo("UTC"))


def _zone(tz: str | None):
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_date(now: datetime, tz: str | None) -> date:
    """``now``'s date in ``tz`` (UTC when unknown)."""
    return now.astimezone(_zone(tz)).date()


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based; -1 = last) ``weekday`` (Mon=0) of a month."""
    if n > 0:
        d = date(year, month, 1)
        d += timedelta(days=(weekday - d.weekday()) % 7)
        return d + timedelta(weeks=n - 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - timedelta(days=1)
    return d - timedelta(days=(d.weekday() - weekday) % 7)


SUN, THU = 6, 3


def mothers_day(year: int, cc: str) -> date:
    cc = cc.upper()
    if cc in ("GB", "IE"):
        return easter(year) - timedelta(days=21)  # Mothering Sunday
    if cc == "FR":
        d = nth_weekday(year, 5, SUN, -1)
        return d + timedelta(days=7) if d == easter(year) + timedelta(days=49) else d
    if cc == "ES":
        return nth_weekday(year, 5, SUN, 1)
    if cc == "MX":
        return date(year, 5, 10)
    if cc == "NO":
        return nth_weekday(year, 2, SUN, 2)
    return nth_weekday(year, 5, SUN, 2)


def fathers_day(year: int, cc: str) -> date:
    cc = cc.upper()
    if cc in ("AU", "NZ"):
        return nth_weekday(year, 9, SUN, 1)
    if cc == "DE":
        return easter(year) + timedelta(days=39)  # Vatertag, Ascension Day
    if cc in ("IT", "ES"):
        return date(year, 3, 19)
    if cc == "BR":
        return nth_weekday(year, 8, SUN, 2)
    if cc == "NO":
        return nth_weekday(year, 11, SUN, 2)
    return nth_weekday(year, 6, SUN, 3)


def back_to_school(year: int, cc: str) -> date:
    cc = cc.upper()
    return {
        "US": date(year, 8, 18),
        "MX": date(year, 8, 25),
        "JP": date(year, 4, 6),
        "AU": date(year, 1, 28),
        "NZ": date(year, 2, 2),
        "BR": date(year, 2, 3),
        "IN": date(year, 6, 2),
    }.get(cc, date(year, 9, 1))


def thanksgiving_us(year: int) -> date:
    return nth_weekday(year, 11, THU, 4)


def marketing_events(year: int, cc: str) -> list[CalendarEvent]:
    """The marketing calendar of one year for a country."""
    bf = thanksgiving_us(year) + timedelta(days=1)
    m = "marketing_calendar"
    return [
        CalendarEvent(
            "valentines_day", "Valentine's Day", date(year, 2, 14), date(year, 2, 14), 21, m
        ),
        CalendarEvent(
            "mothers_day", "Mother's Day", mothers_day(year, cc), mothers_day(year, cc), 21, m
        ),
        CalendarEvent(
            "fathers_day", "Father's Day", fathers_day(year, cc), fathers_day(year, cc), 21, m
        ),
        CalendarEvent(
            "back_to_school",
            "Back to school",
            back_to_school(year, cc),
            back_to_school(year, cc) + timedelta(days=6),
            28,
            m,
        ),
        CalendarEvent("halloween", "Halloween", date(year, 10, 31), date(year, 10, 31), 28, m),
        CalendarEvent("black_friday", "Black Friday", bf, bf, 14, m),
        CalendarEvent(
            "cyber_monday", "Cyber Monday", bf + timedelta(days=3), bf + timedelta(days=3), 7, m
        ),
        CalendarEvent("holiday_shopping", "Holiday shopping season", bf, date(year, 12, 24), 7, m),
        CalendarEvent("new_year", "New Year", date(year, 12, 31), date(year + 1, 1, 1), 10, m),
    ]


def public_holidays(
    years: list[int], cc: str, subdivision: str | None
) -> tuple[list[CalendarEvent], str | None]:
    """Public holidays for the country (and subdivision); (events, note). The note explains
    a fallback: unknown subdivision -> country only; unknown country -> none."""
    note = None
    supported = holidays_lib.list_supported_countries()
    code = cc.upper()
    if code not in supported:
        return [], f"no public holiday calendar for country {cc!r}"
    subdiv = subdivision or None
    if subdiv is not None and subdiv not in supported[code]:
        note = f"subdivision {subdivision!r} unknown for {code}; using national holidays"
        subdiv = None
    table = holidays_lib.country_holidays(code, subdiv=subdiv, years=years)
    out = []
    for day, name in sorted(table.items()):
        out.append(
            CalendarEvent(
                "public_holiday", str(name), day, day, PUBLIC_HOLIDAY_LEAD_DAYS, "holidays"
            )
        )
    return out, note


def active_events(
    today: date, cc: str | None, subdivision: str | None = None
) -> tuple[list[CalendarEvent], str | None]:
    """Events whose window (lead time to end) contains ``today``; (events, note)."""
    if not cc:
        return [], "brand has no country: no calendar events"
    years = [today.year - 1, today.year, today.year + 1]
    events: list[CalendarEvent] = []
    for y in years:
        events.extend(marketing_events(y, cc))
    marketing_days = {e.start for e in events}
    hol, note = public_holidays(years, cc, subdivision)
    # A public holiday on the day of a marketing event (New Year's Day) is the same moment.
    events.extend(
        h
        for h in hol
        if h.start not in marketing_days and h.start - timedelta(days=1) not in marketing_days
    )
    live = [e for e in events if e.opens() <= today <= e.end]
    live.sort(key=lambda e: (e.start, e.kind))
    return live, note
