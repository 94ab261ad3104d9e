"""Opportunity detection: pure logic (no Dagster, no I/O).

weather     place-relative thresholds and events in a 48-hour forecast
calendar    public holidays and the marketing calendar with lead times
matching    trends and news matched to a brand's keywords and industry
relevance   the editable event -> industry mapping
urgency     urgency from time to expiry
scoring     signals -> opportunities (score, dedup key, actions, evidence)
predictive  the brand's likelihood to act, learned from past decisions
"""

from .relevance import (
    DEFAULT_RELEVANCE,
    RelevanceError,
    RelevanceMap,
    merge_relevance,
    parse_relevance,
)
from .scoring import OpportunityDraft, build_opportunities, score_of
from .urgency import URGENCY_RANK, urgency_for

__all__ = [
    "DEFAULT_RELEVANCE",
    "OpportunityDraft",
    "RelevanceError",
    "RelevanceMap",
    "URGENCY_RANK",
    "build_opportunities",
    "merge_relevance",
    "parse_relevance",
    "score_of",
    "urgency_for",
]
