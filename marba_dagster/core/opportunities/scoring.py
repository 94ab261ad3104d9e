"""From signals to opportunities: relevance, urgency, score, dedup key, actions, evidence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .relevance import RelevanceMap
from .urgency import urgency_for, urgency_weight

MIN_RELEVANCE = 0.3
COMPETITOR_TTL = timedelta(hours=72)
SIGNAL_TO_OPPORTUNITY = {
    "weather": "weather",
    "trend": "trending_topic",
    "seasonal": "seasonal_event",
    "news": "local_news",
    "competitor": "competitor_activity",
}
W_RELEVANCE, W_STRENGTH, W_URGENCY = 0.5, 0.3, 0.2

ACTIONS: dict[str, list[str]] = {
    "rain": [
        "Post a rainy-day offer (delivery, cosy indoor moments)",
        "Promote umbrellas, hot drinks or delivery in stories today",
        "Boost local ads while the rain lasts",
    ],
    "heat": [
        "Feature cold drinks or cooling products",
        "Run a heat-wave happy hour or limited offer",
        "Schedule posts for the hottest hours",
    ],
    "cold": [
        "Promote warm drinks, comfort food or winter gear",
        "Post a cold-snap offer for the next two days",
    ],
    "snow": [
        "Announce snow-day opening hours or delivery",
        "Promote winter essentials and snow-day offers",
    ],
    "wind": [
        "Warn customers about changed hours or outdoor seating",
        "Promote indoor services and delivery",
    ],
    "trend": [
        "Join the trending conversation with a relevant post today",
        "Tie the trend to a product in a short video or story",
        "Use the trend's wording in captions and hashtags",
    ],
    "news": [
        "Respond to the local story with a helpful post",
        "Mention the local event in stories and offers",
    ],
    "competitor": [
        "Review the competitor's change and answer with your own offer",
        "Reinforce your differentiators in the next posts",
    ],
    "pricing_change": [
        "Compare value publicly: highlight what your price includes",
        "Consider a time-limited counter-offer",
    ],
    "product_launch": [
        "Showcase your comparable or better product",
        "Prepare a reply campaign to the launch",
    ],
    "seasonal": [
        "Plan a themed campaign and schedule posts ahead",
        "Prepare an offer or gift guide for the occasion",
        "Update opening hours and stock for the day",
    ],
}


@dataclass
class OpportunityDraft:
    opportunity_type: str
    title: str
    description: str
    urgency: str
    score: float
    expires_at: datetime | None
    dedup_key: str
    evidence: dict[str, Any]
    suggested_actions: list[str]
    relevance: float = 0.0
    strength: float = 0.0
    kind: str = ""
    features: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "opportunity_type": self.opportunity_type,
            "title": self.title,
            "description": self.description,
            "urgency": self.urgency,
            "score": self.score,
            "expires_at": self.expires_at,
            "dedup_key": self.dedup_key,
            "evidence": self.evidence,
            "suggested_actions": self.suggested_actions,
        }


def score_of(relevance: float, strength: float, urgency: str) -> float:
    """0..1: relevance to the brand weighs most, then the signal's strength, then urgency."""
    value = W_RELEVANCE * relevance + W_STRENGTH * strength + W_URGENCY * urgency_weight(urgency)
    return round(min(1.0, max(0.0, value)), 4)


def _kind(signal: Mapping[str, Any]) -> str:
    payload = signal.get("payload") or {}
    st = signal["signal_type"]
    if st == "competitor":
        return str(payload.get("change_type") or "website_change")
    if st in ("weather", "seasonal"):
        return str(payload.get("kind") or st)
    return st


def _relevance(
    signal: Mapping[str, Any], brand: Mapping[str, Any], rmap: RelevanceMap
) -> tuple[float, str]:
    payload = signal.get("payload") or {}
    st = signal["signal_type"]
    if st in ("trend", "news"):
        m = payload.get("match") or {}
        return float(
            m.get("score", 0.0)
        ), f"matched {', '.join(m.get('terms', []))} in {m.get('where', '?')}"
    return rmap.weight(_kind(signal), brand.get("industry"), brand.get("keywords") or [])


