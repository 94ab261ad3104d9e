"""Sentiment of social texts: VADER with the emoji map, checked on a labelled set."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from marba_dagster.core.sentiment import SentimentAnalyzer, label_for, score_text

LABELLED = Path(__file__).parent / "data" / "social_sentiment_labelled.tsv"
MIN_ACCURACY = 0.85


def labelled() -> list[tuple[str, str]]:
    with LABELLED.open(encoding="utf-8") as fh:
        return [(r["text"], r["label"]) for r in csv.DictReader(fh, delimiter="\t")]


def test_accuracy_on_labelled_social_texts():
    rows = labelled()
    assert len(rows) >= 100
    assert Counter(label for _, label in rows).keys() == {"positive", "negative", "neutral"}
    hits = sum(score_text(text).label == label for text, label in rows)
    accuracy = hits / len(rows)
    print(f"sentiment accuracy on {len(rows)} labelled social texts: {accuracy:.3f}")
    assert accuracy >= MIN_ACCURACY
    # Negative items are what the inbox must not miss: recall on them is held higher.
    negatives = [(t, label) for t, label in rows if label == "negative"]
    recall = sum(score_text(t).label == "negative" for t, _ in negatives) / len(negatives)
    assert recall >= 0.9


@pytest.mark.parametrize(
    "text, label",
    [
        ("😡", "negative"),
        ("🔥🔥🔥", "positive"),
        ("💔", "negative"),
        ("😍", "positive"),
        ("this is 👎", "negative"),
        ("love it ❤️", "positive"),  # with the variation selector
    ],
)
def test_emoji_carry_their_sentiment(text, label):
    assert score_text(text).label == label


def test_emoji_change_the_score_of_the_same_words():
    plain = score_text("the delivery came today").score
    assert (
        score_text("the delivery came today 😡").score
        < plain
        < score_text("the delivery came today 😍").score
    )


def test_negation_and_phrases():
    assert score_text("not good at all").label == "negative"
    assert score_text("my parcel never arrived").label == "negative"
    assert score_text("waste of money").score < -0.5


def test_empty_and_bounds():
    assert score_text("").label == "neutral" and score_text(None).score == 0.0
    s = SentimentAnalyzer().score("AMAZING!!! 😍😍😍 best ever 🔥🔥")
    assert -1.0 <= s.score <= 1.0 and s.label == "positive"
    assert (
        label_for(0.05) == "positive"
        and label_for(-0.05) == "negative"
        and label_for(0.0) == "neutral"
    )
