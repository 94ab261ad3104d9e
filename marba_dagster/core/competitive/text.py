"""Text helpers for competitive monitoring: noise removal, terms, similarity. Pure functions."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

# Volatile fragments of visible text that say nothing about the competitor: clocks,
# dates, relative times, session/CSRF/cache tokens, UUIDs, long hex or base64 runs.
_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_NOISE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), " "),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}"
            r"(?:[t ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:z|utc|gmt|[+-]\d{2}:?\d{2})?)?",
            re.I,
        ),
        " ",
    ),
    (re.compile(r"\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b"), " "),
    (re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?,?\s+\d{{4}}\b", re.I), " "),
    (re.compile(rf"\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b", re.I), " "),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?|utc|gmt|[a-z]{2,4}t)?\b", re.I), " "),
    (
        re.compile(
            r"\b(?:\d+|an?|one)\s+(?:second|minute|hour|day|week|month|year)s?\s+ago\b", re.I
        ),
        " ",
    ),
    (re.compile(r"\b(?:just now|yesterday|today)\b", re.I), " "),
    (re.compile(r"\b(?=[a-z0-9_\-]*\d)(?=[a-z0-9_\-]*[a-z])[a-z0-9_\-]{16,}\b", re.I), " "),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.I), " "),
    (re.compile(r"[A-Za-z0-9+/]{24,}={0,2}"), " "),
)
_LABELS = re.compile(
    r"\b(?:last\s+updated|updated|generated|rendered|cached|served|build|session|csrf|token|nonce|request\s+id)\s*(?:at|on|:)?\s*(?=\W|$)",
    re.I,
)
_WS = re.compile(r"\s+")


def strip_noise(text: str) -> str:
    """``text`` without volatile fragments, whitespace collapsed."""
    for pattern, repl in _NOISE_PATTERNS:
        text = pattern.sub(repl, text)
    text = _LABELS.sub(" ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"(?:[,;:|·•\-–—]\s*){2,}", " ", text)
    return _WS.sub(" ", text).strip()


def collapse(text: str | None) -> str:
    return _WS.sub(" ", text or "").strip()


STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "get",
        "got",
        "new",
        "one",
        "two",
        "via",
        "per",
        "every",
        "us",
        "use",
        "using",
        "used",
        "make",
        "makes",
        "made",
        "way",
        "ways",
        "much",
        "many",
        "well",
        "back",
        "even",
        "still",
        "like",
        "just",
        "also",
        "today",
        "now",
        "amp",
        "nbsp",
        "quot",
    ]
)
# Words every business site repeats; never a topic, never a positioning term on their own.
BOILERPLATE = frozenset(
    [
        "home",
        "contact",
        "about",
        "privacy",
        "policy",
        "terms",
        "cookie",
        "cookies",
        "menu",
        "login",
        "log",
        "sign",
        "signup",
        "subscribe",
        "newsletter",
        "copyright",
        "rights",
        "reserved",
        "search",
        "cart",
        "checkout",
        "account",
        "page",
        "pages",
        "site",
        "website",
        "click",
        "read",
        "learn",
        "more",
        "view",
        "see",
        "all",
        "skip",
        "content",
        "main",
        "footer",
        "header",
        "navigation",
        "nav",
        "follow",
        "share",
        "email",
        "phone",
        "call",
        "us",
        "faq",
        "help",
        "support",
        "careers",
        "blog",
        "news",
        "press",
        "pricing",
        "price",
        "prices",
        "plan",
        "plans",
        "month",
        "year",
        "mo",
        "yr",
        "annually",
        "monthly",
        "buy",
        "order",
        "shop",
        "now",
        "free",
        "trial",
    ]
)
_TOKEN = re.compile(r"[^\W\d_][\w'\-]*[^\W_]|[^\W\d_]", re.UNICODE)


def _stem(word: str) -> str:
    """A light English stemmer: plural forms match their singular (and stay readable)."""
    if len(word) > 5 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms(text: str, *, boilerplate: bool = True) -> list[str]:
    """Content words of ``text``: lower-case, stop words out, lightly stemmed."""
    out = []
    for tok in _TOKEN.findall((text or "").lower()):
        tok = tok.strip("'-")
        if len(tok) < 3 or tok in STOPWORDS or (boilerplate and tok in BOILERPLATE):
            continue
        out.append(_stem(tok))
    return out


def term_counts(texts: Iterable[str]) -> Counter[str]:
    c: Counter[str] = Counter()
    for t in texts:
        c.update(terms(t))
    return c


def cosine(a: Counter[str] | dict[str, float], b: Counter[str] | dict[str, float]) -> float:
    if not a or not b:
        return 1.0 if not a and not b else 0.0
    dot = sum(v * b.get(k, 0.0) for k, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def words(text: str) -> list[str]:
    return [w for w in _WS.split(text or "") if w]
