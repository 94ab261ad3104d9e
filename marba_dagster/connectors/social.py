"""Types shared by the social platform read connectors (Graph API, X API v2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from marba_dagster.connectors.http import ClientError, HttpError, RateLimited


@dataclass(frozen=True)
class PlatformPost:
    """One post with its lifetime metrics as the platform reports them now.

    Counts a platform does not report are 0 (X reports no reach, Facebook no saves).
    """

    platform: str
    external_post_id: str
    published_at: datetime  # UTC
    body: str
    format: str  # one of store.schema.POST_FORMATS
    permalink: str | None
    impressions: int = 0
    reach: int = 0
    likes: int = 0
    comments: int = 0
    shares: int = 0
    saves: int = 0
    clicks: int = 0
    video_views: int = 0

    def metrics(self) -> dict[str, int]:
        return {
            "impressions": self.impressions,
            "reach": self.reach,
            "likes": self.likes,
            "comments": self.comments,
            "shares": self.shares,
            "saves": self.saves,
            "clicks": self.clicks,
            "video_views": self.video_views,
        }


@dataclass(frozen=True)
class AccountSnapshot:
    platform: str
    external_account_id: str
    followers: int


class TokenRejected(ClientError):
    """The platform refused the access token (HTTP 401, Graph error 190): the account needs
    to be reconnected by its owner. ``reason`` is safe to show (never the token)."""

    reason: str = ""


class PlatformRateLimited(RateLimited):
    """The platform's own throttling answer (Graph codes 4, 17, 32, 613) after retries."""


def token_rejected(err: HttpError, reason: str) -> TokenRejected:
    out = TokenRejected(
        reason,
        url=err.url,
        status=err.status,
        method=err.method,
        client=err.client,
        attempts=err.attempts,
    )
    out.reason = reason
    return out


def non_negative(value, name: str) -> int:
    """An integer count from an API field; MalformedResponse-worthy values raise ValueError."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} is not a number: {value!r}"[:120])
    if value < 0:
        raise ValueError(f"{name} is negative: {value!r}")
    return int(value)
