"""Pure logic of the opportunity detector: urgency, relevance, scoring, prediction."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from marba_dagster.core.opportunities import (
    DEFAULT_RELEVANCE,
    RelevanceError,
    RelevanceMap,
    build_opportunities,
    merge_relevance,
    parse_relevance,
    urgency_for,
)
from marba_dagster.core.opportunities.matching import (
    match_text,
    news_query,
    parse_traffic,
    traffic_strength,
)
from marba_dagster.core.opportunities.predictive import MIN_DECIDED, fit_history

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=timezone.utc)
EPS = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (timedelta(hours=4) - EPS, "critical"),
        (timedelta(hours=4), "high"),
        (timedelta(hours=4) + EPS, "high"),
        (timedelta(hours=24) - EPS, "high"),
        (timedelta(hours=24), "medium"),
        (timedelta(days=7) - EPS, "medium"),
        (timedelta(days=7), "low"),
        (timedelta(days=30), "low"),
        (timedelta(minutes=1), "critical"),
    ],
)
def test_urgency_boundaries_are_exact(left, expected):
    assert urgency_for(NOW + left, NOW) == expected


def test_urgency_needs_aware_times():
    with pytest.raises(ValueError):
        urgency_for(datetime(2025, 6, 10, 14), NOW)
    assert urgency_for(None, NOW) == "low"


def test_relevance_rain_lifts_coffee_not_ice_cream():
    rm = RelevanceMap()
    coffee, why = rm.weight("rain", "coffee shop")
    ice, _ = rm.weight("rain", "ice cream")
    assert coffee >= 0.8 > 0.3 > ice
    assert "coffee shop" in why
    # generic category matched by keyword: an "umbrella store" with keyword "umbrellas"
    w, why = rm.weight("rain", "accessories", ["umbrellas"])
    assert w == 1.0 and "umbrellas" in why
    assert rm.weight("heat", "ice cream")[0] > rm.weight("heat", "bookstore")[0]


def test_relevance_file_shape_is_validated_and_overrides():
    override = parse_relevance({"rain": {"Bike Shop": 0.9}, "storm_surge": {"default": 0.5}})
    merged = RelevanceMap(merge_relevance(DEFAULT_RELEVANCE, override))
    assert merged.weight("rain", "bike shop")[0] == 0.9
    assert merged.weight("rain", "coffee shop")[0] == DEFAULT_RELEVANCE["rain"]["coffee shop"]
    assert merged.weight("storm_surge", "anything")[0] == 0.5
    with pytest.raises(RelevanceError, match="outside 0..1"):
        parse_relevance({"rain": {"coffee": 2}})
    with pytest.raises(RelevanceError, match="must be a number"):
        parse_relevance({"rain": {"coffee": "high"}})
    with pytest.raises(RelevanceError, match="JSON object"):
        parse_relevance(["rain"])


def _signal(st, key, hours, strength=0.8, **payload):
    return {
        "id": key,
        "signal_type": st,
        "source": "test",
        "title": f"{st} {key}",
        "dedup_key": key,
        "payload": payload,
        "observed_at": NOW - timedelta(hours=1),
        "valid_until": NOW + timedelta(hours=hours) if hours is not None else None,
        "strength": strength,
    }


def test_build_opportunities_scores_dedups_and_skips():
    brand = {
        "id": "b1",
        "name": "Bean",
        "industry": "coffee shop",
        "keywords": ["coffee", "cold brew"],
    }
    sigs = [
        _signal("weather", "w1", 3, kind="rain", threshold=3.0, unit="mm"),
        _signal("weather", "w1", 3, strength=0.5, kind="rain"),  # same event seen twice
        _signal("weather", "w2", 30, kind="heat"),
        _signal("weather", "w3", -1, kind="rain"),  # already over
        _signal("competitor", "c1", None, change_type="pricing_change"),
        _signal("trend", "t1", 20, match={"score": 1.0, "terms": ["cold brew"], "where": "title"}),
        _signal(
            "seasonal", "s1", 24 * 10, kind="black_friday"
        ),  # irrelevant to coffee (not listed)
    ]
    drafts, skipped = build_opportunities(sigs, brand, RelevanceMap(), NOW)
    keys = [d.dedup_key for d in drafts]
    assert len(keys) == len(set(keys))
    by = {d.dedup_key: d for d in drafts}
    rain = by["weather:w1"]
    assert rain.urgency == "critical" and 0 <= rain.score <= 1
    assert rain.evidence["strength"] == 0.8  # the stronger duplicate wins
    assert by["competitor_activity:c1"].urgency == "medium"  # 72h TTL from observed_at
    assert by["trending_topic:t1"].urgency == "high"
    assert {s["dedup_key"]: s["reason"] for s in skipped}["w3"] == "expired"
    assert "s1" in {s["dedup_key"] for s in skipped}
    assert all(d.suggested_actions for d in drafts)
    assert all(0.0 <= d.score <= 1.0 for d in drafts)


def test_matching_trends_and_news():
    m = match_text("cold brew recipe", [], ["cold brew", "espresso"], "coffee shop")
    assert m.score == 1.0 and m.terms == ("cold brew",)
    m = match_text("nba finals", ["Why fans drink espresso at games"], ["espresso"], "coffee shop")
    assert m.where == "related news"
    assert match_text("election results", [], ["espresso"], "coffee shop") is None
    # the city name matches every headline of a city search: ignored
    assert (
        match_text(
            "Austin council approves bike lanes",
            [],
            ["coffee Austin"],
            "coffee shop",
            ignore=["Austin"],
        )
        is None
    )
    assert (
        parse_traffic("2000+") == 2000
        and parse_traffic("20K+") == 20000
        and parse_traffic("1M+") == 1_000_000
    )
    assert parse_traffic("lots") is None
    assert traffic_strength(1_000_000) == 1.0 > traffic_strength(2000) > traffic_strength(200)
    q = news_query("Austin", ["coffee", "cold brew", "coffee", "coffee Austin"])
    assert q == '"Austin" (coffee OR "cold brew") when:2d'


def test_predictive_score_needs_history_and_learns_it():
    none = fit_history([])
    assert none.model is None and "not enough history" in none.reason
    one_class = fit_history(
        [({"type": "weather", "kind": "rain", "urgency": "high", "score": 0.7}, False)]
        * MIN_DECIDED
    )
    assert one_class.model is None and "0 acted" in one_class.reason
    hist = []
    for _ in range(20):
        hist.append(
            (
                {
                    "type": "weather",
                    "kind": "rain",
                    "urgency": "high",
                    "score": 0.7,
                    "relevance": 0.9,
                },
                True,
            )
        )
        hist.append(
            (
                {
                    "type": "trending_topic",
                    "kind": "trend",
                    "urgency": "low",
                    "score": 0.4,
                    "relevance": 0.5,
                },
                False,
            )
        )
    fit = fit_history(hist)
    assert fit.model is not None and fit.acted == 20
    p_rain, p_trend = fit.model.predict([hist[0][0], hist[1][0]])
    assert p_rain > 0.7 > 0.3 > p_trend
