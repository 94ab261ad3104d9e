"""Competitive gaps: topics, channels and formats competitors use that the brand does not.

Pure: plain data in, scored gaps with their evidence out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .text import terms

__all__ = ["CompetitorActivity", "Gap", "find_gaps"]

# Competitor formats, in the brand's post-format vocabulary (content_posts.format).
FORMAT_EQUIVALENTS = {
    "video": {"video", "reel"},
    "audio": set(),  # podcasts: the brand has no audio format at all
    "image": {"image", "carousel", "story"},
    "link": {"link", "text"},
}


@dataclass
class CompetitorActivity:
    competitor_id: str
    name: str
    texts: list[str] = field(default_factory=list)  # headlines, positioning, feed titles
    channels: set[str] = field(default_factory=set)  # x, facebook, instagram, blog, ...
    formats: Counter[str] = field(default_factory=Counter)  # video, audio, image, link


@dataclass
class Gap:
    gap_type: str  # topic | channel | format
    gap_key: str
    score: float  # 0..1
    evidence: dict[str, Any]


def _bigrams(tokens: Sequence[str]) -> list[str]:
    return [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False) if a != b]


def _topics(text: str) -> set[str]:
    toks = terms(text)
    return set(_bigrams(toks))


def find_gaps(
    competitors: Sequence[CompetitorActivity],
    brand_texts: Iterable[str],
    brand_channels: set[str],
    brand_formats: set[str],
    *,
    max_topics: int = 10,
) -> list[Gap]:
    """Scored gaps (0..1), strongest first within each type.

    * topic: a two-word phrase in at least two competitors' copy (or three times in one
      competitor's), none of whose words the brand's own content or keywords use together;
      score = 0.7 x share of competitors using it + 0.3 x how often (saturating at 6).
    * channel: a channel competitors are active on and the brand is not; score = share of
      competitors on it.
    * format: a content format competitors publish that the brand never posts; score =
      0.6 x share of competitors using it + 0.4 x its share of their posts.
    """
    comps = [c for c in competitors if c.texts or c.channels or c.formats]
    if not comps:
        return []
    n = len(comps)
    brand_blob = list(brand_texts)
    brand_terms = set(terms(" ".join(brand_blob)))
    brand_phrases: set[str] = set()
    for t in brand_blob:
        brand_phrases |= _topics(t)

    gaps: list[Gap] = []
    # ---- topics
    users: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    for c in comps:
        for text in c.texts:
            found = _topics(text)
            for phrase in found:
                users[phrase].add(c.competitor_id)
                counts[phrase] += 1
                if len(examples[phrase]) < 3 and text[:160] not in examples[phrase]:
                    examples[phrase].append(text[:160])
    topic_gaps = []
    for phrase, who in users.items():
        words = phrase.split()
        if phrase in brand_phrases or all(w in brand_terms for w in words):
            continue
        if len(who) < 2 and counts[phrase] < 3:
            continue
        score = 0.7 * len(who) / n + 0.3 * min(1.0, counts[phrase] / 6)
        topic_gaps.append(
            Gap(
                "topic",
                phrase,
                round(min(1.0, score), 4),
                {
                    "competitors": sorted(who),
                    "mentions": counts[phrase],
                    "examples": examples[phrase],
                },
            )
        )
    topic_gaps.sort(key=lambda g: (-g.score, g.gap_key))
    # One phrase per pair of words is enough: drop phrases sharing a word with a stronger one
    # used by exactly the same competitors ("sourcing local" next to "sustainable sourcing").
    kept: list[Gap] = []
    for g in topic_gaps:
        if any(
            set(g.gap_key.split()) & set(k.gap_key.split())
            and g.evidence["competitors"] == k.evidence["competitors"]
            for k in kept
        ):
            continue
        kept.append(g)
        if len(kept) >= max_topics:
            break
    gaps += kept

    # ---- channels
    on: dict[str, list[str]] = defaultdict(list)
    for c in comps:
        for ch in c.channels:
            on[ch].append(c.competitor_id)
    for ch, who in sorted(on.items()):
        if ch in brand_channels:
            continue
        gaps.append(
            Gap(
                "channel",
                ch,
                round(len(who) / n, 4),
                {"competitors": sorted(who), "brand_channels": sorted(brand_channels)},
            )
        )

    # ---- formats
    total_posts = sum(sum(c.formats.values()) for c in comps)
    for fmt in sorted({f for c in comps for f in c.formats}):
        if FORMAT_EQUIVALENTS.get(fmt, {fmt}) & brand_formats:
            continue
        if fmt == "link" and brand_formats:
            continue  # any posting brand covers plain articles/links
        who = [c.competitor_id for c in comps if c.formats.get(fmt)]
        share = sum(c.formats.get(fmt, 0) for c in comps) / max(1, total_posts)
        gaps.append(
            Gap(
                "format",
                fmt,
                round(min(1.0, 0.6 * len(who) / n + 0.4 * share), 4),
                {
                    "competitors": sorted(who),
                    "posts": sum(c.formats.get(fmt, 0) for c in comps),
                    "share_of_competitor_posts": round(share, 4),
                    "brand_formats": sorted(brand_formats),
                },
            )
        )
    return gaps
