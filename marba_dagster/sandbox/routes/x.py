"""X API v2 read routes, in the v2 response shapes.

* ``GET /x/2/users/{id}/tweets`` (``x.user_tweets``): the user's posts, newest first.
  ``max_results`` 5-100 (default 10), ``pagination_token``, ``start_time``/``end_time``
  (ISO 8601), ``tweet.fields`` (``created_at``, ``public_metrics``, ``non_public_metrics``,
  ``attachments``, ``entities``), ``expansions=attachments.media_keys`` with
  ``media.fields=type``. Answers ``{"data": [...], "includes": {"media": [...]}, "meta":
  {"result_count", "newest_id", "oldest_id", "next_token"}}``; with no posts, only
  ``{"meta": {"result_count": 0}}``. ``non_public_metrics`` for a token without that grant
  gives the data without them plus an ``errors`` entry (a partial response, as X does).
* ``GET /x/2/users/{id}`` (``x.user``): ``{"data": {"id", "name", "username",
  "public_metrics": {"followers_count", ...}}}``.

``Authorization: Bearer <token>`` must be the account's token, otherwise 401 with the
problem-details body X sends. Requests with an app-only token (competitors' public accounts)
are answered by ``competitor_social``. Data come from ``sandbox.platform_data``.
"""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox.platform_data import Post, TokenProblem, parse_time, platform_data
from marba_dagster.sandbox.routes import competitor_social

PREFIX = "/x/2"


def problem(status: int, title: str, detail: str, type_: str = "about:blank") -> JSONResponse:
    return JSONResponse(
        {"title": title, "type": type_, "status": status, "detail": detail}, status_code=status
    )


def unauthorized() -> JSONResponse:
    return problem(401, "Unauthorized", "Unauthorized")


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _token(n: int) -> str:
    return base64.b32encode(f"p{n:08d}".encode()).decode().rstrip("=").lower()


def _untoken(value: str) -> int:
    text = base64.b32decode(value.upper() + "=" * (-len(value) % 8)).decode()
    if not text.startswith("p"):
        raise ValueError("bad token")
    return int(text[1:])


def _media_key(post: Post, i: int) -> str:
    return f"{3 if post.format == 'image' or post.format == 'carousel' else 7}_{post.post_id}{i}"


def _tweet(post: Post, fields: set[str], non_public: bool, media: list[dict]) -> dict:
    out = {"id": post.post_id, "text": post.body, "edit_history_tweet_ids": [post.post_id]}
    if "created_at" in fields:
        out["created_at"] = post.published_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if "public_metrics" in fields:
        out["public_metrics"] = {
            "retweet_count": post.shares,
            "reply_count": post.comments,
            "like_count": post.likes,
            "quote_count": 0,
            "bookmark_count": post.saves,
            "impression_count": post.impressions,
        }
    if "non_public_metrics" in fields and non_public:
        out["non_public_metrics"] = {
            "impression_count": post.impressions,
            "url_link_clicks": post.clicks,
            "user_profile_clicks": 0,
        }
    if post.format in ("image", "carousel", "video", "reel"):
        count = 3 if post.format == "carousel" else 1
        keys = [_media_key(post, i) for i in range(count)]
        if "attachments" in fields:
            out["attachments"] = {"media_keys": keys}
        kind = "photo" if post.format in ("image", "carousel") else "video"
        media.extend({"media_key": k, "type": kind} for k in keys)
    if post.format == "link" and "entities" in fields:
        url = f"https://t.co/{post.post_id[-10:]}"
        out["entities"] = {
            "urls": [
                {
                    "start": 0,
                    "end": len(url),
                    "url": url,
                    "expanded_url": "https://example.com/offer",
                    "display_url": "example.com/offer",
                }
            ]
        }
    return out


