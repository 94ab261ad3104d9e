"""Priority of an engagement inbox item: what a person should answer first.

A score in 0..1 built from explainable parts, then a label:

* negative sentiment raises it in proportion to how negative;
* a question (someone waits for an answer) and complaint terms (refund, broken, cancel...)
  raise it; a direct message is addressed to the brand, so it counts a little more;
* review ratings of 1-2 stars raise it strongly, 3 stars a little;
* the author's reach (followers) raises it: an unhappy account with 100k followers is seen;
* age lowers it: a comment three days old is past the moment a reply helps most.

``urgent`` >= 0.75, ``high`` >= 0.55, ``normal`` >= 0.30, else ``low``. ``reasons`` lists the
parts that contributed, for the app to show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

URGENT, HIGH, NORMAL, LOW = "urgent", "high", "normal", "low"
THRESHOLDS = ((URGENT, 0.75), (HIGH, 0.55), (NORMAL, 0.30))
PRIORITY_RANK = {URGENT: 0, HIGH: 1, NORMAL: 2, LOW: 3}

COMPLAINT_TERMS = (
    "refund",
    "broken",
    "cancel",
    "cancelled",
    "canceled",
    "cancellation",
    "charged twice",
    "overcharged",
    "never arrived",
    "never received",
    "not received",
    "missing",
    "damaged",
    "defective",
    "scam",
    "fraud",
    "complaint",
    "unacceptable",
    "worst",
    "food poisoning",
    "sick",
    "allergic",
    "lawyer",
    "report you",
    "chargeback",
    "stopped working",
    "doesn't work",
    "does not work",
    "rude",
)
_COMPLAINT_RE = re.compile(
    r"\b(" + "|".join(re.escape(t).replace("'", "['’]") for t in COMPLAINT_TERMS) + r")\b",
    re.IGNORECASE,
)
_QUESTION_START = re.compile(
    r"^\s*(who|what|when|where|why|how|can|could|do|does|did|is|are|will|would|should|any)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Priority:
    label: str
    score: float
    reasons: tuple[str, ...] = field(default_factory=tuple)


def is_question(text: str | None) -> bool:
    if not text:
        return False
    if "?" in text:
        return True
    return any(_QUESTION_START.match(s) for s in re.split(r"[.!\n]+", text) if s.strip())


def complaint_terms(text: str | None) -> list[str]:
    if not text:
        return []
    return sorted({m.group(1).lower() for m in _COMPLAINT_RE.finditer(text)})


def label_for(score: float) -> str:
    for label, threshold in THRESHOLDS:
        if score >= threshold:
            return label
    return LOW


def prioritise(
    *,
    text: str | None,
    sentiment_score: float,
    item_type: str = "comment",
    rating: int | None = None,
    author_followers: int | None = None,
    age_hours: float = 0.0,
) -> Priority:
    """The priority of one item (see the module docstring for the rules)."""
    if rating is not None and not 1 <= rating <= 5:
        raise ValueError(f"review rating must be 1..5, got {rating}")
    score = 0.25
    reasons: list[str] = []
    if sentiment_score <= -0.05:
        bump = 0.35 * min(1.0, -sentiment_score)
        score += bump
        reasons.append(f"negative sentiment ({sentiment_score:+.2f})")
    elif sentiment_score >= 0.5:
        score -= 0.08
    if is_question(text):
        score += 0.15
        reasons.append("question")
    terms = complaint_terms(text)
    if terms:
        score += 0.25
        reasons.append("complaint: " + ", ".join(terms[:3]))
    if item_type == "direct_message":
        score += 0.05
        reasons.append("direct message")
    if rating is not None:
        if rating <= 2:
            score += 0.35
            reasons.append(f"{rating}-star review")
        elif rating == 3:
            score += 0.08
            reasons.append("3-star review")
        else:
            score -= 0.05
    followers = author_followers or 0
    if followers >= 100_000:
        score += 0.2
        reasons.append(f"author reach {followers:,}")
    elif followers >= 10_000:
        score += 0.12
        reasons.append(f"author reach {followers:,}")
    elif followers >= 1_000:
        score += 0.05
    if age_hours > 72:
        score -= 0.25
        reasons.append(f"{age_hours / 24:.0f} days old")
    elif age_hours > 24:
        score -= 0.1
        reasons.append(f"{age_hours:.0f}h old")
    score = round(max(0.0, min(1.0, score)), 4)
    return Priority(label_for(score), score, tuple(reasons))


def order_key(priority_label: str, priority_score: float, received_ts: float) -> tuple:
    """Sort key for an inbox: label rank, then higher score, then older first."""
    return (PRIORITY_RANK.get(priority_label, 9), -priority_score, received_ts)
