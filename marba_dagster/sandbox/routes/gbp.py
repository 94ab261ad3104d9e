"""Google Business Profile reviews: ``GET /gbp/accounts/{a}/locations/{l}/reviews``
(route ``gbp.reviews``), the shape of ``accounts.locations.reviews.list`` (API v4).

Answer: ``{"reviews": [{"name", "reviewId", "reviewer": {"displayName"}, "starRating":
"ONE".."FIVE", "comment", "createTime", "updateTime"}], "averageRating", "totalReviewCount",
"nextPageToken"}``, newest first, ``pageSize`` (default and max 50) and ``pageToken``.
Authorization: ``Bearer`` with the location's token (tests register it with
``gbp_data(state).add_location``); otherwise 401 in Google's error shape
(``{"error": {"code": 401, "message", "status": "UNAUTHENTICATED"}}``). A location nobody
registered is 404 ``NOT_FOUND``, unless ``generate`` is on (the default, for the demo):
then any bearer token is accepted and 0-4 deterministic reviews derived from the location
name are served.

Local posts: ``POST /gbp/accounts/{a}/locations/{l}/localPosts`` (route
``gbp.local_posts``), ``accounts.locations.localPosts.create``: a ``LocalPost`` with
``topicType`` (STANDARD, EVENT, OFFER, ALERT), ``summary`` (at most 1,500 characters,
required for STANDARD), ``event`` (``title``, ``schedule`` with ``startDate``/``endDate``
and optional times; required for EVENT and OFFER), ``offer``, ``callToAction``
(``actionType``, ``url`` but for CALL) and ``media`` (``PHOTO``/``VIDEO`` with an https
``sourceUrl``); answers the post with ``name`` (``.../localPosts/{id}``), ``state`` LIVE,
``createTime`` and ``searchUrl``, or 400 ``INVALID_ARGUMENT``; 401 as for reviews; 403
``PERMISSION_DENIED`` for a location whose token lacks the scope (``gbp_data.deny``).
Accepted posts go to the publish log (``routes._published``), which the apply_* faults
follow.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import datetime, timedelta, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox.routes._published import (
    Received,
    after_apply,
    published_log,
    register_apply_faults,
)

PREFIX = "/gbp"
STARS = {1: "ONE", 2: "TWO", 3: "THREE", 4: "FOUR", 5: "FIVE"}
LOCAL_POSTS = "gbp.local_posts"
TOPIC_TYPES = ("STANDARD", "EVENT", "OFFER", "ALERT")
ACTION_TYPES = ("BOOK", "ORDER", "SHOP", "LEARN_MORE", "SIGN_UP", "CALL")
SUMMARY_CHARS = 1500

register_apply_faults(LOCAL_POSTS)


class GbpData:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.generate = True
            self._tokens: dict[str, str] = {}
            self._reviews: dict[str, list[dict]] = {}
            self._denied: set[str] = set()

    def add_location(self, name: str, token: str) -> None:
        with self._lock:
            self._tokens[name] = token
            self._reviews.setdefault(name, [])

    def add_review(
        self,
        location: str,
        review_id: str,
        stars: int,
        comment: str,
        when: datetime,
        reviewer: str = "A Google user",
    ) -> None:
        if stars not in STARS:
            raise ValueError("stars must be 1..5")
        with self._lock:
            self._reviews.setdefault(location, []).append(
                {
                    "id": review_id,
                    "stars": stars,
                    "comment": comment,
                    "when": when,
                    "reviewer": reviewer,
                }
            )

    def deny(self, location: str) -> None:
        """The location's token lacks the ``business.manage`` scope: 403 on posting."""
        with self._lock:
            self._denied.add(location)

    def denied(self, location: str) -> bool:
        with self._lock:
            return location in self._denied

    def token(self, location: str) -> str | None:
        with self._lock:
            return self._tokens.get(location)

    def reviews(self, location: str, now: datetime | None = None) -> list[dict]:
        with self._lock:
            items = self._reviews.get(location)
            if items is None and self.generate and now is not None:
                items = _demo_reviews(location, now)
            return sorted(items or [], key=lambda r: (r["when"], r["id"]), reverse=True)


DEMO_REVIEWS = (
    (5, "Lovely place, friendly staff and great coffee.", "Marta G."),
    (4, "Good food, a bit slow at lunch time.", "Ken O."),
    (1, "Waited 40 minutes and the order was wrong. Never again.", "Rob T."),
    (2, "Overpriced for what you get, and the manager was rude.", "Lia F."),
    (5, "Best brunch in the neighbourhood!", "Ivo N."),
    (3, "It was ok.", "Pat C."),
)


def _demo_reviews(location: str, now: datetime) -> list[dict]:
    digest = hashlib.sha256(location.encode()).digest()
    out = []
    for k in range(digest[0] % 5):
        stars, comment, reviewer = DEMO_REVIEWS[digest[k + 1] % len(DEMO_REVIEWS)]
        hours = 1 + digest[k + 8] % 72
        when = (now - timedelta(hours=hours)).replace(
            minute=digest[k + 16] % 60, second=0, microsecond=0
        )
        out.append(
            {
                "id": f"demo{digest[k + 20]:03d}{k}",
                "stars": stars,
                "comment": comment,
                "when": when,
                "reviewer": reviewer,
            }
        )
    return out


