"""Graph API read routes (Facebook Pages, Instagram professional accounts), v21.0 shapes.

* ``GET /graph/v21.0/{page-id}/posts`` (``graph.page_posts``): the Page's posts, newest
  first, with field expansion ``shares``, ``comments.summary(true)``, ``reactions.summary``,
  ``attachments{media_type,type}`` and ``insights.metric(post_impressions,
  post_impressions_unique, post_clicks, post_reactions_by_type_total, post_video_views)``.
* ``GET /graph/v21.0/{ig-user-id}/media`` (``graph.ig_media``): the account's media with
  ``media_type``, ``media_product_type``, ``like_count``, ``comments_count`` and the
  expansion ``insights.metric(reach,likes,comments,saved,shares,views)``.
* ``GET /graph/v21.0/{id}`` (``graph.node``): a Page or IG user with ``followers_count``;
  ``fields=business_discovery...`` is answered by ``competitor_social``.

Both list edges take ``since``/``until`` (Unix seconds or ISO 8601), ``limit`` (default
25, max 100) and cursor paging (``after``), answering ``{"data": [...], "paging":
{"cursors": {"before", "after"}, "next"}}`` with ``next`` only when more remain. The
``access_token`` query parameter must be the account's token: otherwise a Graph
``OAuthException`` code 190 (HTTP 400, as Graph sends it; subcode 463 when expired, 460 when
the session was invalidated). Data come from ``sandbox.platform_data`` (shared with the
publishing and engagement route modules).
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox.platform_data import (
    GRAPH_PLATFORMS,
    Post,
    TokenProblem,
    parse_time,
    platform_data,
)

PREFIX = "/graph/v21.0"
MAX_LIMIT = 100
DEFAULT_LIMIT = 25

_FB_ATTACHMENT = {  # format -> (attachments.media_type, attachments.type)
    "image": ("photo", "photo"),
    "video": ("video", "video_inline"),
    "reel": ("video", "video_reel"),
    "carousel": ("album", "album"),
    "link": ("link", "share"),
    "story": ("photo", "story"),
}
_IG_TYPES = {  # format -> (media_type, media_product_type)
    "image": ("IMAGE", "FEED"),
    "carousel": ("CAROUSEL_ALBUM", "FEED"),
    "video": ("VIDEO", "FEED"),
    "reel": ("VIDEO", "REELS"),
    "story": ("IMAGE", "STORY"),
    "text": ("IMAGE", "FEED"),
    "link": ("IMAGE", "FEED"),
}


def graph_error(
    message: str,
    code: int,
    *,
    status: int = 400,
    type_: str = "OAuthException",
    subcode: int | None = None,
) -> JSONResponse:
    err = {"message": message, "type": type_, "code": code, "fbtrace_id": "AsandboxTrace01"}
    if subcode is not None:
        err["error_subcode"] = subcode
    return JSONResponse({"error": err}, status_code=status)


def token_error(problem: TokenProblem) -> JSONResponse:
    if problem.reason == "expired":
        when = (
            problem.expired_at.strftime("%A, %d-%b-%y %H:%M:%S UTC") if problem.expired_at else "?"
        )
        return graph_error(
            f"Error validating access token: Session has expired on {when}.", 190, subcode=463
        )
    if problem.reason == "revoked":
        return graph_error(
            "Error validating access token: The session has been invalidated "
            "because the user changed their password or Facebook has changed "
            "the session for security reasons.",
            190,
            subcode=460,
        )
    if problem.reason == "missing":
        return graph_error(
            "An active access token must be used to query information about the current user.", 2500
        )
    return graph_error("Invalid OAuth access token - Cannot parse access token", 190)


def _no_object(node: str) -> JSONResponse:
    return graph_error(
        f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation.",
        100,
        type_="GraphMethodException",
        subcode=33,
    )


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"idx:{index}".encode()).decode().rstrip("=")


def _uncursor(value: str) -> int:
    padded = value + "=" * (-len(value) % 4)
    text = base64.urlsafe_b64decode(padded.encode()).decode()
    if not text.startswith("idx:"):
        raise ValueError("bad cursor")
    return int(text[4:])


def _insight(post_id: str, name: str, value, title: str) -> dict:
    return {
        "name": name,
        "period": "lifetime",
        "values": [{"value": value}],
        "title": title,
        "description": title,
        "id": f"{post_id}/insights/{name}/lifetime",
    }


def _requested_metrics(fields: str) -> set[str] | None:
    m = re.search(r"insights\.metric\(([^)]*)\)", fields)
    if m:
        return {x.strip() for x in m.group(1).split(",") if x.strip()}
    return None


def _fb_post(post: Post, fields: str) -> dict:
    out = {"id": post.post_id, "created_time": _iso(post.published_at)}
    if post.body:
        out["message"] = post.body
    if post.permalink:
        out["permalink_url"] = post.permalink
    if post.format in _FB_ATTACHMENT:
        media_type, kind = _FB_ATTACHMENT[post.format]
        out["attachments"] = {"data": [{"media_type": media_type, "type": kind}]}
    if "shares" in fields and post.shares:  # Graph omits `shares` for a post nobody shared
        out["shares"] = {"count": post.shares}
    if "comments" in fields:
        out["comments"] = {
            "data": [],
            "summary": {"order": "ranked", "total_count": post.comments, "can_comment": True},
        }
    if "reactions" in fields:
        out["reactions"] = {
            "data": [],
            "summary": {"total_count": post.likes, "viewer_reaction": "NONE"},
        }
    wanted = _requested_metrics(fields)
    if wanted is not None:
        values = {
            "post_impressions": (post.impressions, "Lifetime Post Total Impressions"),
            "post_impressions_unique": (post.reach, "Lifetime Post Total Reach"),
            "post_clicks": (post.clicks, "Lifetime Post Clicks"),
            "post_reactions_by_type_total": (
                {"like": post.likes} if post.likes else {},
                "Lifetime Total post Reactions by Type.",
            ),
            "post_video_views": (post.video_views, "Lifetime Total Video Views"),
        }
        out["insights"] = {
            "data": [_insight(post.post_id, k, *values[k]) for k in values if k in wanted]
        }
    return out


def _ig_media(post: Post, fields: str) -> dict:
    media_type, product = _IG_TYPES.get(post.format, ("IMAGE", "FEED"))
    out = {
        "id": post.post_id,
        "timestamp": _iso(post.published_at),
        "media_type": media_type,
        "media_product_type": product,
        "like_count": post.likes,
        "comments_count": post.comments,
    }
    if post.body:
        out["caption"] = post.body
    if post.permalink:
        out["permalink"] = post.permalink
    wanted = _requested_metrics(fields)
    if wanted is not None:
        views = post.impressions  # `views` replaced `impressions` (and `video_views`)
        values = {
            "reach": (post.reach, "Accounts reached"),
            "likes": (post.likes, "Likes"),
            "comments": (post.comments, "Comments"),
            "saved": (post.saves, "Saved"),
            "shares": (post.shares, "Shares"),
            "views": (views, "Views"),
            "total_interactions": (
                post.likes + post.comments + post.saves + post.shares,
                "Interactions",
            ),
        }
        out["insights"] = {
            "data": [_insight(post.post_id, k, *values[k]) for k in values if k in wanted]
        }
    return out


def routes(state) -> list[Route]:
    data = platform_data(state)

    def _edge(platform: str, render):
        async def endpoint(request: Request):
            node = request.path_params["node"]
            try:
                acct = data.authorise(
                    (platform,), node, request.query_params.get("access_token"), state.now()
                )
            except TokenProblem as problem:
                return token_error(problem)
            if acct is None:
                return _no_object(node)
            q = request.query_params
            try:
                limit = int(q.get("limit", DEFAULT_LIMIT))
                since, until = parse_time(q.get("since")), parse_time(q.get("until"))
                start = _uncursor(q["after"]) if q.get("after") else 0
            except (ValueError, KeyError):
                return graph_error("(#100) Invalid parameter", 100, type_="OAuthException")
            if limit < 1:
                return graph_error("(#100) The parameter limit must be a positive integer", 100)
            limit = min(limit, MAX_LIMIT)
            posts = data.posts_between(platform, acct.account_id, since, until)
            page = posts[start : start + limit]
            fields = q.get("fields", "")
            body: dict = {"data": [render(p, fields) for p in page]}
            if page:
                paging = {
                    "cursors": {"before": _cursor(start), "after": _cursor(start + len(page))}
                }
                if start + len(page) < len(posts):
                    nxt = dict(q)
                    nxt["after"] = _cursor(start + len(page))
                    nxt["limit"] = str(limit)
                    paging["next"] = str(request.url.replace(query=urlencode(nxt)))
                if start > 0:
                    prev = dict(q)
                    prev.pop("after", None)
                    prev["before"] = _cursor(start)
                    paging["previous"] = str(request.url.replace(query=urlencode(prev)))
                body["paging"] = paging
            return JSONResponse(body)

        return endpoint

    async def node(request: Request):
        node_id = request.path_params["node"]
        if "business_discovery" in request.query_params.get("fields", ""):
            from marba_dagster.sandbox.routes.competitor_social import business_discovery

            return business_discovery(state, request, node_id)
        try:
            acct = data.authorise(
                GRAPH_PLATFORMS, node_id, request.query_params.get("access_token"), state.now()
            )
        except TokenProblem as problem:
            return token_error(problem)
        if acct is None:
            return _no_object(node_id)
        fields = {f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()}
        out: dict = {"id": acct.account_id}
        if acct.platform == "facebook":
            available = {
                "followers_count": acct.followers,
                "fan_count": acct.followers,
                "name": acct.handle or acct.account_id,
            }
        else:
            available = {
                "followers_count": acct.followers,
                "username": acct.handle or "",
                "media_count": len(data.posts_between("instagram", acct.account_id, None, None)),
            }
        if not fields:
            fields = {"name"} if acct.platform == "facebook" else {"username"}
        for f in sorted(fields):
            if f in available:
                out[f] = available[f]
        return JSONResponse(out)

    return [
        Route(
            f"{PREFIX}/{{node}}/posts",
            _edge("facebook", _fb_post),
            methods=["GET"],
            name="graph.page_posts",
        ),
        Route(
            f"{PREFIX}/{{node}}/media",
            _edge("instagram", _ig_media),
            methods=["GET"],
            name="graph.ig_media",
        ),
        Route(f"{PREFIX}/{{node}}", node, methods=["GET"], name="graph.node"),
    ]
