"""Deterministic, realistic demo data for the MARBA tables.

``seed_demo(engine, brands=N, seed=S, now=T)`` writes N brands with everything the seven
jobs read: competitors (pointing at the sandbox's fake websites), connected platform
accounts, ``days`` of published posts with metrics, daily follower counts, scheduled posts
and objectives. ``background_jobs`` is left alone.

Determinism
    Every brand is generated from its own RNG, ``numpy.random.default_rng([seed, index])``,
    plus a few seed-level tables (country rotation, city order). Brand *i* is therefore the
    same whether 20 or 1,000 brands are seeded, and identical (seed, index, now, days) give
    identical rows. ``now`` defaults to the current UTC time rounded down to the hour; pass
    it to pin the output. ``generate_brand`` is public so the sandbox or tests can rebuild a
    brand's rows without a database.

Ids (stable for a seed; ``NNNNN`` = 1-based brand index, zero-padded to 5 digits)
    brand ``brand-{seed}-NNNNN``; competitor ``comp-{seed}-NNNNN-{j}``; platform account
    ``acct-{seed}-NNNNN-{fb|ig|x|gbp}``; post ``post-{seed}-NNNNN-{fb|ig|x}-{k:05d}`` (k in
    publication order per platform); scheduled post ``sched-{seed}-NNNNN-{j:02d}``;
    objective ``obj-{seed}-NNNNN-{j}``. External ids (page/user ids, post ids) are
    realistic-looking numbers drawn from the brand's RNG.

Idempotence
    Seeding skips brands whose id is already present (each chunk of brands is written in
    one transaction, so a present brand is always complete). Seeding again with the same
    seed therefore adds nothing; seeding more brands adds only the new ones. ``replace=True``
    instead deletes those brands (and every row of any table that refers to them) and
    writes them afresh, e.g. to move the data window to a new ``now``.

Guaranteed features (by brand index i, 0-based, so small demos exercise them)
    ``i % 50 == 7`` has no location (city, latitude, longitude null; country, subdivision
    and timezone kept); ``i % 20 == 13`` is inactive; ``i % 25 == 11`` has an expired
    Facebook/first-platform token. Every active brand with an active social account has
    1-2 scheduled posts due (0-10 minutes before ``now``), 2-4 in the future (1 h - 7 d),
    and with probability 1/2 one ``cancelled`` post. Inactive brands get none.

Planted engagement effects (the learning engine should find these)
    Posts exist on facebook, instagram and x (google_business accounts carry reviews, not
    posts). A post's expected engagement rate, engagements / impressions with engagements
    = likes + comments + shares + saves (clicks and video views excluded), is

        INDUSTRY base rate x PLATFORM_ENGAGEMENT_FACTOR x brand factor (lognormal, s=0.25)
        x HOUR_MULTIPLIERS[local hour] x WEEKDAY_MULTIPLIERS[local weekday]
        x FORMAT_MULTIPLIERS[format] x product of HASHTAG_MULTIPLIERS for tags present
        x POWER_WORD_MULTIPLIERS[word] if the post opens with a power phrase
        x lognormal noise (sigma 0.35, mean 1)

    Local means in the brand's timezone. Impressions depend only on the platform follower
    count that day (x reach fraction, lognormal noise) and post age (maturity
    ``1 - exp(-age_h / 12)``), not on the planted factors, so each multiplier is the lift
    on both the engagement rate and the expected engagement count. Peak hour: 19 (x1.8),
    best weekday: Wednesday. Neutral text (sentences, items, CTAs, neutral hashtags, brand
    and city names are never in bodies) contains none of the power words or planted tags.

    Multipliers are relative to the neutral case (hour/weekday factor 1.0, image, no
    planted tag or word). Measured against the mean of all posts the lift is smaller
    because the baseline itself contains boosted posts: over 1,000 brands, hour 19 shows
    about x1.6, #giveaway x1.6, "free" x1.4 against the rest. The format mix differs by
    platform (reels and carousels mostly on instagram, the highest-rate platform), so
    compare formats within a platform, as a per-brand, per-platform learner does.
    Posting volume: facebook 1.1, instagram 1.3, x 1.6 posts a day on average, times a
    per-brand activity factor; local posting hours are mostly 7-22 (PLATFORM_* and
    FORMAT_PROBABILITIES hold the rest).

Writing
    One transaction per chunk of ``chunk_brands`` brands; the next chunk is generated in a
    worker thread meanwhile. On SQLite and PostgreSQL rows go to the driver in one call
    per table and chunk (executemany of pre-converted tuples; COPY), storing exactly what
    Core's ``conn.execute(table.insert(), rows)`` would (``fast=False`` uses that path).

Metrics
    One ``post_metrics`` row per post with ``metric_date`` = ``now``'s UTC date (a lifetime
    snapshot as of today). ``account_metrics`` has one row per brand, social platform and
    UTC day for the ``days`` days ending at ``now``'s date: followers growing about
    0.05-0.25 % a day with a little day-to-day noise.
"""

