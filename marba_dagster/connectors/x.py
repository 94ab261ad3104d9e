"""X API v2 read client: the account's posts with their metrics, and its followers.

Formats (X API v2):

* ``GET /users/{id}/tweets?max_results=100&start_time=&end_time=&tweet.fields=created_at,
  public_metrics,non_public_metrics,attachments,entities&expansions=attachments.media_keys&
  media.fields=type&pagination_token=`` -> ``{"data": [...], "includes": {"media": [...]},
  "meta": {"result_count", "next_token"}}`` (``{"meta": {"result_count": 0}}`` when empty).
  ``non_public_metrics`` (impressions, link clicks) are owner-only: without that grant X
  answers with the public data and an ``errors`` entry, and the public
  ``impression_count`` is used.
* ``GET /users/{id}?user.fields=public_metrics`` -> followers.

The token goes in ``Authorization: Bearer`` (never logged). HTTP 401 -> ``TokenRejected``;
429 is retried by ``ApiClient`` after ``Retry-After``/back-off, then ``RateLimited``.
X reports no reach: ``reach`` is 0 and the engagement rate falls back to impressions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marba_dagster.connectors.http import ApiClient, ClientError, MalformedResponse
from marba_dagster.connectors.social import (
    AccountSnapshot,
    PlatformPost,
    non_negative,
    token_rejected,
)
from marba_dagster.core.tokens import is_token_rejection

PAGE_SIZE = 100
MAX_PAGES = 500
TWEET_FIELDS = "created_at,public_metrics,non_public_metrics,attachments,entities"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _x_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"bad created_at {value!r}"[:80])
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError("created_at without offset")
    return when.astimezone(UTC)


class XClient:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def _get(self, path: str, params: dict[str, Any], token: str) -> dict:
        try:
            body = self.client.get_json(
                path, params=params, headers={"Authorization": f"Bearer {token}"}
            )
        except ClientError as err:
            if is_token_rejection(err.status):
                raise token_rejected(err, "HTTP 401 (token rejected)") from None
            raise
        if not isinstance(body, dict):
            raise MalformedResponse(
                "expected a JSON object", url=self.client.url_for(path), client=self.client.name
            )
        return body

    def posts(
        self, user_id: str, token: str, since: datetime, until: datetime
    ) -> list[PlatformPost]:
        """Posts created in [since, until) with their metrics."""
        path = f"users/{user_id}/tweets"
        params: dict[str, Any] = {
            "max_results": PAGE_SIZE,
            "start_time": _iso(since),
            "end_time": _iso(until),
            "tweet.fields": TWEET_FIELDS,
            "expansions": "attachments.media_keys",
            "media.fields": "type",
        }
        out: list[PlatformPost] = []
        for _ in range(MAX_PAGES):
            body = self._get(path, params, token)
            meta = body.get("meta")
            data = body.get("data", [])
            if not isinstance(meta, dict) or not isinstance(data, list):
                raise MalformedResponse(
                    "X timeline without `meta` or with a non-list `data`",
                    url=self.client.url_for(path),
                    client=self.client.name,
                )
            media = {
                m.get("media_key"): m.get("type")
                for m in ((body.get("includes") or {}).get("media") or [])
                if isinstance(m, dict)
            }
            for item in data:
                out.append(self._post(item, media, path))
            nxt = meta.get("next_token")
            if not nxt or not data:
                return [p for p in out if since <= p.published_at < until]
            params = {**params, "pagination_token": nxt}
        raise MalformedResponse(
            f"more than {MAX_PAGES} pages", url=self.client.url_for(path), client=self.client.name
        )

    def _post(self, item: Any, media: dict, path: str) -> PlatformPost:
        try:
            if not isinstance(item, dict) or not item.get("id"):
                raise ValueError("post without an id")
            pub = item.get("public_metrics")
            if not isinstance(pub, dict):
                raise ValueError("post without public_metrics")
            private = item.get("non_public_metrics") or {}
            keys = ((item.get("attachments") or {}).get("media_keys")) or []
            kinds = [media.get(k) for k in keys]
            if any(k in ("video", "animated_gif") for k in kinds):
                fmt = "video"
            elif len(keys) > 1:
                fmt = "carousel"
            elif keys:
                fmt = "image"
            elif (item.get("entities") or {}).get("urls"):
                fmt = "link"
            else:
                fmt = "text"
            impressions = private.get("impression_count", pub.get("impression_count"))
            return PlatformPost(
                platform="x",
                external_post_id=str(item["id"]),
                published_at=_x_time(item.get("created_at")),
                body=str(item.get("text") or ""),
                format=fmt,
                permalink=None,
                impressions=non_negative(impressions, "impression_count"),
                reach=0,
                likes=non_negative(pub.get("like_count"), "like_count"),
                comments=non_negative(pub.get("reply_count"), "reply_count"),
                shares=non_negative(pub.get("retweet_count"), "retweet_count")
                + non_negative(pub.get("quote_count"), "quote_count"),
                saves=non_negative(pub.get("bookmark_count"), "bookmark_count"),
                clicks=non_negative(private.get("url_link_clicks"), "url_link_clicks"),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise MalformedResponse(
                f"malformed X post: {exc}", url=self.client.url_for(path), client=self.client.name
            ) from None

    def followers(self, user_id: str, token: str) -> AccountSnapshot:
        path = f"users/{user_id}"
        body = self._get(path, {"user.fields": "public_metrics"}, token)
        try:
            count = body["data"]["public_metrics"]["followers_count"]
            return AccountSnapshot("x", user_id, non_negative(count, "followers_count"))
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedResponse(
                f"malformed X user: {exc}", url=self.client.url_for(path), client=self.client.name
            ) from None
