"""Matching trending searches and local news to a brand's keywords and industry."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .relevance import words

# Industry words too generic to mean anything alone ("pet store" matches on "pet").
GENERIC_WORDS = frozenset(
    {
        "shop",
        "store",
        "studio",
        "services",
        "service",
        "retail",
        "bar",
        "house",
        "co",
        "company",
        "the",
        "and",
        "of",
        "a",
        "in",
        "local",
        "best",
        "new",
    }
)


@dataclass(frozen=True)
class Match:
    score: float  # 0..1
    terms: tuple[str, ...]
    where: str  # "title", "related news", "industry"


def brand_terms(keywords: Iterable[str], industry: str | None) -> tuple[list[list[str]], list[str]]:
    """(keyword phrases as word lists, significant industry words)."""
    phrases = []
    seen = set()
    for k in keywords or ():
        w = words(k)
        if w and tuple(w) not in seen:
            seen.add(tuple(w))
            phrases.append(w)
    ind = [w for w in words(industry or "") if w not in GENERIC_WORDS and len(w) > 2]
    return phrases, ind


def _contains(hay: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    if n == 0 or n > len(hay):
        return False
    first = phrase[0]
    return any(
        w == first and hay[i : i + n] == phrase for i, w in enumerate(hay[: len(hay) - n + 1])
    )


def _plural_tolerant(hay: list[str]) -> list[str]:
    return hay + [w[:-1] for w in hay if len(w) > 3 and w.endswith("s")]


def match_text(
    title: str,
    related: Sequence[str],
    keywords: Iterable[str],
    industry: str | None,
    *,
    ignore: Iterable[str] = (),
) -> Match | None:
    """How well a trend or headline (``title`` plus ``related`` texts) fits the brand.

    A keyword phrase in the title scores 1.0 (0.9 for a one-word keyword), in the related
    texts only 0.6; an industry word alone 0.5. ``ignore``: words that match everything in
    this context (the city name in a city news search) and so prove nothing.
    """
    phrases, ind = brand_terms(keywords, industry)
    skip = {w for i in ignore for w in words(i)}
    phrases = [p for p in (p2 for p2 in ([w for w in p if w not in skip] for p in phrases)) if p]
    ind = [w for w in ind if w not in skip]
    t = _plural_tolerant(words(title))
    r = _plural_tolerant([w for x in related for w in words(x)])
    hit_t = [" ".join(p) for p in phrases if _contains(t, p)]
    if hit_t:
        best = 1.0 if any(len(p.split()) > 1 for p in hit_t) else 0.9
        return Match(best, tuple(hit_t), "title")
    hit_r = [" ".join(p) for p in phrases if _contains(r, p)]
    if hit_r:
        return Match(0.6, tuple(hit_r), "related news")
    hit_i = [w for w in ind if w in t or w in r]
    if hit_i:
        return Match(0.5, tuple(hit_i), "industry")
    return None


_TRAFFIC = re.compile(r"^\s*([\d.,]+)\s*([KkMm]?)\s*\+?\s*$")


def parse_traffic(text: str | None) -> int | None:
    """``"2000+"``, ``"20K+"``, ``"1M+"`` -> 2000, 20000, 1000000; None if not a count."""
    if not text:
        return None
    m = _TRAFFIC.match(text)
    if not m:
        return None
    try:
        n = float(m.group(1).replace(",", ""))
    except ValueError:
        return None
    return int(n * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()])


def traffic_strength(traffic: int | None) -> float:
    """0..1 on a log scale: 100 searches -> 0.33, 10K -> 0.67, 1M+ -> 1."""
    if not traffic or traffic <= 0:
        return 0.3
    return round(min(1.0, max(0.1, math.log10(traffic) / 6.0)), 4)


def news_query(city: str, keywords: Iterable[str], max_terms: int = 12) -> str:
    """A Google News search for a city and the keywords of its brands:
    ``"Austin" (coffee OR "cold brew") when:2d`` (OR'd keywords, most frequent first)."""
    counts: dict[str, int] = {}
    city_words = set(words(city))
    for k in keywords:
        k = " ".join(w for w in words(k) if w not in city_words)
        if k:
            counts[k] = counts.get(k, 0) + 1
    terms = sorted(counts, key=lambda k: (-counts[k], k))[:max_terms]
    quoted = [f'"{t}"' if " " in t else t for t in terms]
    q = f'"{city}"'
    if quoted:
        q += " (" + " OR ".join(quoted) + ")"
    return q + " when:2d"
