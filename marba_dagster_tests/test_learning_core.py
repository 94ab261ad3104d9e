"""The learning statistics on generated posts with planted effects (no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marba_dagster.core.learning import LearningInput, confidence_for, learn_patterns
from marba_dagster_tests.learning_fixtures import planted_posts


def _top(patterns: pd.DataFrame, brand: str, platform: str, ptype: str, hours_only=False):
    p = patterns[
        (patterns.brand_id == brand)
        & (patterns.platform == platform)
        & (patterns.pattern_type == ptype)
    ]
    if hours_only:
        p = p[~p.pattern_key.str.contains("-")]
    return p.sort_values("lift", ascending=False).iloc[0]


def test_confidence_tiers_match_design():
    assert [confidence_for(n) for n in (0, 9, 10, 29, 30, 99, 100, 5000)] == [
        0.3,
        0.3,
        0.5,
        0.5,
        0.7,
        0.7,
        0.9,
        0.9,
    ]


def test_planted_hour_format_and_hashtag_are_top_patterns_per_platform():
    posts = pd.concat(
        [
            planted_posts(
                "b1",
                "instagram",
                "Europe/Berlin",
                900,
                seed=1,
                hot_local_hour=18,
                hot_format="video",
                hot_tag="#summer",
            ),
            # Another platform of the same brand with different planted winners.
            planted_posts(
                "b1",
                "facebook",
                "Europe/Berlin",
                900,
                seed=2,
                hot_local_hour=11,
                hot_format="carousel",
                hot_tag="#local",
                reach_scale=20000,
            ),
        ]
    )
    inp = LearningInput({"b1": "Europe/Berlin"}, {"b1": []})
    patterns = learn_patterns(posts, inp)

    for platform, hour, fmt, tag in (
        ("instagram", "18", "video", "#summer"),
        ("facebook", "11", "carousel", "#local"),
    ):
        top_hour = _top(patterns, "b1", platform, "best_posting_time", hours_only=True)
        assert top_hour.pattern_key == hour
        assert top_hour.lift > 1.5
        assert top_hour.confidence == confidence_for(top_hour.data_points)
        assert top_hour.confidence == 0.7  # ~64 posts at one of 14 hours
        assert bool(top_hour.recommended)

        top_fmt = _top(patterns, "b1", platform, "content_format")
        assert top_fmt.pattern_key == fmt and top_fmt.confidence == 0.9
        assert 1.2 < top_fmt.lift < 1.6 and bool(top_fmt.recommended)

        top_tag = _top(patterns, "b1", platform, "hashtag")
        assert top_tag.pattern_key == tag and top_tag.confidence == 0.9
        assert top_tag.lift > 1.3 and bool(top_tag.recommended)

    # Nothing else is recommended among formats and hashtags: the other ones had no effect.
    rec = patterns[patterns.recommended.astype(bool)]
    assert set(rec[rec.pattern_type == "hashtag"].pattern_key) == {"#summer", "#local"}
    assert set(rec[rec.pattern_type == "content_format"].pattern_key) <= {"video", "carousel"}


def test_busy_hour_does_not_win_by_volume():
    # Hour 09 has most of the posts but ordinary engagement; hour 20 has few but double.
    hours = (9,) * 10 + tuple(range(8, 22))  # a draw is 09 eleven times out of 24
    posts = planted_posts(
        "b2",
        "x",
        "UTC",
        1200,
        seed=3,
        hours=hours,
        hot_local_hour=20,
        hot_format=None,
        hot_tag=None,
    )
    patterns = learn_patterns(posts, LearningInput({"b2": "UTC"}, {}))
    hours = patterns[
        (patterns.pattern_type == "best_posting_time") & ~patterns.pattern_key.str.contains("-")
    ].set_index("pattern_key")
    assert hours.loc["09", "data_points"] > 5 * hours.loc["20", "data_points"]
    assert hours.lift.idxmax() == "20"
    assert 0.85 < hours.loc["09", "lift"] < 1.1


def test_small_brand_gets_low_confidence_and_no_recommendation():
    posts = planted_posts("tiny", "instagram", "UTC", 8, seed=4)
    patterns = learn_patterns(posts, LearningInput({"tiny": "UTC"}, {}))
    assert not patterns.empty
    assert set(patterns.confidence) == {0.3}
    assert not patterns.recommended.astype(bool).any()


def test_brand_without_posts_gives_no_patterns_and_no_error():
    empty = planted_posts("none", "x", "UTC", 0)
    patterns = learn_patterns(empty, LearningInput({"none": "UTC"}, {}))
    assert patterns.empty


def test_large_sample_without_effect_is_not_recommended():
    posts = planted_posts(
        "flat", "facebook", "UTC", 3000, seed=6, hot_local_hour=None, hot_format=None, hot_tag=None
    )
    patterns = learn_patterns(posts, LearningInput({"flat": "UTC"}, {"flat": ["beans"]}))
    assert (patterns.data_points >= 100).any()
    assert not patterns.recommended.astype(bool).any()
    assert patterns.p_value.dropna().min() > 0.05


def test_timezones_same_utc_hour_means_different_local_hours():
    # Both brands' best posts go out at 23:00 UTC in summer.
    posts = pd.concat(
        [
            planted_posts(
                "ny",
                "instagram",
                "America/New_York",
                900,
                seed=7,
                hot_local_hour=None,
                hot_utc_hour=23,
                hot_format=None,
                hot_tag=None,
            ),
            planted_posts(
                "tokyo",
                "instagram",
                "Asia/Tokyo",
                900,
                seed=8,
                hot_local_hour=None,
                hot_utc_hour=23,
                hot_format=None,
                hot_tag=None,
            ),
        ]
    )
    inp = LearningInput({"ny": "America/New_York", "tokyo": "Asia/Tokyo"}, {})
    patterns = learn_patterns(posts, inp)
    assert _top(patterns, "ny", "instagram", "best_posting_time", True).pattern_key == "19"  # EDT
    assert _top(patterns, "tokyo", "instagram", "best_posting_time", True).pattern_key == "08"
    wd = patterns[(patterns.brand_id == "tokyo") & patterns.pattern_key.str.contains("-")]
    # Weekday-hour cells exist only where the data supports them (10+ posts).
    assert (wd.data_points >= 10).all()


def test_power_words_and_topics():
    posts = planted_posts(
        "pw", "instagram", "UTC", 600, seed=9, hot_local_hour=None, hot_format=None, hot_tag=None
    )
    rng = np.random.default_rng(1)
    has_free = rng.random(len(posts)) < 0.3
    posts.loc[has_free, "body"] = "Free tasting today! " + posts.loc[has_free, "body"]
    for c in ("likes", "comments", "shares", "saves"):
        posts.loc[has_free, c] = (posts.loc[has_free, c] * 1.7).round().astype(int)
    patterns = learn_patterns(posts, LearningInput({"pw": "UTC"}, {"pw": ["tasting", "beans"]}))
    pw = _top(patterns, "pw", "instagram", "power_word")
    assert pw.pattern_key in {"free", "today"} and bool(pw.recommended)
    topic = _top(patterns, "pw", "instagram", "topic")
    assert topic.pattern_key == "tasting" and bool(topic.recommended)


def test_missing_columns_are_a_clear_error():
    with pytest.raises(ValueError, match="missing columns"):
        learn_patterns(pd.DataFrame({"brand_id": ["a"]}), LearningInput({}, {}))
