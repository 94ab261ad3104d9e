"""X API v2 post creation: ``POST /x/2/tweets`` (route ``x_publish.tweets``).

Request ``{"text": ...}`` with the account's OAuth 2.0 user token as
``Authorization: Bearer``; answer ``201 {"data": {"id", "text", "edit_history_tweet_ids"}}``.
Errors in X's problem shape: 401 ``Unauthorized`` for a missing, unknown, revoked or expired
token; 403 "You are not allowed to create a Tweet with duplicate content." for the same
text from the same account within a day; 400 for a missing or over-long text.

Accepted posts go to ``sandbox.platform_data`` and the publish log (``routes._published``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox.platform_data import TokenProblem, platform_data
from marba_dagster.sandbox.routes._published import (
    Received,
    after_apply,
    published_log,
    register_apply_faults,
)

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
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return JSONResponse(
                {
                    "errors": [{"message": "$.text: must be a non-empty string"}],
                    "title": "Invalid Request",
                    "detail": "One or more parameters to your request was invalid.",
                    "type": "https://api.twitter.com/2/problems/invalid-request",
                },
                status_code=400,
            )
        if len(text) > MAX_CHARS:
            return JSONResponse(
                {
                    "detail": f"Your Tweet text is too long (over {MAX_CHARS} characters).",
                    "type": "about:blank",
                    "title": "Forbidden",
                    "status": 403,
                },
                status_code=403,
            )
        now = state.now()
        if log.recent_text("x", owner.account_id, text, DUPLICATE_WINDOW_SECONDS, now):
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
        log.add(Received("x", owner.account_id, post_id, text, (), now))
        answer = JSONResponse(
            {"data": {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}},
            status_code=201,
        )
        return await after_apply(state, TWEETS, request, answer)

    return [Route(f"{PREFIX}/tweets", tweets, methods=["POST"], name=TWEETS)]
