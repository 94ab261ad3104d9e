"""Competitors' activity on their own social accounts (Instagram, X): which accounts to read,
and what counts as a change (pure: no I/O).

A competitor's ``social_accounts`` (``{"instagram": "name", "x": "name" | "numeric id"}``;
``@``, a profile URL or blanks around the name are accepted) names the accounts. Each run
reads their recent posts into a snapshot; the posts of the current snapshot and of the
earlier ones (by post id) make the account's history, on which three rules run:

* **posting frequency**: the last week's posts against the account's own weekly rate before
  it (:func:`.changes.posting_frequency_change`, the feeds' rule);
* **campaign**: a hashtag used at least ``campaign_min_uses`` times in the last week and never
  in the baseline weeks before it;
* **engagement spike**: a post of the last week whose likes + comments (+ reposts) reach
  ``spike_ratio`` times the median of the account's baseline posts (at least
  ``spike_min_baseline`` of them, and at least ``spike_min_engagement`` in all).

Each becomes a ``social_activity`` change with a stable key, so the same event seen by later
runs updates one signal.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from .changes import Change, ChangeThresholds, posting_frequency_change

__all__ = [
    "SOCIAL_PLATFORMS",
    "SocialPost",
    "SocialThresholds",
    "detect_social_changes",
    "hashtags",
    "merge_history",
    "profile_url",
    "social_targets",
]

SOCIAL_PLATFORMS = ("instagram", "x")
PROFILE_HOSTS = {
    "instagram": ("instagram.com", "www.instagram.com"),
    "x": ("x.com", "www.x.com", "twitter.com", "www.twitter.com", "mobile.twitter.com"),
}
_NAME = {
    "instagram": re.compile(r"^[A-Za-z0-9._]{1,30}$"),
    "x": re.compile(r"^[A-Za-z0-9_]{1,15}$|^[0-9]{1,20}$"),
}
_HASHTAG = re.compile(r"(?<![\w&])#(\w{2,100})", re.UNICODE)
TEXT_CHARS = 500  # characters of a post's text kept in a snapshot


@dataclass(frozen=True)
class SocialThresholds:
    campaign_min_uses: int = 3
    # A hashtag is only "new" against a baseline of at least this many earlier posts.
    campaign_min_baseline: int = 3
    recent_days: int = 7
    spike_ratio: float = 3.0
    spike_min_baseline: int = 5
    spike_min_engagement: int = 20
    # History kept for the rules (the baseline weeks plus the recent one).
    history_days: int = 63
    frequency: ChangeThresholds = ChangeThresholds()


@dataclass(frozen=True)
class SocialPost:
    post_id: str
    created_at: datetime
    text: str = ""
    likes: int = 0
    comments: int = 0
    shares: int = 0
    permalink: str | None = None

    @property
    def engagement(self) -> int:
        return self.likes + self.comments + self.shares

    def as_json(self) -> dict[str, Any]:
        """The post as a snapshot stores it (``posts`` JSON)."""
        return {
            "id": self.post_id,
            "created_at": self.created_at.isoformat(),
            "text": self.text[:TEXT_CHARS],
            "likes": self.likes,
            "comments": self.comments,
            "shares": self.shares,
            "permalink": self.permalink,
        }

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> SocialPost:
        return cls(
            post_id=str(item["id"]),
            created_at=datetime.fromisoformat(str(item["created_at"])),
            text=str(item.get("text") or ""),
            likes=int(item.get("likes") or 0),
            comments=int(item.get("comments") or 0),
            shares=int(item.get("shares") or 0),
            permalink=item.get("permalink"),
        )


def _account_name(platform: str, value: Any) -> str | None:
    """The account name in ``value`` (``@name``, ``name``, a profile URL), or None if it
    names no valid account."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if "/" in text:
        parts = urlsplit(text if "://" in text else f"https://{text}")
        if (parts.hostname or "").lower() not in PROFILE_HOSTS[platform]:
            return None
        segments = [p for p in parts.path.split("/") if p]
        text = segments[0] if segments else ""
    text = text.lstrip("@")
    return text if _NAME[platform].match(text) else None