def gbp_data(state) -> GbpData:
    return state.module_state("gbp_data", GbpData)


def _google_error(code: int, status: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "status": status}}, status_code=code
    )


def routes(state) -> list[Route]:
    store = gbp_data(state)

    def authorize(request: Request) -> tuple[str, JSONResponse | None]:
        """The location a request names, and Google's answer if its bearer token is refused."""
        location = (
            f"accounts/{request.path_params['account']}/locations/{request.path_params['location']}"
        )
        expected = store.token(location)
        if expected is None and not store.generate:
            return location, _google_error(404, "NOT_FOUND", "Requested entity was not found.")
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not given or (expected is not None and given != expected):
            return location, _google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        return location, None

    async def reviews(request: Request):
        location, refused = authorize(request)
        if refused is not None:
            return refused
        try:
            size = min(50, max(1, int(request.query_params.get("pageSize", 50))))
            start = int(
                base64.urlsafe_b64decode(request.query_params.get("pageToken", "MA==")).decode()
            )
        except ValueError:
            return _google_error(400, "INVALID_ARGUMENT", "Invalid pageSize or pageToken.")
        items = store.reviews(location, state.now())
        page = items[start : start + size]
        body: dict = {
            "reviews": [
                {
                    "name": f"{location}/reviews/{r['id']}",
                    "reviewId": r["id"],
                    "reviewer": {"displayName": r["reviewer"], "isAnonymous": False},
                    "starRating": STARS[r["stars"]],
                    "comment": r["comment"],
                    "createTime": r["when"]
                    .astimezone(timezone.utc)
                    .isoformat()
                    .replace("+00:00", "Z"),
                    "updateTime": r["when"]
                    .astimezone(timezone.utc)
                    .isoformat()
                    .replace("+00:00", "Z"),
                }
                for r in page
            ],
            "totalReviewCount": len(items),
        }
        if items:
            body["averageRating"] = round(sum(r["stars"] for r in items) / len(items), 1)
        if start + size < len(items):
            body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return JSONResponse(body)

    log = published_log(state)

    async def local_posts(request: Request):
        location, refused = authorize(request)
        if refused is not None:
            return refused
        if store.denied(location):
            return _google_error(403, "PERMISSION_DENIED", "The caller does not have permission")
        try:
            body = await request.json()
        except ValueError:
            body = None
        problem = _local_post_problem(body)
        if problem:
            return _google_error(400, "INVALID_ARGUMENT", problem)
        now = state.now()
        post_id = str(log.next_id())
        name = f"{location}/localPosts/{post_id}"
        text = body.get("summary") or body.get("event", {}).get("title", "")
        media = tuple(m.get("sourceUrl", "") for m in body.get("media") or ())
        log.add(Received("google_business", location, name, text, media, now))
        stamp = now.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        answer = dict(
            body,
            name=name,
            state="LIVE",
            createTime=stamp,
            updateTime=stamp,
            searchUrl=f"https://local.google.com/place?id={post_id}&use=posts",
        )
        return await after_apply(state, LOCAL_POSTS, request, JSONResponse(answer))

    return [
        Route(
            f"{PREFIX}/accounts/{{account}}/locations/{{location}}/reviews",
            reviews,
            methods=["GET"],
            name="gbp.reviews",
        ),
        Route(
            f"{PREFIX}/accounts/{{account}}/locations/{{location}}/localPosts",
            local_posts,
            methods=["POST"],
            name=LOCAL_POSTS,
        ),
    ]


def _local_post_problem(body: object) -> str | None:
    """Why Google would answer 400 INVALID_ARGUMENT for this LocalPost, or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    topic = body.get("topicType")
    if topic not in TOPIC_TYPES:
        return f"Invalid value at 'local_post.topic_type' ({topic!r})"
    summary = body.get("summary") or ""
    if not isinstance(summary, str) or len(summary) > SUMMARY_CHARS:
        return f"local_post.summary: must be at most {SUMMARY_CHARS} characters"
    if topic == "STANDARD" and not summary.strip():
        return "local_post.summary is required for STANDARD posts"
    if topic in ("EVENT", "OFFER"):
        event = body.get("event")
        schedule = event.get("schedule") if isinstance(event, dict) else None
        if not isinstance(event, dict) or not event.get("title"):
            return "local_post.event.title is required"
        if not isinstance(schedule, dict) or not all(
            isinstance(schedule.get(k), dict) for k in ("startDate", "endDate")
        ):
            return "local_post.event.schedule needs startDate and endDate"
    cta = body.get("callToAction")
    if cta is not None:
        if not isinstance(cta, dict) or cta.get("actionType") not in ACTION_TYPES:
            return "Invalid value at 'local_post.call_to_action.action_type'"
        if cta["actionType"] != "CALL" and not cta.get("url"):
            return "local_post.call_to_action.url is required"
    for m in body.get("media") or ():
        if not isinstance(m, dict) or m.get("mediaFormat") not in ("PHOTO", "VIDEO"):
            return "Invalid value at 'local_post.media.media_format'"
        if not str(m.get("sourceUrl", "")).startswith("https://"):
            return "local_post.media.source_url must be a public https URL"
    return None
