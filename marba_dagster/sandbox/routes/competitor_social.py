"""Competitors' public social accounts: Instagram Business Discovery and X with an app-only
bearer token.

* ``GET /graph/v21.0/{ig-user-id}?fields=business_discovery.username(NAME){followers_count,
  media_count,media.limit(N){...}}`` (served through ``graph.node``, whose handler hands
  these requests here; faults: route ``graph.node`` with ``path_contains=
  "business_discovery"``): the account's public profile and media, newest first, ``limit``
  (25, max 100) and ``media.after(CURSOR)`` paging. The ``access_token`` must be the
  ``ig-user-id`` account's (code 190 otherwise); a token denied ``instagram_basic`` or
  ``pages_read_engagement`` gets ``(#10)`` with HTTP 403; an unknown username gets code 110.
* ``GET /x/2/users/by/username/{name}`` (``x.user_by_username``), and ``GET /x/2/users/{id}``
  and ``GET /x/2/users/{id}/tweets`` (``x.user``, ``x.user_tweets``, whose handlers hand
  requests with an app-only token here): the public profile, then the original posts,
  newest first, ``start_time``/``end_time``, ``max_results`` (5-100) and
  ``pagination_token``. An app token that is not valid gets 401; an unknown user 200 with
  only ``errors`` (as X answers).

Data: what tests put in :func:`competitor_social_data` (``add_instagram``,
``add_instagram_post``, ``add_x_user``, ``add_x_post``, ``revoke_app_token``). With
``generate`` on (the default, for the demo), any other name is an account with a
deterministic history derived from the name and the calendar: posts on about one day in
three over the last nine weeks, a campaign week (a new hashtag every day) one week in four,
and now and then a post with ten times the usual engagement.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from datetime import datetime, timedelta, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox.platform_data import TokenProblem, parse_time, platform_data
from marba_dagster.sandbox.routes.graph import graph_error, token_error

X = "/x/2"
SANDBOX_X_APP_TOKEN = "sandbox-x-app-bearer"  # the app-only token the sandbox accepts
HISTORY_DAYS = 63
DISCOVERY_PERMISSIONS = ("instagram_basic", "pages_read_engagement")
_DISCOVERY = re.compile(r"business_discovery\.username\(([^)]*)\)\{(.*)\}\s*$")
_MEDIA_EDGE = re.compile(r"media((?:\.(?:after|limit)\([^)]*\))*)\{")
DEMO_CAPTIONS = (
    "New this week at the shop",
    "Behind the scenes with the team",
    "Thank you for 5 great years!",
    "Weekend hours are here",
    "Meet our newest arrival",
    "Customer favourite, back again",
)


def _time(when: datetime, graph: bool) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S+0000" if graph else "%Y-%m-%dT%H:%M:%S.000Z")


def _cursor(n: int) -> str:
    return base64.urlsafe_b64encode(f"c{n}".encode()).decode().rstrip("=")


def _uncursor(value: str) -> int:
    text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    if not text.startswith("c"):
        raise ValueError("bad cursor")
    return int(text[1:])


class CompetitorSocialData:
    """Public Instagram and X accounts of competitors; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.generate = True
            self._app_tokens = {SANDBOX_X_APP_TOKEN: True}
            self._instagram: dict[str, dict] = {}
            self._x: dict[str, dict] = {}
            self._x_names: dict[str, str] = {}

    # ---------------------------------------------------------------- filling
    def add_instagram(self, name: str, followers: int = 0) -> None:
        with self._lock:
            self._instagram[name.lower()] = {
                "id": f"178414{int(hashlib.sha1(name.encode()).hexdigest()[:10], 16)}",
                "username": name,
                "followers": int(followers),
                "posts": [],
            }

    def add_instagram_post(
        self, name: str, post_id: str, caption: str, when: datetime, likes: int = 0, comments=0
    ) -> None:
        with self._lock:
            self._instagram[name.lower()]["posts"].append(
                {
                    "id": str(post_id),
                    "text": caption,
                    "when": when,
                    "likes": likes,
                    "comments": comments,
                    "shares": 0,
                }
            )

    def add_x_user(self, user_id: str, username: str, followers: int = 0) -> None:
        with self._lock:
            self._x[str(user_id)] = {
                "id": str(user_id),
                "username": username,
                "followers": int(followers),
                "posts": [],
            }
            self._x_names[username.lower()] = str(user_id)

    def add_x_post(
        self,
        user_id: str,
        post_id: str,
        text: str,
        when: datetime,
        likes: int = 0,
        replies: int = 0,
        reposts: int = 0,
    ) -> None:
        with self._lock:
            self._x[str(user_id)]["posts"].append(
                {
                    "id": str(post_id),
                    "text": text,
                    "when": when,
                    "likes": likes,
                    "comments": replies,
                    "shares": reposts,
                }
            )

    def revoke_app_token(self, token: str = SANDBOX_X_APP_TOKEN) -> None:
        with self._lock:
            self._app_tokens[token] = False

    # ---------------------------------------------------------------- reading
    def app_token(self, token: str | None) -> bool | None:
        """True for a valid app-only token, False for a revoked one, None for another."""
        with self._lock:
            return self._app_tokens.get(token or "")

    def instagram(self, name: str, now: datetime) -> dict | None:
        with self._lock:
            found = self._instagram.get(name.lower())
            generate = self.generate
        if found is not None or not generate:
            return found
        return _generated(name, f"178415{_number(name, 10)}", now, "instagram")

    def x_user(self, key: str, now: datetime) -> dict | None:
        """By numeric id or by username."""
        with self._lock:
            user_id = key if key.isdigit() else self._x_names.get(key.lower())
            found = self._x.get(user_id) if user_id else None
            generate = self.generate
        if found is not None or not generate:
            return found
        if key.isdigit():
            return _generated(f"user{key[-6:]}", key, now, "x")
        return _generated(key, str(10**17 + _number(key, 16)), now, "x")


