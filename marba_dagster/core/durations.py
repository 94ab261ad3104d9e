"""Durations as people write them: ``90m``, ``24h``, ``2d``, ``1w``, ``45s`` (pure)."""

from __future__ import annotations

import math
from datetime import timedelta

UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str, *, bare_unit: str = "s") -> timedelta:
    """``text`` as a positive duration; a bare number counts in ``bare_unit``.

    ``ValueError`` says what is wrong (and what would be right) for anything else.
    """
    raw = str(text).strip().lower()
    unit = raw[-1:] if raw[-1:] in UNITS else bare_unit
    number = raw[:-1] if raw[-1:] in UNITS else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration: use e.g. 90m, 24h, 2d, 1w") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return timedelta(seconds=value * UNITS[unit])
