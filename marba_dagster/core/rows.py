"""The rows the pipeline reads from the app's tables, checked at the boundary.

The MARBA app writes ``brands``, ``competitors``, ``platform_accounts`` and
``scheduled_content``; a careless write (keywords holding numbers, a latitude of 999, watch
URLs stored as one string, social accounts stored as a list) must sink only its own row,
never a step for every brand. Each table has a typed model (pydantic) of what the pipeline
relies on, and one function per table returning the cleaned row (or None) and the problems
found, each naming the row, its brand and the field. (``scheduled_content`` rows are
checked by the publisher's own rules, ``core.publishing``, before they are claimed.)

What happens to a bad value, field by field (``Problem.action`` says which):

* **dropped elements** - ``keywords`` and ``watch_urls``: the elements that are not
  non-empty strings are dropped and the rest kept (a brand with three good keywords and one
  ``null`` still gets its news);
* **field ignored** - a field of the wrong shape is read as empty: ``keywords`` or
  ``watch_urls`` that are not a list, ``social_accounts`` that is not an object, a city,
  country or feed URL that is not text;
* **no location** - a latitude outside [-90, 90] or a longitude outside [-180, 180] (or not
  a number) clears both: the brand gets no weather, everything else as usual;
* **row skipped** - a row whose identity is unusable (``id``, ``name``, ``industry`` or the
  brand of a competitor/account/post not text) is left out of the run entirely.

No I/O here: services apply these where store rows enter them, and the assets report the
problems (``job_logs`` warnings naming brand and field, run metadata, the
``all_brands_processed`` WARN check).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

__all__ = [
    "BrandRow",
    "CompetitorRow",
    "PlatformAccountRow",
    "Problem",
    "check_brand",
    "check_competitor",
    "check_platform_account",
]

DROPPED = "dropped elements"
IGNORED = "field ignored"
NO_LOCATION = "no location"
SKIPPED = "row skipped"


@dataclass(frozen=True)
class Problem:
    """One bad value of one row: which table, row, brand and field, what is wrong with it
    and what the pipeline did (:data:`DROPPED`, :data:`IGNORED`, :data:`NO_LOCATION`,
    :data:`SKIPPED`)."""

    table: str
    row_id: str
    brand_id: str
    field: str
    message: str
    action: str

    @property
    def skips_row(self) -> bool:
        return self.action == SKIPPED

    def text(self) -> str:
        """The operator's line: ``brands b7: keywords: 3 of 4 elements ... (dropped elements)``."""
        row = self.row_id if self.row_id == self.brand_id else f"{self.row_id} of {self.brand_id}"
        return f"invalid {self.table} row {row}: {self.field}: {self.message} ({self.action})"


