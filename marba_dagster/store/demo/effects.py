"""The engagement model of the demo posts: the planted effects the learning engine should find
(hour, weekday, format, hashtags, power words, platform) and the distributions of posting
and engagement around them. See the package doc for how they combine."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .industries import CTAS, GIVEAWAY_LINE, INDUSTRIES

SOCIAL_PLATFORMS = ("facebook", "instagram", "x")

# Local hour of publication -> multiplier on the engagement rate. Peak at 19 local.
HOUR_MULTIPLIERS: dict[int, float] = {
    0: 0.55, 1: 0.55, 2: 0.55, 3: 0.55, 4: 0.55, 5: 0.55, 6: 0.85, 7: 1.05, 8: 1.35,
    9: 1.05, 10: 1.0, 11: 1.0, 12: 1.4, 13: 1.1, 14: 1.0, 15: 1.0, 16: 1.0, 17: 1.15,
    18: 1.55, 19: 1.8, 20: 1.5, 21: 1.1, 22: 0.85, 23: 0.7,
}  # fmt: skip
PEAK_HOUR = 19
# Local weekday (Monday = 0) -> multiplier. Best: Wednesday; worst: Sunday.
WEEKDAY_MULTIPLIERS: dict[int, float] = {
    0: 0.95, 1: 1.05, 2: 1.15, 3: 1.05, 4: 0.95, 5: 0.9, 6: 0.85,
}  # fmt: skip
FORMAT_MULTIPLIERS: dict[str, float] = {
    "reel": 1.9, "video": 1.6, "carousel": 1.35, "image": 1.0, "story": 0.8, "text": 0.75,
    "link": 0.6,
}  # fmt: skip
# A hashtag's multiplier applies when the post carries it (case as written).
HASHTAG_MULTIPLIERS: dict[str, float] = {
    "#giveaway": 1.6, "#behindthescenes": 1.3, "#shoplocal": 1.2, "#ad": 0.7,
}  # fmt: skip
HASHTAG_PROBABILITIES: dict[str, float] = {
    "#giveaway": 0.12, "#behindthescenes": 0.15, "#shoplocal": 0.2, "#ad": 0.1,
}  # fmt: skip
# A post opens with at most one power phrase (probability POWER_PHRASE_PROBABILITY, the
# word chosen uniformly); its word's multiplier applies.
POWER_WORD_MULTIPLIERS: dict[str, float] = {
    "free": 1.5, "exclusive": 1.35, "secret": 1.3, "limited": 1.25, "new": 1.2,
}  # fmt: skip
POWER_PHRASE_PROBABILITY = 0.35
POWER_PHRASES: dict[str, tuple[str, str]] = {
    "free": ("Free gift with every purchase this week!", "Free delivery this weekend!"),
    "exclusive": ("Exclusive offer for our followers.", "Exclusive first look, right here."),
    "secret": ("Our best-kept secret is out.", "Psst, we have a little secret."),
    "limited": ("Limited time only!", "Limited spots left!"),
    "new": ("New this week!", "Brand new and just landed!"),
}
PLATFORM_ENGAGEMENT_FACTOR: dict[str, float] = {"facebook": 0.8, "instagram": 1.3, "x": 0.6}
PLATFORM_REACH_FRACTION: dict[str, float] = {"facebook": 0.25, "instagram": 0.35, "x": 0.15}
PLATFORM_POSTS_PER_DAY: dict[str, float] = {"facebook": 1.1, "instagram": 1.3, "x": 1.6}
PLATFORM_FOLLOWER_FACTOR: dict[str, float] = {"facebook": 1.0, "instagram": 1.3, "x": 0.5}
PLATFORM_PRESENCE: dict[str, float] = {"facebook": 0.95, "instagram": 0.93, "x": 0.75}
FORMAT_PROBABILITIES: dict[str, dict[str, float]] = {
    "facebook": {"image": 0.35, "video": 0.15, "reel": 0.1, "carousel": 0.1, "link": 0.15,
                 "text": 0.15},
    "instagram": {"image": 0.35, "carousel": 0.25, "reel": 0.25, "video": 0.05, "story": 0.1},
    "x": {"text": 0.4, "image": 0.3, "video": 0.1, "link": 0.2},
}  # fmt: skip
ENGAGEMENT_NOISE_SIGMA = 0.35
BRAND_EFFECT_SIGMA = 0.25
# When brands post (local hour): mostly 7-22, a little at night, so every hour has data.
POSTING_HABIT = np.array(
    [0.01] * 6 + [0.03] + [0.056] * 16 + [0.02], dtype=float
)  # 0-5, 6, 7-22, 23
POSTING_HABIT = POSTING_HABIT / POSTING_HABIT.sum()
ENGAGEMENT_SPLIT = {  # likes, comments, shares (retweets), saves (bookmarks)
    "facebook": (0.72, 0.10, 0.15, 0.03),
    "instagram": (0.78, 0.07, 0.05, 0.10),
    "x": (0.70, 0.10, 0.15, 0.05),
}
CLICK_RATE = {"link": 0.012}  # others: 0.004
VIDEO_VIEW_RATE = {"video": 0.5, "reel": 0.6}

PLANTED_EFFECTS: dict[str, Any] = {
    "engagement": "likes + comments + shares + saves (clicks and video_views excluded)",
    "hour_local": HOUR_MULTIPLIERS,
    "peak_hour_local": PEAK_HOUR,
    "weekday_local": WEEKDAY_MULTIPLIERS,
    "format": FORMAT_MULTIPLIERS,
    "hashtag": HASHTAG_MULTIPLIERS,
    "power_word": POWER_WORD_MULTIPLIERS,
    "platform": PLATFORM_ENGAGEMENT_FACTOR,
    "industry_base_rate": {k: v.base_engagement_rate for k, v in INDUSTRIES.items()},
    "noise_sigma": ENGAGEMENT_NOISE_SIGMA,
    "brand_effect_sigma": BRAND_EFFECT_SIGMA,
}

_WORD_RE = re.compile(r"[a-z]+")


def neutral_texts() -> list[str]:
    """Every text fragment that may appear in a body besides power phrases and planted tags."""
    out = list(CTAS) + [GIVEAWAY_LINE]
    for p in INDUSTRIES.values():
        out += list(p.sentences) + list(p.items) + list(p.hashtags)
    return out


def check_neutral_texts() -> None:
    """Raise AssertionError if a neutral text carries a power word or a planted hashtag."""
    planted = set(POWER_WORD_MULTIPLIERS)
    for text in neutral_texts():
        words = set(_WORD_RE.findall(text.lower()))
        if words & planted or text.lower() in HASHTAG_MULTIPLIERS:
            raise AssertionError(f"neutral demo text {text!r} contains a planted word or tag")


check_neutral_texts()


def planted_multiplier(
    local_hour: int, local_weekday: int, fmt: str, body: str, platform: str | None = None
) -> float:
    """The planted multiplier for one post (without industry, brand and noise factors)."""
    m = HOUR_MULTIPLIERS[local_hour] * WEEKDAY_MULTIPLIERS[local_weekday]
    m *= FORMAT_MULTIPLIERS[fmt]
    tokens = body.split()
    for tag, mult in HASHTAG_MULTIPLIERS.items():
        if tag in tokens:
            m *= mult
    words = set(_WORD_RE.findall(body.lower()))
    for word, mult in POWER_WORD_MULTIPLIERS.items():
        if word in words:
            m *= mult
    if platform is not None:
        m *= PLATFORM_ENGAGEMENT_FACTOR[platform]
    return m
