"""Sentiment of social media text: VADER (a lexicon built for social media), emoji-aware.

VADER already reads emoticons, slang, capitals, "!!!" and negation. Its emoji handling
replaces each emoji with its Unicode name and scores the words, which misreads the emoji
people use most in replies ("pouting face" is neutral, "fire" is negative, "broken heart"
half positive). So the emoji that carry clear sentiment in comments and reviews are mapped
to valence tokens first, and a few customer-service words VADER lacks ("refund",
"overpriced", "never arrived") are added to its lexicon. Scores are VADER's compound
(-1..1); labels use VADER's recommended thresholds (±0.05).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
LABELS = ("positive", "neutral", "negative")

# Emoji -> valence on VADER's -4..4 scale, as they are used in replies to brands.
EMOJI_VALENCE: dict[str, float] = {
    # positive
    "😍": 3.0,
    "🥰": 3.0,
    "😘": 2.5,
    "❤": 2.5,
    "❤️": 2.5,
    "💖": 2.5,
    "💕": 2.5,
    "💗": 2.5,
    "💯": 2.0,
    "🔥": 2.0,
    "👏": 2.0,
    "🙌": 2.0,
    "👍": 1.8,
    "😊": 2.0,
    "😀": 2.0,
    "😃": 2.0,
    "😄": 2.0,
    "😁": 2.0,
    "🤩": 3.0,
    "🥳": 2.5,
    "🎉": 2.0,
    "✨": 1.5,
    "⭐": 1.5,
    "🌟": 1.8,
    "😋": 2.0,
    "🤤": 1.5,
    "🙏": 1.5,
    "💪": 1.5,
    "👌": 1.8,
    "😎": 1.5,
    "🤗": 2.0,
    "☺": 2.0,
    "☺️": 2.0,
    "😂": 1.2,
    "🤣": 1.2,
    # negative
    "😡": -3.0,
    "🤬": -3.5,
    "😠": -2.8,
    "👎": -2.5,
    "💔": -2.5,
    "😢": -2.2,
    "😭": -2.0,
    "😞": -2.2,
    "😔": -1.8,
    "😟": -1.8,
    "😤": -2.2,
    "🙄": -1.8,
    "😒": -1.8,
    "🤮": -3.0,
    "🤢": -2.5,
    "😩": -2.0,
    "😫": -2.0,
    "😖": -2.0,
    "😣": -1.8,
    "☹": -2.0,
    "☹️": -2.0,
    "🙁": -1.8,
    "😕": -1.2,
    "💩": -2.5,
    "🤡": -1.5,
    "😱": -1.2,
    "🐌": -1.0,
}

# Customer-service vocabulary VADER does not know (or weighs too lightly).
EXTRA_LEXICON: dict[str, float] = {
    "refund": -1.2,
    "refunded": -0.8,
    "overpriced": -1.8,
    "overcharged": -2.2,
    "unusable": -2.2,
    "scammed": -2.8,
    "ripoff": -2.5,
    "rip-off": -2.5,
    "defective": -2.0,
    "faulty": -1.8,
    "stale": -1.5,
    "soggy": -1.5,
    "lukewarm": -0.8,
    "cancelled": -0.8,
    "canceled": -0.8,
    "unresponsive": -1.8,
    "ghosted": -1.8,
    "downhill": -1.5,
    "yummy": 2.2,
    "delish": 2.4,
    "obsessed": 1.8,
    "lit": 1.5,
    "goat": 1.5,
    "fab": 2.2,
    "faves": 1.8,
    "fave": 1.8,
}

# Phrases whose meaning is not the sum of their words.
PHRASES: dict[str, float] = {
    "never arrived": -2.5,
    "never showed up": -2.5,
    "still waiting": -1.8,
    "waste of money": -2.8,
    "waste of time": -2.5,
    "not worth": -2.0,
    "doesn't work": -2.0,
    "does not work": -2.0,
    "stopped working": -2.2,
    "no one answers": -2.0,
    "nobody answers": -2.0,
    "charged twice": -2.5,
    "highly recommend": 2.8,
    "can't wait": 1.8,
    "cannot wait": 1.8,
    "must try": 2.0,
}

_EMOJI_TOKEN = "zzemo{:d}zz"
_PHRASE_TOKEN = "zzphr{:d}zz"
_VS16 = "\ufe0f"


@dataclass(frozen=True)
class Sentiment:
    score: float  # -1..1 (VADER compound)
    label: str  # positive / neutral / negative

    def as_dict(self) -> dict:
        return {"sentiment_score": self.score, "sentiment_label": self.label}


def label_for(score: float) -> str:
    if score >= POSITIVE_THRESHOLD:
        return "positive"
    if score <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


class SentimentAnalyzer:
    """A VADER analyzer with the emoji map and extra lexicon above; thread-safe to share."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._vader = SentimentIntensityAnalyzer()
        lexicon = self._vader.lexicon
        lexicon.update(EXTRA_LEXICON)
        self._emoji_tokens: dict[str, str] = {}
        for i, (emo, valence) in enumerate(
            sorted(EMOJI_VALENCE.items(), key=lambda kv: -len(kv[0]))
        ):
            token = _EMOJI_TOKEN.format(i)
            self._emoji_tokens[emo] = token
            lexicon[token] = valence
        self._phrase_tokens: list[tuple[re.Pattern[str], str]] = []
        for i, (phrase, valence) in enumerate(PHRASES.items()):
            token = _PHRASE_TOKEN.format(i)
            pattern = re.compile(
                r"\b" + re.escape(phrase).replace("'", "['’]") + r"\b", re.IGNORECASE
            )
            self._phrase_tokens.append((pattern, token))
            lexicon[token] = valence
        emojis = sorted(self._emoji_tokens, key=len, reverse=True)
        self._emoji_re = re.compile("|".join(re.escape(e) for e in emojis))

    def _prepare(self, text: str) -> str:
        for pattern, token in self._phrase_tokens:
            text = pattern.sub(f" {token} ", text)
        # Spaces around each token so VADER sees it as a word of its own.
        text = self._emoji_re.sub(lambda m: f" {self._emoji_tokens[m.group(0)]} ", text)
        return text.replace(_VS16, "")

    def score(self, text: str | None) -> Sentiment:
        if not text or not text.strip():
            return Sentiment(0.0, "neutral")
        compound = float(self._vader.polarity_scores(self._prepare(text))["compound"])
        compound = max(-1.0, min(1.0, compound))
        return Sentiment(round(compound, 4), label_for(compound))


_SHARED: SentimentAnalyzer | None = None
_LOCK = threading.Lock()


def analyzer() -> SentimentAnalyzer:
    """One analyzer per process (building VADER's lexicon takes a moment)."""
    global _SHARED
    with _LOCK:
        if _SHARED is None:
            _SHARED = SentimentAnalyzer()
        return _SHARED


def score_text(text: str | None) -> Sentiment:
    return analyzer().score(text)
