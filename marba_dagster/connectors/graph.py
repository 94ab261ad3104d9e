"""Graph API read client: Facebook Page posts and Instagram media with their insights.

Formats (Graph API v21.0):

* ``GET /{page-id}/posts?fields=id,message,created_time,permalink_url,attachments{media_type,
  type},shares,comments.limit(0).summary(true),reactions.limit(0).summary(total_count),
  insights.metric(post_impressions,post_impressions_unique,post_clicks,
  post_reactions_by_type_total,post_video_views)&since=&until=&limit=``
* ``GET /{ig-user-id}/media?fields=id,caption,media_type,media_product_type,timestamp,
  permalink,like_count,comments_count,insights.metric(reach,likes,comments,saved,shares,
  views)&since=&until=&limit=``
* ``GET /{id}?fields=followers_count``

Lists are paged with ``paging.next`` (followed only on the API's own host). The token goes
in the ``access_token`` query parameter (redacted from every URL and error by
``ApiClient``). Errors: Graph code 190 or 102 (or HTTP 401) -> :class:`TokenRejected`
(``core.tokens.is_token_rejection``); codes 4, 17, 32, 613 -> :class:`PlatformRateLimited`; a
body of the wrong shape -> ``MalformedResponse``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from marba_dagster.connectors.http import ApiClient, ClientError, MalformedResponse
from marba_dagster.connectors.social import (
    AccountSnapshot,
    PlatformPost,
    PlatformRateLimited,
    non_negative,
    token_rejected,
)
from marba_dagster.core.tokens import GRAPH_TOKEN_CODES, graph_error_code, is_token_rejection

PAGE_SIZE = 100
MAX_PAGES = 500
FB_POST_FIELDS = (
    "id,message,created_time,permalink_url,attachments{media_type,type},shares,"
    "comments.limit(0).summary(true),reactions.limit(0).summary(total_count),"
    "insights.metric(post_impressions,post_impressions_unique,post_clicks,"
    "post_reactions_by_type_total,post_video_views)"
)
IG_MEDIA_FIELDS = (
    "id,caption,media_type,media_product_type,timestamp,permalink,like_count,comments_count,"
    "insights.metric(reach,likes,comments,saved,shares,views)"
)
_RATE_LIMIT_CODES = {4, 17, 32, 613, 80001}


def parse_graph_time(value: Any) -> datetime:
    """``2025-06-01T18:00:00+0000`` (Graph's format) as an aware UTC datetime."""
    if not isinstance(value, str) or len(value) < 19:
        raise ValueError(f"bad timestamp {value!r}"[:80])
    text = value.replace("Z", "+00:00")
    if text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"timestamp without offset {value!r}"[:80])
    return when.astimezone(UTC)


def _fb_format(item: dict) -> str:
    attachments = ((item.get("attachments") or {}).get("data")) or []
    if not attachments:
        return "text"
    first = attachments[0] or {}
    media_type, kind = first.get("media_type"), first.get("type", "")
    if kind in ("video_reel", "reel") or "/reel/" in (item.get("permalink_url") or ""):
        return "reel"
    if kind == "story":
        return "story"
    return {"photo": "image", "video": "video", "album": "carousel", "link": "link"}.get(
        media_type, "text"
    )


def _ig_format(item: dict) -> str:
    media_type, product = item.get("media_type"), item.get("media_product_type")
    if product == "STORY":
        return "story"
    if product == "REELS":
        return "reel"
    return {"IMAGE": "image", "VIDEO": "video", "CAROUSEL_ALBUM": "carousel"}.get(
        media_type, "image"
    )


def _insights(item: dict) -> dict[str, Any]:
    """``{"post_impressions": 123, ...}`` from an ``insights`` expansion (lifetime values)."""
    out: dict[str, Any] = {}
    data = (item.get("insights") or {}).get("data")
    if data is None:
        return out
    if not isinstance(data, list):
        raise ValueError("insights.data is not a list")
    for metric in data:
        values = metric.get("values") or []
        if not metric.get("name") or not values:
            continue
        out[metric["name"]] = values[-1].get("value")
    return out


