"""Competitors' own social accounts: Instagram Business Discovery and the X user timeline.

Formats (as documented by each platform):

* Instagram Business Discovery (Graph API, the brand's own Instagram professional account
  and its token, permissions ``instagram_basic`` and ``pages_read_engagement``):
  ``GET /{ig-user-id}?fields=business_discovery.username(NAME){followers_count,media_count,
  media.limit(N){id,caption,like_count,comments_count,timestamp,permalink}}`` ->
  ``{"business_discovery": {"followers_count", "media_count", "media": {"data": [...],
  "paging": {"cursors": {"after"}, "next"}}, "id"}, "id"}``; the next page of media by asking
  again with ``media.after(CURSOR).limit(N)``. An unknown or non-professional username is a
  Graph error (code 110, or 100 with subcode 33).
* X API v2 with an app-only bearer token: ``GET /2/users/by/username/{name}?user.fields=
  public_metrics`` (or ``GET /2/users/{id}`` for a numeric id) -> ``{"data": {"id",
  "username", "public_metrics": {"followers_count", "tweet_count"}}}``, an unknown user
  answering 200 with only ``{"errors": [{"title": "Not Found Error", ...}]}``; then
  ``GET /2/users/{id}/tweets?start_time&max_results=100&tweet.fields=created_at,
  public_metrics&exclude=retweets,replies`` -> ``{"data": [{"id", "text", "created_at",
  "public_metrics": {"like_count", "reply_count", "retweet_count", "quote_count"}}],
  "meta": {"result_count", "next_token"}}``, the next page with ``pagination_token``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from marba_dagster.connectors.engagement import parse_timestamp
from marba_dagster.connectors.http import ApiClient, ClientError, MalformedResponse
from marba_dagster.core.competitive.social import SocialPost
from marba_dagster.core.tokens import graph_error_code

MAX_PAGES = 5
MEDIA_PAGE = 50
MEDIA_FIELDS = "id,caption,like_count,comments_count,timestamp,permalink"
# Graph "no such business account": 110 (invalid user id), 100 with subcode 33.
GRAPH_NOT_FOUND_CODES = frozenset({110})


class AccountNotFound(Exception):
    """The platform answered that no (professional) account has this name."""


@dataclass(frozen=True)
class SocialAccount:
    platform: str
    name: str
    followers: int | None = None
    post_count: int | None = None
    posts: list[SocialPost] = field(default_factory=list)
    # The username the platform shows (``name`` may be a numeric X id).
    handle: str | None = None


def _int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedResponse(f"{what}: expected a whole number, got {type(value).__name__}")
    return value


def _object(data: Any, key: str, what: str) -> dict:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, dict):
        raise MalformedResponse(f"{what}: {key!r} is missing or not an object")
    return value


def _graph_not_found(err: ClientError) -> bool:
    error = err.error_json.get("error") if isinstance(err.error_json, dict) else None
    subcode = error.get("error_subcode") if isinstance(error, dict) else None
    code = graph_error_code(err.error_json)
    return code in GRAPH_NOT_FOUND_CODES or (code == 100 and subcode == 33)


class BusinessDiscovery:
    """Another Instagram professional account's public profile and media, as seen by the
    brand's own Instagram account."""

    def __init__(self, client: ApiClient):
        self.client = client

    def account(self, ig_user_id: str, token: str, name: str, since: datetime) -> SocialAccount:
        """``name``'s followers, media count and media published since ``since`` (newest
        first, paged until older or ``MAX_PAGES``)."""
        what = f"instagram business discovery of {name}"
        posts: list[SocialPost] = []
        after: str | None = None
        followers = media_count = None
        for _ in range(MAX_PAGES):
            edge = (
                f"media.after({after}).limit({MEDIA_PAGE})"
                if after
                else (f"media.limit({MEDIA_PAGE})")
            )
            params = {
                "fields": f"business_discovery.username({name})"
                f"{{followers_count,media_count,{edge}{{{MEDIA_FIELDS}}}}}",
                "access_token": token,
            }
            try:
                data = self.client.get_json(f"/{ig_user_id}", params=params)
            except ClientError as err:
                if _graph_not_found(err):
                    raise AccountNotFound(f"instagram account {name!r} not found") from None
                raise
            found = _object(data, "business_discovery", what)
            followers = _int(found.get("followers_count"), what)
            media_count = _int(found.get("media_count"), what)
            media = found.get("media") or {"data": []}
            if not isinstance(media, dict) or not isinstance(media.get("data", []), list):
                raise MalformedResponse(f"{what}: media is not a list")
            oldest_reached = False
            for item in media.get("data") or []:
                if not isinstance(item, dict) or "id" not in item:
                    raise MalformedResponse(f"{what}: a media item has no id")
                when = parse_timestamp(item.get("timestamp"), what)
                if when < since:
                    oldest_reached = True
                    continue
                posts.append(
                    SocialPost(
                        post_id=str(item["id"]),
                        created_at=when,
                        text=str(item.get("caption") or ""),
                        likes=_int(item.get("like_count"), what) or 0,
                        comments=_int(item.get("comments_count"), what) or 0,
                        permalink=item.get("permalink"),
                    )
                )
            paging = media.get("paging") if isinstance(media.get("paging"), dict) else {}
            cursors = paging.get("cursors") if isinstance(paging.get("cursors"), dict) else {}
            if oldest_reached or not paging.get("next"):
                break
            after = cursors.get("after")
            if not isinstance(after, str) or not after:
                raise MalformedResponse(f"{what}: paging.next without a cursor")
        return SocialAccount("instagram", name, followers, media_count, posts)