def routes(state) -> list[Route]:
    data = platform_data(state)

    def _auth(request: Request):
        user_id = request.path_params["user_id"]
        token = _bearer(request)
        try:
            acct = data.authorise(("x",), user_id, token, state.now())
        except TokenProblem:
            return None, unauthorized()
        if acct is None:
            if token and data.token_owner(("x",), token) is not None:
                return None, problem(
                    404,
                    "Not Found Error",
                    f"Could not find user with id: [{user_id}].",
                    "https://api.twitter.com/2/problems/resource-not-found",
                )
            return None, unauthorized()
        return acct, None

    async def user_tweets(request: Request):
        if competitor_social.app_request(state, request):  # a competitor's public timeline
            return competitor_social.x_timeline(state, request, request.path_params["user_id"])
        acct, err = _auth(request)
        if err is not None:
            return err
        q = request.query_params
        try:
            max_results = int(q.get("max_results", 10))
            start = _untoken(q["pagination_token"]) if q.get("pagination_token") else 0
            since, until = parse_time(q.get("start_time")), parse_time(q.get("end_time"))
        except (ValueError, KeyError):
            return problem(
                400,
                "Invalid Request",
                "One or more parameters to your request was invalid.",
                "https://api.twitter.com/2/problems/invalid-request",
            )
        if not 5 <= max_results <= 100:
            return problem(
                400,
                "Invalid Request",
                f"The `max_results` query parameter value [{max_results}] is not between 5 and 100",
                "https://api.twitter.com/2/problems/invalid-request",
            )
        fields = {f.strip() for f in q.get("tweet.fields", "").split(",") if f.strip()}
        posts = data.posts_between("x", acct.account_id, since, until)
        page = posts[start : start + max_results]
        if not page:
            return JSONResponse({"meta": {"result_count": 0}})
        media: list[dict] = []
        tweets = [_tweet(p, fields, acct.non_public_metrics, media) for p in page]
        meta = {
            "result_count": len(page),
            "newest_id": page[0].post_id,
            "oldest_id": page[-1].post_id,
        }
        if start + len(page) < len(posts):
            meta["next_token"] = _token(start + len(page))
        if start > 0:
            meta["previous_token"] = _token(max(0, start - max_results))
        body: dict = {"data": tweets, "meta": meta}
        if media and "attachments.media_keys" in q.get("expansions", ""):
            body["includes"] = {"media": media}
        if "non_public_metrics" in fields and not acct.non_public_metrics:
            body["errors"] = [
                {
                    "value": p.post_id,
                    "detail": "Sorry, you are not authorized to access "
                    "'non_public_metrics' on a Tweet.",
                    "field": "non_public_metrics",
                    "resource_type": "tweet",
                    "parameter": "tweet.fields",
                    "resource_id": p.post_id,
                    "title": "Field Authorization Error",
                    "section": "data",
                    "type": "https://api.twitter.com/2/problems/not-authorized-for-field",
                }
                for p in page
            ]
        return JSONResponse(body)

    async def user(request: Request):
        if competitor_social.app_request(state, request):  # a competitor's public profile
            return competitor_social.x_user(state, request, request.path_params["user_id"], "id")
        acct, err = _auth(request)
        if err is not None:
            return err
        posts = data.posts_between("x", acct.account_id, None, None)
        return JSONResponse(
            {
                "data": {
                    "id": acct.account_id,
                    "name": acct.handle or acct.account_id,
                    "username": acct.handle or acct.account_id,
                    "public_metrics": {
                        "followers_count": acct.followers,
                        "following_count": 0,
                        "tweet_count": len(posts),
                        "listed_count": 0,
                        "like_count": 0,
                        "media_count": 0,
                    },
                }
            }
        )

    return [
        Route(
            f"{PREFIX}/users/{{user_id}}/tweets", user_tweets, methods=["GET"], name="x.user_tweets"
        ),
        Route(f"{PREFIX}/users/{{user_id}}", user, methods=["GET"], name="x.user"),
    ]
