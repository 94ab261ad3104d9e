"""Priority of inbox items: ordering from sentiment, questions, complaints, reach, ratings, age."""

from __future__ import annotations

import pytest

from marba_dagster.core.priority import (
    complaint_terms,
    is_question,
    label_for,
    order_key,
    prioritise,
)
from marba_dagster.core.sentiment import score_text


def p(text, item_type="comment", rating=None, followers=None, age=1.0):
    return prioritise(
        text=text,
        sentiment_score=score_text(text).score,
        item_type=item_type,
        rating=rating,
        author_followers=followers,
        age_hours=age,
    )


def test_ordering_of_typical_items():
    items = {
        "angry influencer": p("My order arrived broken and I want a refund 😡", followers=250_000),
        "one star review": p("Cold food, rude staff. Never again.", item_type="review", rating=1),
        "complaint": p("Charged twice, I want a refund", item_type="direct_message"),
        "question": p("What time do you open on Sundays?"),
        "praise": p("Love it 😍"),
        "five stars": p("Great place!", item_type="review", rating=5),
    }
    order = sorted(items, key=lambda k: order_key(items[k].label, items[k].score, 0))
    assert set(order[:2]) == {"angry influencer", "one star review"}
    assert order.index("complaint") < order.index("question") < order.index("praise")
    assert items["angry influencer"].label == "urgent"
    assert items["one star review"].label == "urgent"
    assert items["question"].label in ("normal", "high")
    assert items["praise"].label == "low" and items["five stars"].label == "low"


def test_each_factor_raises_priority():
    base = p("The order arrived today")
    assert p("The order arrived today?").score > base.score  # question
    assert p("The order arrived today, broken").score > base.score  # complaint term
    assert p("The order arrived today", followers=50_000).score > base.score  # reach
    assert p("The order arrived today", item_type="review", rating=2).score > base.score
    assert p("The order arrived today 😡").score > base.score  # negative sentiment


def test_age_lowers_priority():
    fresh = p("Still waiting on my refund", age=1)
    assert p("Still waiting on my refund", age=30).score < fresh.score
    assert (
        p("Still waiting on my refund", age=24 * 5).score
        < p("Still waiting on my refund", age=30).score
    )


def test_rating_checked_and_helpers():
    with pytest.raises(ValueError):
        p("x", item_type="review", rating=6)
    assert is_question("how do I return this") and not is_question("thanks")
    assert complaint_terms("I want to CANCEL, it's broken") == ["broken", "cancel"]
    assert label_for(0.75) == "urgent" and label_for(0.55) == "high" and label_for(0.3) == "normal"
    assert label_for(0.29) == "low"
    reasons = p("Refund please?", followers=20_000).reasons
    assert any("complaint" in r for r in reasons) and "question" in reasons