def _number(text: str, digits: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10**digits


def _generated(name: str, account_id: str, now: datetime, platform: str) -> dict:
    """A deterministic account: its posts depend only on the name and the calendar day, so
    every read (and every run) agrees on them."""
    today = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    slug = re.sub(r"[^a-z0-9]", "", name.lower())[:12] or "shop"
    posts = []
    for back in range(HISTORY_DAYS):
        day = today - timedelta(days=back)
        week = day.isocalendar()
        digest = hashlib.sha256(f"{platform}:{name}:{day:%Y%m%d}".encode()).digest()
        campaign = _number(f"{name}:{week.year}W{week.week}", 4) % 4 == 0
        if not campaign and digest[0] % 3:
            continue
        when = day + timedelta(hours=9 + digest[1] % 10, minutes=digest[2] % 60)
        if when >= now:
            continue
        text = DEMO_CAPTIONS[digest[3] % len(DEMO_CAPTIONS)]
        if campaign:
            text += f" #{slug}week{week.week}"
        likes = 20 + digest[4] % 80
        if digest[5] % 29 == 0:
            likes *= 10
        posts.append(
            {
                "id": f"{account_id[-8:]}{day:%y%m%d}{digest[6] % 10}",
                "text": text,
                "when": when,
                "likes": likes,
                "comments": digest[7] % 15,
                "shares": digest[8] % 6 if platform == "x" else 0,
            }
        )
    return {
        "id": account_id,
        "username": name,
        "followers": 500 + _number(name, 5),
        "posts": posts,
    }


def competitor_social_data(state) -> CompetitorSocialData:
    return state.module_state("competitor_social_data", CompetitorSocialData)


def _newest_first(posts: list[dict]) -> list[dict]:
    return sorted(posts, key=lambda p: (p["when"], p["id"]), reverse=True)


def business_discovery(state, request: Request, node_id: str) -> JSONResponse:
    """``GET /{ig-user-id}?fields=business_discovery...`` (called by ``graph.node``)."""
    data, social = platform_data(state), competitor_social_data(state)
    try:
        acct = data.authorise(
            ("instagram",), node_id, request.query_params.get("access_token"), state.now()
        )
    except TokenProblem as problem:
        return token_error(problem)
    if acct is None:
        return graph_error(
            f"Unsupported get request. Object with ID '{node_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation.",
            100,
            type_="GraphMethodException",
            subcode=33,
        )
    if any(p in acct.denied for p in DISCOVERY_PERMISSIONS):
        return graph_error(
            "(#10) Application does not have permission for this action", 10, status=403
        )
    match = _DISCOVERY.search(request.query_params.get("fields", ""))
    if not match:
        return graph_error("(#100) Invalid business_discovery field syntax", 100)
    name, inner = match.group(1).strip(), match.group(2)
    found = social.instagram(name, state.now())
    if found is None:
        return graph_error("Invalid user id", 110, subcode=2207013)
    posts = _newest_first(found["posts"])
    out: dict = {"id": found["id"]}
    if "followers_count" in inner:
        out["followers_count"] = found["followers"]
    if "media_count" in inner:
        out["media_count"] = len(posts)
    edge = _MEDIA_EDGE.search(inner)
    if edge:
        modifiers = dict(re.findall(r"\.(after|limit)\(([^)]*)\)", edge.group(1)))
        try:
            limit = min(100, max(1, int(modifiers.get("limit", 25))))
            start = _uncursor(modifiers["after"]) if modifiers.get("after") else 0
        except ValueError:
            return graph_error("(#100) Invalid media paging", 100)
        page = posts[start : start + limit]
        media: dict = {
            "data": [
                {
                    "id": p["id"],
                    "caption": p["text"],
                    "like_count": p["likes"],
                    "comments_count": p["comments"],
                    "timestamp": _time(p["when"], graph=True),
                    "permalink": f"https://www.instagram.com/p/{p['id']}/",
                }
                for p in page
            ]
        }
        if page:
            media["paging"] = {
                "cursors": {"before": _cursor(start), "after": _cursor(start + len(page))}
            }
            if start + len(page) < len(posts):
                media["paging"]["next"] = (
                    f"{str(request.url).split('?')[0]}?fields=business_discovery.username("
                    f"{name}){{media.after({_cursor(start + len(page))}).limit({limit})}}"
                )
        out["media"] = media
    return JSONResponse({"business_discovery": out, "id": acct.account_id})


def _x_problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"title": title, "detail": detail, "type": "about:blank", "status": status},
        status_code=status,
    )


