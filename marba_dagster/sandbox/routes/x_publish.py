"""X API v2 post creation: ``POST /x/2/tweets`` (route ``x_publish.tweets``).

Request ``{"text": ...}`` with the account's OAuth 2.0 user token as
``Authorization: Bearer``; answer ``201 {"data": {"id", "text", "edit_history_tweet_ids"}}``.
Errors in X's problem shape: 401 ``Unauthorized`` for a missing, unknown, revoked or expired
token; 403 "You are not allowed to create a Tweet with duplicate content." for the same
text from the same account within a day; 400 for a missing or over-long text. With a
per-user limit set (``routes._published.PublishLimits.x_per_user``) every answer carries
``x-rate-limit-limit``, ``-remaining`` and ``-reset`` (epoch seconds), and a user past it
gets 429 "Too Many Requests" with those headers and no Retry-After, as X answers.

Accepted posts go to ``sandbox.platform_data`` and the publish log (``routes._published``).
"""

from __future__ import annotations

import math
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.core.publishing import x_weighted_length
from marba_dagster.sandbox.platform_data import TokenProblem, platform_data
from marba_dagster.sandbox.routes._published import (
    Received,
    after_apply,
    publish_limits,
    published_log,
    register_apply_faults,
)
from marba_dagster.sandbox.routes.x_media import x_media

PREFIX = "/x/2"
TWEETS = "x_publish.tweets"
MAX_CHARS = 280
DUPLICATE_WINDOW_SECONDS = 24 * 3600.0

register_apply_faults(TWEETS)


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"},
        status_code=401,
    )


def routes(state) -> list[Route]:
    data = platform_data(state)
    log = published_log(state)

    async def tweets(request: Request):
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        owner = data.token_owner(("x",), token) if token else None
        if owner is None:
            return _unauthorized()
        try:
            data.authorise(("x",), owner.account_id, token, state.now())
        except TokenProblem:
            return _unauthorized()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse(
                {
                    "title": "Invalid Request",
                    "type": "https://api.twitter.com/2/problems/invalid-request",
                    "detail": "The request body is not valid JSON.",
                    "status": 400,
                },
                status_code=400,
            )
        text = body.get("text", "" if body.get("media") else None)
        if not isinstance(text, str) or not (text.strip() or body.get("media")):
            return JSONResponse(
                {
                    "errors": [{"message": "$.text: must be a non-empty string"}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": "https://api.twitter.com/2/problems/invalid-request",
                },
                status_code=400,
            )
        if x_weighted_length(text) > MAX_CHARS:  # as X counts (twitter-text weights)
            return JSONResponse(
                {
                    "detail": f"Your Tweet text is too long (over {MAX_CHARS} characters).",
                    "type": "about:blank",
                    "title": "Forbidden",
                    "status": 403,
                },
                status_code=403,
            )
        media = body.get("media")
        media_ids = media.get("media_ids") if isinstance(media, dict) else None
        if media is not None and (
            not isinstance(media_ids, list)
            or not 1 <= len(media_ids) <= 4
            or not all(x_media(state).ready(str(m), owner.account_id) for m in media_ids)
        ):
            return JSONResponse(
                {
                    "errors": [{"message": "$.media.media_ids: media not found or not ready"}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": "https://api.twitter.com/2/problems/invalid-request",
                },
                status_code=400,
            )
        now = state.now()
        limits = publish_limits(state)
        headers: dict[str, str] = {}
        if limits.x_per_user is not None:
            window = timedelta(seconds=limits.x_window_seconds)
            sent = log.since("x", owner.account_id, now - window)
            reset = (sent[0] + window) if sent else (now + window)
            remaining = max(0, limits.x_per_user - len(sent))
            headers = {
                "x-rate-limit-limit": str(limits.x_per_user),
                "x-rate-limit-remaining": str(max(0, remaining - 1) if remaining else 0),
                "x-rate-limit-reset": str(math.ceil(reset.timestamp())),
            }
            if remaining == 0:
                return JSONResponse(
                    {
                        "title": "Too Many Requests",
                        "detail": "Too Many Requests",
                        "type": "about:blank",
                        "status": 429,
                    },
                    status_code=429,
                    headers=headers,
                )
        if text and log.recent_text("x", owner.account_id, text, DUPLICATE_WINDOW_SECONDS, now):
            return JSONResponse(
                {
                    "detail": "You are not allowed to create a Tweet with duplicate content.",
                    "type": "about:blank",
                    "title": "Forbidden",
                    "status": 403,
                },
                status_code=403,
            )
        post_id = str(1_860_000_000_000_000_000 + log.next_id())
        data.add_post("x", owner.account_id, post_id, now, body=text, format="text")
        attached = tuple(str(m) for m in media_ids or ())
        log.add(Received("x", owner.account_id, post_id, text, attached, now))
        answer = JSONResponse(
            {"data": {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}},
            status_code=201,
            headers=headers,
        )
        return await after_apply(state, TWEETS, request, answer)

    return [Route(f"{PREFIX}/tweets", tweets, methods=["POST"], name=TWEETS)]