def _description(
    st: str, kind: str, signal: Mapping[str, Any], brand: Mapping[str, Any], why: str
) -> str:
    name = brand.get("name") or brand.get("id")
    payload = signal.get("payload") or {}
    if st == "weather":
        return (
            f"{signal['title']}. The threshold for this place is {payload.get('threshold')} "
            f"{payload.get('unit', '')} ({payload.get('basis', 'place-relative')}); relevant to "
            f"{name} because of {why}."
        )
    if st == "seasonal":
        return f"{signal['title']} is coming up for {name} ({why})."
    if st == "competitor":
        return f"Competitor activity ({kind.replace('_', ' ')}): {signal['title']}."
    return f"{signal['title']} — relevant to {name}: {why}."


def build_opportunities(
    signals: Iterable[Mapping[str, Any]],
    brand: Mapping[str, Any],
    rmap: RelevanceMap,
    now: datetime,
    *,
    min_relevance: float = MIN_RELEVANCE,
) -> tuple[list[OpportunityDraft], list[dict[str, Any]]]:
    """(opportunities, skipped signals with the reason). Signals past their validity are
    skipped; the same event (dedup key) yields one opportunity, the strongest."""
    out: dict[str, OpportunityDraft] = {}
    skipped: list[dict[str, Any]] = []
    for sig in signals:
        st = sig["signal_type"]
        otype = SIGNAL_TO_OPPORTUNITY.get(st)
        if otype is None:
            skipped.append(
                {"dedup_key": sig.get("dedup_key"), "reason": f"unknown signal type {st!r}"}
            )
            continue
        expires = sig.get("valid_until")
        if expires is None and st == "competitor":
            expires = sig["observed_at"] + COMPETITOR_TTL
        if expires is not None and expires <= now:
            skipped.append({"dedup_key": sig.get("dedup_key"), "reason": "expired"})
            continue
        rel, why = _relevance(sig, brand, rmap)
        if rel < min_relevance:
            skipped.append(
                {
                    "dedup_key": sig.get("dedup_key"),
                    "reason": f"relevance {rel:.2f} < {min_relevance}",
                }
            )
            continue
        kind = _kind(sig)
        strength = float(sig.get("strength") or 0.0)
        urgency = urgency_for(expires, now)
        score = score_of(rel, strength, urgency)
        key = f"{otype}:{sig['dedup_key']}"[:200]
        actions = ACTIONS.get(kind) or ACTIONS.get(st) or []
        payload = dict(sig.get("payload") or {})
        draft = OpportunityDraft(
            opportunity_type=otype,
            title=str(sig["title"])[:500],
            description=_description(st, kind, sig, brand, why),
            urgency=urgency,
            score=score,
            expires_at=expires,
            dedup_key=key,
            evidence={
                "signal_id": sig.get("id"),
                "signal_type": st,
                "source": sig.get("source"),
                "observed_at": sig["observed_at"].isoformat() if sig.get("observed_at") else None,
                "relevance": {"weight": round(rel, 4), "why": why},
                "strength": round(strength, 4),
                "details": payload,
            },
            suggested_actions=list(actions),
            relevance=rel,
            strength=strength,
            kind=kind,
        )
        draft.features = features_of(draft)
        prev = out.get(key)
        if prev is None or draft.score > prev.score:
            out[key] = draft
    ranked = sorted(
        out.values(), key=lambda d: (d.expires_at is None, d.expires_at or now, -d.score)
    )
    return ranked, skipped


def features_of(d: OpportunityDraft | Mapping[str, Any]) -> dict[str, Any]:
    """The features the predictive model sees (also stored in evidence for history rows)."""
    if isinstance(d, OpportunityDraft):
        return {
            "type": d.opportunity_type,
            "kind": d.kind,
            "urgency": d.urgency,
            "score": d.score,
            "relevance": round(d.relevance, 4),
            "strength": round(d.strength, 4),
        }
    return dict(d)