def _x_not_found(key: str, parameter: str) -> JSONResponse:
    return JSONResponse(
        {
            "errors": [
                {
                    "value": key,
                    "detail": f"Could not find user with {parameter}: [{key}].",
                    "title": "Not Found Error",
                    "resource_type": "user",
                    "parameter": parameter,
                    "resource_id": key,
                    "type": "https://api.twitter.com/2/problems/resource-not-found",
                }
            ]
        }
    )


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def app_request(state, request: Request) -> bool:
    """Whether the request carries an app-only token (valid or revoked): then the X user
    routes hand it here."""
    return competitor_social_data(state).app_token(_bearer(request)) is not None


def _x_profile(user: dict) -> dict:
    return {
        "data": {
            "id": user["id"],
            "name": user["username"],
            "username": user["username"],
            "public_metrics": {
                "followers_count": user["followers"],
                "following_count": 0,
                "tweet_count": len(user["posts"]),
                "listed_count": 0,
            },
        }
    }


def x_user(state, request: Request, key: str, parameter: str) -> JSONResponse:
    social = competitor_social_data(state)
    if not social.app_token(_bearer(request)):
        return _x_problem(401, "Unauthorized", "Unauthorized")
    user = social.x_user(key, state.now())
    return _x_not_found(key, parameter) if user is None else JSONResponse(_x_profile(user))


def x_timeline(state, request: Request, user_id: str) -> JSONResponse:
    social = competitor_social_data(state)
    if not social.app_token(_bearer(request)):
        return _x_problem(401, "Unauthorized", "Unauthorized")
    user = social.x_user(user_id, state.now())
    if user is None:
        return _x_problem(404, "Not Found Error", f"Could not find user with id: [{user_id}].")
    q = request.query_params
    try:
        max_results = int(q.get("max_results", 10))
        start = _uncursor(q["pagination_token"]) if q.get("pagination_token") else 0
        since, until = parse_time(q.get("start_time")), parse_time(q.get("end_time"))
    except (ValueError, KeyError):
        return _x_problem(400, "Invalid Request", "One or more parameters was invalid.")
    if not 5 <= max_results <= 100:
        return _x_problem(400, "Invalid Request", "max_results is not between 5 and 100")
    posts = [
        p
        for p in _newest_first(user["posts"])
        if (since is None or p["when"] >= since) and (until is None or p["when"] < until)
    ]
    page = posts[start : start + max_results]
    if not page:
        return JSONResponse({"meta": {"result_count": 0}})
    meta: dict = {
        "result_count": len(page),
        "newest_id": page[0]["id"],
        "oldest_id": page[-1]["id"],
    }
    if start + len(page) < len(posts):
        meta["next_token"] = _cursor(start + len(page))
    return JSONResponse(
        {
            "data": [
                {
                    "id": p["id"],
                    "text": p["text"],
                    "created_at": _time(p["when"], graph=False),
                    "edit_history_tweet_ids": [p["id"]],
                    "public_metrics": {
                        "like_count": p["likes"],
                        "reply_count": p["comments"],
                        "retweet_count": p["shares"],
                        "quote_count": 0,
                    },
                }
                for p in page
            ],
            "meta": meta,
        }
    )


def routes(state) -> list[Route]:
    async def user_by_username(request: Request):
        return x_user(state, request, request.path_params["username"], "username")

    return [
        Route(
            f"{X}/users/by/username/{{username}}",
            user_by_username,
            methods=["GET"],
            name="x.user_by_username",
        )
    ]