from .effects import (
    BRAND_EFFECT_SIGMA,
    ENGAGEMENT_NOISE_SIGMA,
    FORMAT_MULTIPLIERS,
    FORMAT_PROBABILITIES,
    HASHTAG_MULTIPLIERS,
    HASHTAG_PROBABILITIES,
    HOUR_MULTIPLIERS,
    PEAK_HOUR,
    PLANTED_EFFECTS,
    PLATFORM_ENGAGEMENT_FACTOR,
    PLATFORM_FOLLOWER_FACTOR,
    PLATFORM_POSTS_PER_DAY,
    PLATFORM_PRESENCE,
    PLATFORM_REACH_FRACTION,
    POWER_PHRASE_PROBABILITY,
    POWER_WORD_MULTIPLIERS,
    SOCIAL_PLATFORMS,
    WEEKDAY_MULTIPLIERS,
    check_neutral_texts,
    neutral_texts,
    planted_multiplier,
)
from .generator import (
    DEFAULT_MEDIA_BASE_URL,
    DEFAULT_SITES_BASE_URL,
    TABLE_ORDER,
    brand_id,
    city_for,
    default_now,
    generate_brand,
)
from .industries import INDUSTRIES, INDUSTRY_NAMES, IndustryProfile
from .loader import DEFAULT_CHUNK_BRANDS, SeedReport, analyze_tables, seed_demo
from .places import COUNTRY_WEIGHTS, DEMO_CITIES, DEMO_COUNTRIES, DemoCity

__all__ = [
    "BRAND_EFFECT_SIGMA",
    "COUNTRY_WEIGHTS",
    "DEFAULT_CHUNK_BRANDS",
    "DEFAULT_MEDIA_BASE_URL",
    "DEFAULT_SITES_BASE_URL",
    "DEMO_CITIES",
    "DEMO_COUNTRIES",
    "ENGAGEMENT_NOISE_SIGMA",
    "FORMAT_MULTIPLIERS",
    "FORMAT_PROBABILITIES",
    "HASHTAG_MULTIPLIERS",
    "HASHTAG_PROBABILITIES",
    "HOUR_MULTIPLIERS",
    "INDUSTRIES",
    "INDUSTRY_NAMES",
    "PEAK_HOUR",
    "PLANTED_EFFECTS",
    "PLATFORM_ENGAGEMENT_FACTOR",
    "PLATFORM_FOLLOWER_FACTOR",
    "PLATFORM_POSTS_PER_DAY",
    "PLATFORM_PRESENCE",
    "PLATFORM_REACH_FRACTION",
    "POWER_PHRASE_PROBABILITY",
    "POWER_WORD_MULTIPLIERS",
    "SOCIAL_PLATFORMS",
    "TABLE_ORDER",
    "WEEKDAY_MULTIPLIERS",
    "DemoCity",
    "IndustryProfile",
    "SeedReport",
    "analyze_tables",
    "brand_id",
    "check_neutral_texts",
    "city_for",
    "default_now",
    "generate_brand",
    "neutral_texts",
    "planted_multiplier",
    "seed_demo",
]
