"""Competitive monitoring logic: page extraction, change detection, feeds and gaps (pure)."""

from .changes import (
    Change,
    ChangeThresholds,
    detect_page_changes,
    messaging_shift,
    posting_frequency_change,
)
from .extract import PageSnapshot, canonical_url, extract_page, parse_amount, text_prices
from .feeds import item_times, parse_feed
from .gaps import CompetitorActivity, Gap, find_gaps

__all__ = [
    "Change",
    "ChangeThresholds",
    "CompetitorActivity",
    "Gap",
    "PageSnapshot",
    "canonical_url",
    "detect_page_changes",
    "extract_page",
    "find_gaps",
    "item_times",
    "messaging_shift",
    "parse_amount",
    "parse_feed",
    "posting_frequency_change",
    "text_prices",
]