def social_targets(
    competitor: Mapping[str, Any],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """((platform, account name) to read, (platform, value) that names no valid account)
    for a competitor's ``social_accounts``; platforms other than Instagram and X are not
    read here."""
    targets: list[tuple[str, str]] = []
    invalid: list[tuple[str, str]] = []
    accounts = competitor.get("social_accounts") or {}
    if not isinstance(accounts, Mapping):
        return [], [("social_accounts", str(accounts)[:100])]
    for platform, value in accounts.items():
        key = str(platform).strip().lower()
        key = "x" if key == "twitter" else key
        if key not in SOCIAL_PLATFORMS or value in (None, ""):
            continue
        name = _account_name(key, value)
        if name is None:
            invalid.append((key, str(value)[:100]))
        else:
            targets.append((key, name))
    return targets, invalid


def profile_url(platform: str, name: str) -> str:
    if platform == "instagram":
        return f"https://www.instagram.com/{name}/"
    return f"https://x.com/i/user/{name}" if name.isdigit() else f"https://x.com/{name}"


def hashtags(text: str) -> set[str]:
    """The post's hashtags, lower-cased, without ``#``."""
    return {tag.lower() for tag in _HASHTAG.findall(text or "")}


def merge_history(
    current: Sequence[SocialPost], earlier: Iterable[Iterable[Mapping[str, Any]]], since: datetime
) -> list[SocialPost]:
    """The account's posts since ``since``: the current snapshot's, then those only earlier
    snapshots hold (older posts a short timeline no longer shows), newest first."""
    posts = {p.post_id: p for p in current}
    for snapshot in earlier:
        for item in snapshot:
            try:
                post = SocialPost.from_json(item)
            except (KeyError, TypeError, ValueError):
                continue  # a row written by another version: skip, never fail the run
            posts.setdefault(post.post_id, post)
    kept = [p for p in posts.values() if p.created_at >= since]
    return sorted(kept, key=lambda p: (p.created_at, p.post_id), reverse=True)


def _week(now: datetime) -> str:
    week = now.isocalendar()
    return f"{week.year}-W{week.week:02d}"


def _campaigns(
    source: str, recent: Sequence[SocialPost], baseline: Sequence[SocialPost], t: SocialThresholds
) -> list[Change]:
    if len(baseline) < t.campaign_min_baseline:
        return []
    used_before = set().union(*(hashtags(p.text) for p in baseline))
    uses = Counter(tag for p in recent for tag in hashtags(p.text))
    changes = []
    for tag, count in sorted(uses.items()):
        if count < t.campaign_min_uses or tag in used_before:
            continue
        posts = [p for p in recent if tag in hashtags(p.text)]
        changes.append(
            Change(
                "social_activity",
                f"New campaign on {source}: #{tag} in {count} posts this week",
                {
                    "source": source,
                    "kind": "campaign",
                    "hashtag": tag,
                    "uses": count,
                    "recent_days": t.recent_days,
                    "first_used_at": min(p.created_at for p in posts).isoformat(),
                    "permalinks": [p.permalink for p in posts if p.permalink][:5],
                },
                strength=round(min(1.0, 0.4 + 0.1 * count), 3),
                key=f"social:{source}:campaign:{tag}",
            )
        )
    return changes


def _spikes(
    source: str, recent: Sequence[SocialPost], baseline: Sequence[SocialPost], t: SocialThresholds
) -> list[Change]:
    if len(baseline) < t.spike_min_baseline:
        return []
    median = statistics.median(p.engagement for p in baseline)
    changes = []
    for post in recent:
        ratio = post.engagement / median if median > 0 else float("inf")
        if post.engagement < t.spike_min_engagement or ratio < t.spike_ratio:
            continue
        changes.append(
            Change(
                "social_activity",
                f"Engagement spike on {source}: a post with {post.engagement} interactions "
                f"vs {median:g} usually",
                {
                    "source": source,
                    "kind": "engagement_spike",
                    "post_id": post.post_id,
                    "permalink": post.permalink,
                    "engagement": post.engagement,
                    "baseline_median": median,
                    "ratio": None if ratio == float("inf") else round(ratio, 2),
                    "text": post.text[:200],
                },
                strength=round(min(1.0, 0.3 + min(ratio, 20) / 20), 3),
                key=f"social:{source}:engagement:{post.post_id}",
            )
        )
    return changes


def detect_social_changes(
    source: str,
    posts: Sequence[SocialPost],
    now: datetime,
    thresholds: SocialThresholds = SocialThresholds(),
) -> list[Change]:
    """``social_activity`` changes in an account's history ``posts`` (``merge_history``):
    a posting-frequency change, new-hashtag campaigns, engagement spikes. ``source`` names the
    account (``instagram @name``) in titles and keys."""
    recent_from = now - timedelta(days=thresholds.recent_days)
    recent = [p for p in posts if recent_from <= p.created_at <= now]
    baseline = [p for p in posts if p.created_at < recent_from]
    changes: list[Change] = []
    frequency = posting_frequency_change(
        [p.created_at for p in posts], now, source=source, thresholds=thresholds.frequency
    )
    if frequency is not None:
        frequency.details["kind"] = "posting_frequency"
        changes.append(frequency)
    changes += _campaigns(source, recent, baseline, thresholds)
    changes += _spikes(source, recent, baseline, thresholds)
    for change in changes:
        change.details.setdefault("week", _week(now))
    return changes