def _x_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class XTimeline:
    """A public X account's profile and recent posts with the app-only bearer token."""

    def __init__(self, client: ApiClient, bearer_token: str):
        self.client = client
        self._headers = {"Authorization": f"Bearer {bearer_token}"}

    def _user(self, name: str) -> dict:
        path = f"/users/{name}" if name.isdigit() else f"/users/by/username/{name}"
        data = self.client.get_json(
            path, params={"user.fields": "public_metrics"}, headers=self._headers
        )
        if isinstance(data, dict) and "data" not in data and data.get("errors"):
            raise AccountNotFound(f"x account {name!r} not found")
        user = _object(data, "data", f"x user {name}")
        if "id" not in user:
            raise MalformedResponse(f"x user {name}: no id")
        return user

    def account(self, name: str, since: datetime) -> SocialAccount:
        """``name`` (a username or a numeric id): followers, post count and the original
        posts (no reposts or replies) published since ``since``."""
        user = self._user(name)
        metrics = user.get("public_metrics") if isinstance(user.get("public_metrics"), dict) else {}
        what = f"x timeline of {name}"
        handle = user.get("username") or name
        params: dict[str, Any] = {
            "start_time": _x_time(since),
            "max_results": 100,
            "tweet.fields": "created_at,public_metrics",
            "exclude": "retweets,replies",
        }
        posts: list[SocialPost] = []
        for _ in range(MAX_PAGES):
            data = self.client.get_json(
                f"/users/{user['id']}/tweets", params=params, headers=self._headers
            )
            if not isinstance(data, dict):
                raise MalformedResponse(f"{what}: expected a JSON object")
            items = data.get("data", [])
            if not isinstance(items, list):
                raise MalformedResponse(f"{what}: 'data' is not a list")
            for item in items:
                if not isinstance(item, dict) or "id" not in item:
                    raise MalformedResponse(f"{what}: a post has no id")
                counts = item.get("public_metrics")
                counts = counts if isinstance(counts, dict) else {}
                posts.append(
                    SocialPost(
                        post_id=str(item["id"]),
                        created_at=parse_timestamp(item.get("created_at"), what),
                        text=str(item.get("text") or ""),
                        likes=_int(counts.get("like_count"), what) or 0,
                        comments=_int(counts.get("reply_count"), what) or 0,
                        shares=(_int(counts.get("retweet_count"), what) or 0)
                        + (_int(counts.get("quote_count"), what) or 0),
                        permalink=f"https://x.com/{handle}/status/{item['id']}",
                    )
                )
            meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
            if not meta.get("next_token"):
                break
            params["pagination_token"] = meta["next_token"]
        return SocialAccount(
            "x",
            name,
            _int(metrics.get("followers_count"), what),
            _int(metrics.get("tweet_count"), what),
            posts,
            str(handle),
        )
