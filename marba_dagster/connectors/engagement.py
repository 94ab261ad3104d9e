"""Engagement from the platforms: comments, mentions, direct messages and reviews.

Formats (as documented by each platform):

* Facebook comments: ``GET /{post-id}/comments?fields=id,message,from,created_time``
  -> ``{"data": [{"id", "message", "from": {"id", "name"}, "created_time"}], "paging":
  {"cursors": {...}, "next": url}}`` (``from`` is only present when the Page may see it).
* Instagram comments: ``GET /{ig-media-id}/comments?fields=id,text,username,timestamp,
  like_count`` -> ``{"data": [{"id", "text", "username", "timestamp"}], "paging": ...}``.
* X mentions: ``GET /2/users/{id}/mentions?start_time&end_time&tweet.fields=created_at,
  author_id&expansions=author_id&user.fields=username,public_metrics&max_results=100``
  -> ``{"data": [...], "includes": {"users": [{"id", "username", "public_metrics":
  {"followers_count"}}]}, "meta": {"result_count", "next_token"}}``; the next page via
  ``pagination_token``.
* X direct messages: ``GET /2/dm_events?event_types=MessageCreate&dm_event.fields=id,text,
  event_type,created_at,sender_id,dm_conversation_id&expansions=sender_id&user.fields=
  username,public_metrics`` -> ``{"data": [...], "includes": {"users": [...]}, "meta":
  {"next_token"}}``. Messages the account sent itself are skipped.
* Google Business Profile reviews: ``GET /accounts/{a}/locations/{l}/reviews?pageSize=50``
  -> ``{"reviews": [{"name", "reviewId", "reviewer": {"displayName"}, "starRating":
  "ONE".."FIVE", "comment", "createTime", "updateTime"}], "averageRating",
  "totalReviewCount", "nextPageToken"}``.

* Facebook Page and Instagram direct messages (Messenger Platform conversations API):
  ``GET /{page-id}/conversations?platform=messenger|instagram&fields=id,updated_time,
  messages.limit(N){id,message,from,created_time}`` -> ``{"data": [{"id", "updated_time",
  "messages": {"data": [{"id", "message", "from": {"id", "name"|"username"}, "created_time"}],
  "paging": {"cursors": {"after"}, "next"}}}], "paging": {"cursors": {"after"}, "next"}}``,
  conversations and their messages newest first; the rest of a conversation's messages via
  ``paging.next`` (``GET /{conversation-id}/messages``). Instagram conversations are read
  through the Facebook Page linked to the Instagram account, with the Page's token. Needs
  ``pages_messaging`` and ``pages_read_engagement`` (Messenger) or
  ``instagram_manage_messages`` (Instagram); without them Graph answers a permission error
  (code 10 or 200, HTTP 403) that ``core.tokens.is_permission_denial`` recognises.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from marba_dagster.connectors.http import ApiClient, MalformedResponse

STAR_RATINGS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}
MAX_PAGES = 50


@dataclass(frozen=True)
class InboxItem:
    platform: str
    item_type: str  # comment, mention, direct_message, review
    external_id: str
    received_at: datetime
    body: str = ""
    author: str | None = None
    author_followers: int | None = None
    rating: int | None = None
    parent_external_id: str | None = None


def parse_timestamp(value: Any, what: str) -> datetime:
    """ISO 8601 as the platforms send it (``Z``, ``+0000`` or ``+00:00``) -> aware UTC."""
    if not isinstance(value, str) or not value:
        raise MalformedResponse(f"{what}: missing timestamp")
    text = value.strip().replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedResponse(f"{what}: invalid timestamp {value!r}") from exc
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _list(data: Any, key: str, what: str) -> list:
    if not isinstance(data, dict):
        raise MalformedResponse(f"{what}: expected a JSON object")
    items = data.get(key, [])
    if items is None:
        return []
    if not isinstance(items, list):
        raise MalformedResponse(f"{what}: {key!r} is not a list")
    return items


class GraphEngagement:
    """Facebook Page and Instagram comments through the Graph API."""

    def __init__(self, client: ApiClient):
        self.client = client

    def _pages(self, path: str, params: dict, what: str) -> Iterator[dict]:
        url: str | None = path
        first = True
        for _ in range(MAX_PAGES):
            data = self.client.get_json(url, params=params if first else None)
            first = False
            for item in _list(data, "data", what):
                if isinstance(item, dict):
                    yield item
            nxt = (
                (data.get("paging") or {}).get("next")
                if isinstance(data.get("paging"), dict)
                else None
            )
            if not nxt:
                return
            url = nxt

    def facebook_comments(self, post_id: str, token: str) -> list[InboxItem]:
        out = []
        params = {
            "fields": "id,message,from,created_time",
            "filter": "stream",
            "limit": 100,
            "access_token": token,
        }
        for c in self._pages(f"/{post_id}/comments", params, "facebook comments"):
            if "id" not in c:
                raise MalformedResponse("facebook comments: a comment has no id")
            frm = c.get("from") if isinstance(c.get("from"), dict) else {}
            out.append(
                InboxItem(
                    platform="facebook",
                    item_type="comment",
                    external_id=str(c["id"]),
                    received_at=parse_timestamp(c.get("created_time"), "facebook comment"),
                    body=str(c.get("message") or ""),
                    author=frm.get("name"),
                    parent_external_id=post_id,
                )
            )
        return out

    def instagram_comments(self, media_id: str, token: str) -> list[InboxItem]:
        out = []
        params = {
            "fields": "id,text,username,timestamp,like_count",
            "limit": 100,
            "access_token": token,
        }
        for c in self._pages(f"/{media_id}/comments", params, "instagram comments"):
            if "id" not in c:
                raise MalformedResponse("instagram comments: a comment has no id")
            out.append(
                InboxItem(
                    platform="instagram",
                    item_type="comment",
                    external_id=str(c["id"]),
                    received_at=parse_timestamp(c.get("timestamp"), "instagram comment"),
                    body=str(c.get("text") or ""),
                    author=c.get("username"),
                    parent_external_id=media_id,
                )
            )
        return out


def _next_url(data: dict) -> str | None:
    paging = data.get("paging")
    return paging.get("next") if isinstance(paging, dict) else None


def _graph_author(message: dict) -> tuple[str | None, str | None]:
    """(id, display name) of a message's sender: Messenger gives ``name``, Instagram
    ``username``."""
    frm = message.get("from")
    if not isinstance(frm, dict):
        return None, None
    sender_id = frm.get("id")
    name = frm.get("name") or frm.get("username")
    return (str(sender_id) if sender_id is not None else None), (str(name) if name else None)


class GraphConversations:
    """Direct messages to a Facebook Page or its linked Instagram account (Messenger Platform
    conversations API)."""

    PLATFORMS = {"facebook": "messenger", "instagram": "instagram"}
    MESSAGE_FIELDS = "id,message,from,created_time"

    def __init__(self, client: ApiClient):
        self.client = client

    def _messages(self, first: Any, what: str, since: datetime) -> Iterator[dict]:
        """A conversation's messages, newest first, from its nested first page on, until one
        is older than ``since``."""
        page = first
        for _ in range(MAX_PAGES):
            if not isinstance(page, dict):
                raise MalformedResponse(f"{what}: messages is not an object")
            for message in _list(page, "data", what):
                if not isinstance(message, dict):
                    raise MalformedResponse(f"{what}: a message is not an object")
                if "id" not in message:
                    raise MalformedResponse(f"{what}: a message has no id")
                when = parse_timestamp(message.get("created_time"), what)
                if when < since:
                    return
                yield {**message, "_when": when}
            nxt = _next_url(page)
            if not nxt:
                return
            page = self.client.get_json(nxt)

    def direct_messages(
        self,
        platform: str,
        page_id: str,
        token: str,
        start: datetime,
        end: datetime,
        own_id: str | None = None,
    ) -> list[InboxItem]:
        """Messages people sent to the Page (``platform`` ``facebook``) or to its linked
        Instagram account ``own_id`` (``instagram``) with start <= created_time < end; the
        business's own replies are skipped. Conversations are listed newest first, so
        listing stops at the first one last updated before ``start``."""
        what = f"{platform} direct messages"
        params: dict[str, Any] | None = {
            "platform": self.PLATFORMS[platform],
            "fields": f"id,updated_time,messages.limit(50){{{self.MESSAGE_FIELDS}}}",
            "limit": 50,
            "access_token": token,
        }
        url: str | None = f"/{page_id}/conversations"
        out: list[InboxItem] = []
        for _ in range(MAX_PAGES):
            data = self.client.get_json(url, params=params)
            params = None  # paging.next carries every parameter
            for conversation in _list(data, "data", what):
                if not isinstance(conversation, dict) or "id" not in conversation:
                    raise MalformedResponse(f"{what}: a conversation has no id")
                if parse_timestamp(conversation.get("updated_time"), what) < start:
                    return out
                first = conversation.get("messages") or {"data": []}
                for message in self._messages(first, what, start):
                    sender_id, sender = _graph_author(message)
                    if sender_id in (str(page_id), own_id) or message["_when"] >= end:
                        continue
                    out.append(
                        InboxItem(
                            platform=platform,
                            item_type="direct_message",
                            external_id=f"dm:{message['id']}",
                            received_at=message["_when"],
                            body=str(message.get("message") or ""),
                            author=sender,
                            parent_external_id=str(conversation["id"]),
                        )
                    )
            url = _next_url(data) if isinstance(data, dict) else None
            if not url:
                return out
        return out


def _x_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class XEngagement:
    """Mentions and direct messages through X API v2 (OAuth 2.0 user token)."""

    def __init__(self, client: ApiClient):
        self.client = client

    def _pages(self, path: str, params: dict, token: str, what: str) -> Iterator[tuple[dict, dict]]:
        params = dict(params)
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(MAX_PAGES):
            data = self.client.get_json(path, params=params, headers=headers)
            users = {}
            includes = data.get("includes") if isinstance(data, dict) else None
            for u in (includes or {}).get("users", []) or []:
                if isinstance(u, dict) and "id" in u:
                    users[str(u["id"])] = u
            for item in _list(data, "data", what):
                if isinstance(item, dict):
                    yield item, users
            meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
            token_next = meta.get("next_token")
            if not token_next:
                return
            params["pagination_token"] = token_next

    @staticmethod
    def _author(users: dict, uid: Any) -> tuple[str | None, int | None]:
        u = users.get(str(uid)) if uid is not None else None
        if not u:
            return (str(uid) if uid is not None else None), None
        followers = (u.get("public_metrics") or {}).get("followers_count")
        return u.get("username") or str(uid), int(followers) if isinstance(followers, int) else None

    def mentions(self, user_id: str, token: str, start: datetime, end: datetime) -> list[InboxItem]:
        params = {
            "start_time": _x_time(start),
            "end_time": _x_time(end),
            "max_results": 100,
            "tweet.fields": "created_at,author_id,conversation_id",
            "expansions": "author_id",
            "user.fields": "username,public_metrics",
        }
        out = []
        for t, users in self._pages(f"/users/{user_id}/mentions", params, token, "x mentions"):
            if "id" not in t:
                raise MalformedResponse("x mentions: a post has no id")
            author, followers = self._author(users, t.get("author_id"))
            out.append(
                InboxItem(
                    platform="x",
                    item_type="mention",
                    external_id=str(t["id"]),
                    received_at=parse_timestamp(t.get("created_at"), "x mention"),
                    body=str(t.get("text") or ""),
                    author=author,
                    author_followers=followers,
                    parent_external_id=t.get("conversation_id"),
                )
            )
        return out

    def direct_messages(
        self, user_id: str, token: str, start: datetime, end: datetime
    ) -> list[InboxItem]:
        params = {
            "event_types": "MessageCreate",
            "max_results": 100,
            "dm_event.fields": "id,text,event_type,created_at,sender_id,dm_conversation_id",
            "expansions": "sender_id",
            "user.fields": "username,public_metrics",
        }
        out = []
        for e, users in self._pages("/dm_events", params, token, "x direct messages"):
            if "id" not in e:
                raise MalformedResponse("x direct messages: an event has no id")
            if e.get("event_type", "MessageCreate") != "MessageCreate" or str(
                e.get("sender_id")
            ) == str(user_id):
                continue
            when = parse_timestamp(e.get("created_at"), "x direct message")
            if not (start <= when < end):
                continue  # dm_events has no time filter: keep the window here
            author, followers = self._author(users, e.get("sender_id"))
            out.append(
                InboxItem(
                    platform="x",
                    item_type="direct_message",
                    external_id=f"dm:{e['id']}",
                    received_at=when,
                    body=str(e.get("text") or ""),
                    author=author,
                    author_followers=followers,
                    parent_external_id=e.get("dm_conversation_id"),
                )
            )
        return out


class GbpReviews:
    """Google Business Profile reviews (``accounts.locations.reviews.list``)."""

    def __init__(self, client: ApiClient):
        self.client = client

    def reviews(self, location_name: str, token: str) -> list[InboxItem]:
        if not location_name.startswith("accounts/") or "/locations/" not in location_name:
            raise ValueError(
                f"a review location is 'accounts/{{a}}/locations/{{l}}', got {location_name!r}"
            )
        params: dict[str, Any] = {"pageSize": 50, "orderBy": "updateTime desc"}
        headers = {"Authorization": f"Bearer {token}"}
        out = []
        for _ in range(MAX_PAGES):
            data = self.client.get_json(f"/{location_name}/reviews", params=params, headers=headers)
            for r in _list(data, "reviews", "gbp reviews"):
                if not isinstance(r, dict) or not (r.get("reviewId") or r.get("name")):
                    raise MalformedResponse("gbp reviews: a review has no id")
                stars = r.get("starRating")
                rating = STAR_RATINGS.get(stars) if stars is not None else None
                if stars is not None and rating is None and stars != "STAR_RATING_UNSPECIFIED":
                    raise MalformedResponse(f"gbp reviews: unknown starRating {stars!r}")
                reviewer = r.get("reviewer") if isinstance(r.get("reviewer"), dict) else {}
                out.append(
                    InboxItem(
                        platform="google_business",
                        item_type="review",
                        external_id=str(r.get("name") or r["reviewId"]),
                        received_at=parse_timestamp(r.get("createTime"), "gbp review"),
                        body=str(r.get("comment") or ""),
                        author=reviewer.get("displayName"),
                        rating=rating,
                        parent_external_id=location_name,
                    )
                )
            nxt = data.get("nextPageToken")
            if not nxt:
                return out
            params["pageToken"] = nxt
        return out