class _Row(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    identity_fields: ClassVar[tuple[str, ...]] = ()

    @field_validator("*", mode="before")
    @classmethod
    def _no_blank_identity(cls, value: Any, info) -> Any:
        if info.field_name in cls.identity_fields and (
            not isinstance(value, str) or not value.strip()
        ):
            raise ValueError("must be non-empty text")
        return value


class BrandRow(_Row):
    """What the pipeline uses of a ``brands`` row."""

    identity_fields = ("id", "name", "industry")

    id: str
    name: str
    industry: str
    country_code: str | None = None
    subdivision: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    keywords: list[str] = []


class CompetitorRow(_Row):
    """What the pipeline uses of a ``competitors`` row."""

    identity_fields = ("id", "brand_id")

    id: str
    brand_id: str
    name: str = ""
    website_url: str | None = None
    watch_urls: list[str] = []
    feed_url: str | None = None
    social_accounts: dict[str, Any] = {}


class PlatformAccountRow(_Row):
    """What the pipeline uses of a ``platform_accounts`` row."""

    identity_fields = ("id", "brand_id", "platform", "external_account_id")

    id: str
    brand_id: str
    platform: str
    external_account_id: str
    access_token: str | None = None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _clean_text(
    row: dict, name: str, problems: list[Problem], make: Any, *, allow_none: bool = True
) -> None:
    value = row.get(name)
    if value is None and allow_none:
        return
    if not isinstance(value, str):
        problems.append(make(name, f"is {_kind(value)}, not text", IGNORED))
        row[name] = None


def _clean_strings(row: dict, name: str, problems: list[Problem], make: Any) -> None:
    """A list of non-empty strings: other shapes ignored, bad elements dropped."""
    value = row.get(name)
    if value is None:
        row[name] = []
        return
    if not isinstance(value, list):
        what = f"is {_kind(value)}" + (f" {value!r:.60}" if isinstance(value, str) else "")
        problems.append(make(name, f"{what}, not a list", IGNORED))
        row[name] = []
        return
    good = [v.strip() for v in value if isinstance(v, str) and v.strip()]
    if len(good) != len(value):
        bad = sorted(
            {"empty text" if isinstance(v, str) else _kind(v) for v in value}
            - ({"empty text"} if all(not isinstance(v, str) or v.strip() for v in value) else set())
        )
        problems.append(
            make(
                name,
                f"{len(value) - len(good)} of {len(value)} elements are not non-empty text "
                f"({', '.join(bad)})",
                DROPPED,
            )
        )
    row[name] = good


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _finish(
    model: type[_Row], row: dict, problems: list[Problem], make: Any
) -> tuple[dict | None, list[Problem]]:
    try:
        model.model_validate(row)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "row"
        problems.append(make(field, first.get("msg", "invalid"), SKIPPED))
        return None, problems
    return row, problems


def _maker(table: str, row: Mapping[str, Any], brand_field: str):
    row_id = str(row.get("id"))
    brand_id = str(row.get(brand_field))

    def make(field: str, message: str, action: str) -> Problem:
        return Problem(table, row_id, brand_id, field, message, action)

    return make


def check_brand(raw: Mapping[str, Any]) -> tuple[dict | None, list[Problem]]:
    """The brand row cleaned (see the module doc) or None, and its problems."""
    row, problems = dict(raw), []
    make = _maker("brands", row, "id")
    for name in ("country_code", "subdivision", "city"):
        _clean_text(row, name, problems, make)
    _clean_strings(row, "keywords", problems, make)
    lat, lon = row.get("latitude"), row.get("longitude")
    if lat is not None or lon is not None:
        lat_n, lon_n = _number(lat), _number(lon)
        why = None
        if lat is not None and (lat_n is None or not -90 <= lat_n <= 90):
            why = ("latitude", f"{lat!r:.40} is not a latitude in [-90, 90]")
        elif lon is not None and (lon_n is None or not -180 <= lon_n <= 180):
            why = ("longitude", f"{lon!r:.40} is not a longitude in [-180, 180]")
        if why:
            problems.append(make(why[0], why[1] + "; no weather for this brand", NO_LOCATION))
            row["latitude"] = row["longitude"] = None
        else:
            row["latitude"], row["longitude"] = lat_n, lon_n
    return _finish(BrandRow, row, problems, make)


def check_competitor(raw: Mapping[str, Any]) -> tuple[dict | None, list[Problem]]:
    """The competitor row cleaned (see the module doc) or None, and its problems."""
    row, problems = dict(raw), []
    make = _maker("competitors", row, "brand_id")
    if not isinstance(row.get("name"), str):
        _clean_text(row, "name", problems, make, allow_none=False)
        row["name"] = str(row.get("id"))
    for name in ("website_url", "feed_url"):
        _clean_text(row, name, problems, make)
    _clean_strings(row, "watch_urls", problems, make)
    social = row.get("social_accounts")
    if social is None:
        row["social_accounts"] = {}
    elif not isinstance(social, dict):
        problems.append(make("social_accounts", f"is {_kind(social)}, not an object", IGNORED))
        row["social_accounts"] = {}
    return _finish(CompetitorRow, row, problems, make)


def check_platform_account(raw: Mapping[str, Any]) -> tuple[dict | None, list[Problem]]:
    """The platform account row, or None when its identity is unusable; and its problems."""
    row, problems = dict(raw), []
    make = _maker("platform_accounts", row, "brand_id")
    _clean_text(row, "access_token", problems, make)
    return _finish(PlatformAccountRow, row, problems, make)
