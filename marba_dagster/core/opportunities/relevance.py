"""Which industries an event lifts: an editable mapping, event kind -> industry -> weight.

``DEFAULT_RELEVANCE`` is the built-in mapping. Operators replace or extend it with a JSON
file named by ``MARBA_RELEVANCE_FILE`` (read by the Dagster asset at run time, never here):
the file has the same shape, ``{"rain": {"coffee shop": 0.9, "umbrellas": 1.0}, ...}``, and
its entries override the defaults event by event and industry by industry; an optional
``"default"`` key sets the weight used when an industry is not listed (else
``UNLISTED_WEIGHT``).

Industries are matched case-insensitively on the brand's ``industry``; a mapping key also
matches when it is a whole word of the industry or of the brand's keywords
(``"coffee"`` matches ``"coffee shop"``), so operators can write generic categories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

UNLISTED_WEIGHT = 0.15

# Weather: rain lifts umbrellas, coffee and delivery; heat lifts drinks and cooling; ...
DEFAULT_RELEVANCE: dict[str, dict[str, float]] = {
    "rain": {
        "umbrellas": 1.0,
        "coffee shop": 0.9,
        "coffee": 0.9,
        "delivery": 0.9,
        "bookstore": 0.7,
        "restaurant": 0.6,
        "bakery": 0.6,
        "home services": 0.7,
        "wine bar": 0.5,
        "yoga studio": 0.5,
        "toy store": 0.5,
        "outdoor gear": 0.5,
        "bike shop": 0.1,
        "ice cream": 0.05,
    },
    "heat": {
        "drinks": 1.0,
        "beverages": 1.0,
        "cooling": 1.0,
        "air conditioning": 1.0,
        "ice cream": 1.0,
        "craft brewery": 0.85,
        "wine bar": 0.6,
        "coffee shop": 0.55,
        "cold brew": 0.9,
        "home services": 0.7,
        "outdoor gear": 0.6,
        "fashion retail": 0.5,
        "bike shop": 0.4,
        "fitness studio": 0.3,
        "pet store": 0.4,
        "florist": 0.3,
    },
    "cold": {
        "heating": 1.0,
        "coffee shop": 0.9,
        "coffee": 0.9,
        "bakery": 0.8,
        "restaurant": 0.6,
        "outdoor gear": 0.8,
        "fashion retail": 0.7,
        "home services": 0.8,
        "wine bar": 0.5,
        "bookstore": 0.4,
        "ice cream": 0.05,
    },
    "snow": {
        "outdoor gear": 1.0,
        "home services": 0.9,
        "delivery": 0.9,
        "coffee shop": 0.8,
        "bakery": 0.6,
        "toy store": 0.5,
        "fashion retail": 0.6,
        "bike shop": 0.1,
    },
    "wind": {
        "home services": 0.8,
        "outdoor gear": 0.6,
        "coffee shop": 0.4,
        "delivery": 0.5,
        "bike shop": 0.2,
    },
    # Calendar
    "public_holiday": {
        "restaurant": 0.7,
        "bakery": 0.7,
        "wine bar": 0.7,
        "craft brewery": 0.7,
        "florist": 0.5,
        "toy store": 0.5,
        "fashion retail": 0.6,
        "outdoor gear": 0.6,
        "coffee shop": 0.5,
        "ice cream": 0.5,
        "bike shop": 0.5,
    },
    "valentines_day": {
        "florist": 1.0,
        "jewelry": 1.0,
        "restaurant": 0.9,
        "wine bar": 0.9,
        "bakery": 0.7,
        "beauty salon": 0.7,
        "fashion retail": 0.6,
        "coffee shop": 0.4,
        "bookstore": 0.4,
    },
    "mothers_day": {
        "florist": 1.0,
        "jewelry": 0.9,
        "beauty salon": 0.9,
        "restaurant": 0.8,
        "bakery": 0.7,
        "fashion retail": 0.6,
        "bookstore": 0.5,
        "yoga studio": 0.4,
        "coffee shop": 0.4,
    },
    "fathers_day": {
        "outdoor gear": 0.9,
        "craft brewery": 0.9,
        "barbershop": 0.8,
        "bike shop": 0.7,
        "restaurant": 0.7,
        "wine bar": 0.6,
        "fashion retail": 0.5,
        "bookstore": 0.5,
    },
    "back_to_school": {
        "fashion retail": 0.9,
        "bookstore": 0.9,
        "toy store": 0.5,
        "barbershop": 0.6,
        "bike shop": 0.6,
        "coffee shop": 0.3,
        "fitness studio": 0.4,
        "yoga studio": 0.4,
    },
    "halloween": {
        "toy store": 0.9,
        "bakery": 0.8,
        "fashion retail": 0.7,
        "craft brewery": 0.5,
        "pet store": 0.6,
        "coffee shop": 0.5,
        "restaurant": 0.4,
        "ice cream": 0.4,
    },
    "black_friday": {
        "fashion retail": 1.0,
        "jewelry": 0.9,
        "outdoor gear": 0.9,
        "toy store": 0.9,
        "bike shop": 0.8,
        "bookstore": 0.7,
        "pet store": 0.6,
        "beauty salon": 0.5,
        "fitness studio": 0.6,
        "yoga studio": 0.5,
    },
    "cyber_monday": {
        "fashion retail": 1.0,
        "jewelry": 0.9,
        "outdoor gear": 0.9,
        "toy store": 0.8,
        "bookstore": 0.7,
        "pet store": 0.5,
        "bike shop": 0.6,
    },
    "holiday_shopping": {
        "toy store": 1.0,
        "jewelry": 1.0,
        "fashion retail": 0.9,
        "bookstore": 0.9,
        "outdoor gear": 0.8,
        "bakery": 0.7,
        "florist": 0.6,
        "wine bar": 0.7,
        "craft brewery": 0.6,
        "pet store": 0.6,
        "beauty salon": 0.6,
    },
    "new_year": {
        "fitness studio": 1.0,
        "yoga studio": 0.9,
        "wine bar": 0.9,
        "restaurant": 0.7,
        "craft brewery": 0.7,
        "beauty salon": 0.6,
        "bakery": 0.5,
        "fashion retail": 0.5,
    },
    # Competitor moves (change_type): how much a brand gains by answering one.
    "pricing_change": {"default": 0.8},
    "product_launch": {"default": 0.75},
    "messaging_shift": {"default": 0.6},
    "website_change": {"default": 0.35},
    "social_activity": {"default": 0.45},
}

_WORD = re.compile(r"[\w']+", re.UNICODE)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text or "")]


class RelevanceError(ValueError):
    """The relevance mapping does not have the expected shape."""


def parse_relevance(
    data: object, *, source: str = "relevance mapping"
) -> dict[str, dict[str, float]]:
    """Validate ``{event: {industry: weight in [0, 1]}}``; raise ``RelevanceError`` naming
    the first bad entry."""
    if not isinstance(data, Mapping):
        raise RelevanceError(
            f"{source}: expected a JSON object of events, got {type(data).__name__}"
        )
    out: dict[str, dict[str, float]] = {}
    for event, industries in data.items():
        if not isinstance(event, str) or not event.strip():
            raise RelevanceError(f"{source}: event names must be non-empty strings")
        if not isinstance(industries, Mapping):
            raise RelevanceError(f"{source}: {event!r} must map industries to weights")
        row: dict[str, float] = {}
        for industry, weight in industries.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise RelevanceError(
                    f"{source}: {event}.{industry} must be a number, got {weight!r}"
                )
            if not 0.0 <= float(weight) <= 1.0:
                raise RelevanceError(f"{source}: {event}.{industry} = {weight} is outside 0..1")
            row[str(industry).strip().lower()] = float(weight)
        out[event.strip().lower()] = row
    return out


def merge_relevance(
    base: Mapping[str, Mapping[str, float]], override: Mapping[str, Mapping[str, float]] | None
) -> dict[str, dict[str, float]]:
    """``base`` with ``override``'s entries laid over it, event by event."""
    merged = {k: dict(v) for k, v in base.items()}
    for event, row in (override or {}).items():
        merged.setdefault(event, {}).update(row)
    return merged


@dataclass
class RelevanceMap:
    """Looks up how relevant an event kind is to a brand."""

    mapping: dict[str, dict[str, float]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_RELEVANCE.items()}
    )

    def weight(
        self, event: str, industry: str | None, keywords: Iterable[str] = ()
    ) -> tuple[float, str]:
        """(weight 0..1, what matched). Exact industry first, then the best whole-word
        match of a mapping key in the industry or the keywords, then the event's default."""
        row = self.mapping.get(event.lower())
        if not row:
            return UNLISTED_WEIGHT, "unlisted event"
        ind = (industry or "").strip().lower()
        if ind and ind in row:
            return row[ind], f"industry '{ind}'"
        haystack = " " + " ".join(words(ind) + [w for k in keywords for w in words(k)]) + " "
        best, why = None, ""
        for key, w in row.items():
            if key == "default":
                continue
            if f" {' '.join(words(key))} " in haystack and (best is None or w > best):
                best, why = w, f"'{key}' in industry/keywords"
        if best is not None:
            return best, why
        if "default" in row:
            return row["default"], "event default"
        return UNLISTED_WEIGHT, "industry not listed"