class GraphClient:
    """Reads Facebook Pages and Instagram accounts; one instance per ``ApiClient``."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self._host = urlsplit(client.base_url)[:2]

    # ------------------------------------------------------------------ plumbing
    def _get(self, path: str, params: dict[str, Any] | None, token: str) -> dict:
        try:
            body = self.client.get_json(path, params={**(params or {}), "access_token": token})
        except ClientError as err:
            raise self._classify(err) from None
        if not isinstance(body, dict):
            raise MalformedResponse(
                "expected a JSON object",
                url=self.client.url_for(path).split("?")[0],
                client=self.client.name,
            )
        if isinstance(body.get("error"), dict):  # an error delivered with a 200
            fake = ClientError(
                "Graph error", url=path, status=200, client=self.client.name, error_json=body
            )
            raise self._classify(fake)
        return body

    def _classify(self, err: ClientError) -> Exception:
        info = (err.error_json or {}).get("error") if isinstance(err.error_json, dict) else None
        code = graph_error_code(err.error_json)
        if is_token_rejection(err.status, code):
            sub = info.get("error_subcode") if isinstance(info, dict) else None
            what = {
                463: "token expired",
                460: "session invalidated (password change)",
                458: "app removed by the user",
                467: "token invalid",
            }.get(sub, "token rejected")
            return token_rejected(
                err,
                f"Graph error {code} ({what})"
                if code in GRAPH_TOKEN_CODES
                else f"HTTP 401 ({what})",
            )
        if code in _RATE_LIMIT_CODES:
            out = PlatformRateLimited(
                f"Graph rate limit (code {code})",
                url=err.url,
                status=err.status,
                client=err.client,
                attempts=err.attempts,
            )
            self.client.note_rate_limited(out)  # the step's retry decision reads it
            return out
        return err

    def _pages(self, path: str, params: dict[str, Any], token: str) -> Iterator[list[dict]]:
        url, query = path, params
        for _ in range(MAX_PAGES):
            body = self._get(url, query, token)
            data = body.get("data")
            if not isinstance(data, list):
                raise MalformedResponse(
                    "Graph list without a `data` array",
                    url=self.client.url_for(path),
                    client=self.client.name,
                )
            yield data
            nxt = (
                (body.get("paging") or {}).get("next")
                if isinstance(body.get("paging"), dict)
                else None
            )
            if not nxt or not data:
                return
            if urlsplit(nxt)[:2] != self._host:
                # Never send the token to another host, whatever a response says.
                raise MalformedResponse(
                    "paging.next points to another host",
                    url=self.client.url_for(path),
                    client=self.client.name,
                )
            # The next link carries every parameter; send them as params (httpx would drop a
            # URL's own query when params are given) with our token in place of any it holds.
            parts = urlsplit(nxt)
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
            query = {
                k: v
                for k, v in parse_qsl(parts.query, keep_blank_values=True)
                if k != "access_token"
            }
        raise MalformedResponse(
            f"more than {MAX_PAGES} pages", url=self.client.url_for(path), client=self.client.name
        )

    # ------------------------------------------------------------------ Facebook
    def page_posts(
        self, page_id: str, token: str, since: datetime, until: datetime
    ) -> list[PlatformPost]:
        """Posts published in [since, until) with their lifetime insights."""
        params = {
            "fields": FB_POST_FIELDS,
            "since": int(since.timestamp()),
            "until": int(until.timestamp()),
            "limit": PAGE_SIZE,
        }
        out = []
        for page in self._pages(f"{page_id}/posts", params, token):
            for item in page:
                out.append(self._fb_post(item, page_id))
        return [p for p in out if since <= p.published_at < until]

    def _fb_post(self, item: Any, page_id: str) -> PlatformPost:
        try:
            if not isinstance(item, dict) or not item.get("id"):
                raise ValueError("post without an id")
            ins = _insights(item)
            reactions = ins.get("post_reactions_by_type_total")
            if isinstance(reactions, dict):
                likes = sum(non_negative(v, "reactions") for v in reactions.values())
            else:
                likes = non_negative(
                    ((item.get("reactions") or {}).get("summary") or {}).get("total_count"),
                    "reactions",
                )
            comments = ((item.get("comments") or {}).get("summary") or {}).get("total_count")
            fmt = _fb_format(item)
            return PlatformPost(
                platform="facebook",
                external_post_id=str(item["id"]),
                published_at=parse_graph_time(item.get("created_time")),
                body=str(item.get("message") or ""),
                format=fmt,
                permalink=item.get("permalink_url"),
                impressions=non_negative(ins.get("post_impressions"), "post_impressions"),
                reach=non_negative(ins.get("post_impressions_unique"), "post_impressions_unique"),
                likes=likes,
                comments=non_negative(comments, "comments"),
                shares=non_negative((item.get("shares") or {}).get("count"), "shares"),
                clicks=non_negative(ins.get("post_clicks"), "post_clicks"),
                video_views=non_negative(ins.get("post_video_views"), "post_video_views"),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise MalformedResponse(
                f"malformed Facebook post: {exc}",
                url=self.client.url_for(f"{page_id}/posts"),
                client=self.client.name,
            ) from None

    # ------------------------------------------------------------------ Instagram
    def ig_media(
        self, ig_user_id: str, token: str, since: datetime, until: datetime
    ) -> list[PlatformPost]:
        params = {
            "fields": IG_MEDIA_FIELDS,
            "since": int(since.timestamp()),
            "until": int(until.timestamp()),
            "limit": PAGE_SIZE,
        }
        out = []
        for page in self._pages(f"{ig_user_id}/media", params, token):
            for item in page:
                out.append(self._ig_post(item, ig_user_id))
        return [p for p in out if since <= p.published_at < until]

    def _ig_post(self, item: Any, ig_user_id: str) -> PlatformPost:
        try:
            if not isinstance(item, dict) or not item.get("id"):
                raise ValueError("media without an id")
            ins = _insights(item)
            fmt = _ig_format(item)
            views = non_negative(ins.get("views"), "views")
            return PlatformPost(
                platform="instagram",
                external_post_id=str(item["id"]),
                published_at=parse_graph_time(item.get("timestamp")),
                body=str(item.get("caption") or ""),
                format=fmt,
                permalink=item.get("permalink"),
                impressions=views,
                reach=non_negative(ins.get("reach"), "reach"),
                likes=non_negative(ins.get("likes", item.get("like_count")), "likes"),
                comments=non_negative(ins.get("comments", item.get("comments_count")), "comments"),
                shares=non_negative(ins.get("shares"), "shares"),
                saves=non_negative(ins.get("saved"), "saved"),
                video_views=views if fmt in ("video", "reel") else 0,
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise MalformedResponse(
                f"malformed Instagram media: {exc}",
                url=self.client.url_for(f"{ig_user_id}/media"),
                client=self.client.name,
            ) from None

    # ------------------------------------------------------------------ followers
    def followers(self, platform: str, account_id: str, token: str) -> AccountSnapshot:
        body = self._get(account_id, {"fields": "followers_count"}, token)
        try:
            count = non_negative(body.get("followers_count"), "followers_count")
            if "followers_count" not in body:
                raise ValueError("no followers_count")
        except ValueError as exc:
            raise MalformedResponse(
                f"malformed account: {exc}",
                url=self.client.url_for(account_id),
                client=self.client.name,
            ) from None
        return AccountSnapshot(platform, account_id, count)

    def posts(
        self, platform: str, account_id: str, token: str, since: datetime, until: datetime
    ) -> list[PlatformPost]:
        if platform == "facebook":
            return self.page_posts(account_id, token, since, until)
        if platform == "instagram":
            return self.ig_media(account_id, token, since, until)
        raise ValueError(f"the Graph API does not serve {platform!r}")
