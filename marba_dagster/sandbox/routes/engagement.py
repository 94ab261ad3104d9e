"""Engagement read routes: comments (Graph API), mentions and direct messages (X API v2).

* ``GET /graph/v21.0/{object-id}/comments`` (``engagement.comments``): a Facebook post's
  comments (``id``, ``message``, ``from{id,name}``, ``created_time``) or an Instagram
  media's (``id``, ``text``, ``username``, ``timestamp``), oldest first, ``limit`` (25,
  max 100) with cursor paging (``after``; ``paging.next`` only when more remain). The
  ``access_token`` must be the token of the account that owns the post (code 190 if not).
* ``GET /x/2/users/{id}/mentions`` (``engagement.x_mentions``): posts mentioning the user,
  newest first, ``start_time``/``end_time``, ``max_results`` (5-100), ``pagination_token``;
  ``includes.users`` with ``public_metrics.followers_count``.
* ``GET /x/2/dm_events`` (``engagement.x_dm_events``): the token owner's direct message
  events, newest first, same paging; ``includes.users`` for senders.

Data: what tests put in :func:`engagement_data` (``add_comment``, ``add_mention``,
``add_dm``). With ``generate`` on (the default, for the demo), a post with no comments set
gets 0-3 deterministic ones derived from its id and publication time.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import datetime, timedelta, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox.platform_data import TokenProblem, parse_time, platform_data
from marba_dagster.sandbox.routes.graph import PREFIX as GRAPH
from marba_dagster.sandbox.routes.graph import graph_error, token_error

X = "/x/2"

DEMO_COMMENTS = (
    ("Love this! 😍", "Maya R."),
    ("What time do you open on Sundays?", "Tom B."),
    ("My order arrived broken and nobody answers my emails. I want a refund.", "Jules K."),
    ("Great service as always 👍", "Priya S."),
    ("Is this available in other sizes?", "Leo M."),
    ("meh, it was ok", "Sam D."),
    ("Worst experience ever 😡 cancel my subscription", "Alex P."),
    ("🔥🔥🔥", "Nina W."),
)


def _x_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _graph_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


class EngagementData:
    """Comments, mentions and DMs per account/post; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.generate = True
            self._comments: dict[tuple[str, str], list[dict]] = {}
            self._mentions: dict[str, list[dict]] = {}
            self._dms: dict[str, list[dict]] = {}
            self._users: dict[str, dict] = {}

    def add_comment(
        self,
        platform: str,
        post_id: str,
        comment_id: str,
        text: str,
        when: datetime,
        author: str = "someone",
        author_id: str | None = None,
    ) -> None:
        with self._lock:
            self._comments.setdefault((platform, str(post_id)), []).append(
                {
                    "id": str(comment_id),
                    "text": text,
                    "when": when,
                    "author": author,
                    "author_id": author_id or f"u{abs(hash(author)) % 10**9}",
                }
            )

    def add_user(self, user_id: str, username: str, followers: int) -> None:
        with self._lock:
            self._users[str(user_id)] = {
                "id": str(user_id),
                "username": username,
                "name": username,
                "public_metrics": {"followers_count": int(followers)},
            }

    def add_mention(
        self, user_id: str, post_id: str, text: str, when: datetime, author_id: str
    ) -> None:
        with self._lock:
            self._mentions.setdefault(str(user_id), []).append(
                {"id": str(post_id), "text": text, "when": when, "author_id": str(author_id)}
            )

    def add_dm(
        self,
        user_id: str,
        event_id: str,
        text: str,
        when: datetime,
        sender_id: str,
        conversation_id: str | None = None,
    ) -> None:
        with self._lock:
            self._dms.setdefault(str(user_id), []).append(
                {
                    "id": str(event_id),
                    "text": text,
                    "when": when,
                    "sender_id": str(sender_id),
                    "conversation_id": conversation_id
                    or f"{min(user_id, sender_id)}-{max(user_id, sender_id)}",
                }
            )

    def comments(self, platform: str, post_id: str, published_at: datetime | None) -> list[dict]:
        with self._lock:
            explicit = self._comments.get((platform, str(post_id)))
            if explicit is not None or not self.generate or published_at is None:
                return sorted(explicit or [], key=lambda c: (c["when"], c["id"]))
        digest = hashlib.sha256(f"{platform}:{post_id}".encode()).digest()
        out = []
        for k in range(digest[0] % 4):
            text, author = DEMO_COMMENTS[digest[k + 1] % len(DEMO_COMMENTS)]
            out.append(
                {
                    "id": f"{post_id}_c{k + 1}",
                    "text": text,
                    "author": author,
                    "author_id": f"u{digest[k + 5]}{k}",
                    "when": published_at + timedelta(minutes=17 + 53 * k + digest[k + 9]),
                }
            )
        return out

    def mentions(self, user_id: str) -> list[dict]:
        with self._lock:
            return list(self._mentions.get(str(user_id), []))

    def dms(self, user_id: str) -> list[dict]:
        with self._lock:
            return list(self._dms.get(str(user_id), []))

    def user(self, user_id: str) -> dict | None:
        with self._lock:
            return self._users.get(str(user_id))


def engagement_data(state) -> EngagementData:
    return state.module_state("engagement_data", EngagementData)


def _cursor(n: int) -> str:
    return base64.urlsafe_b64encode(str(n).encode()).decode()


def _uncursor(value: str | None) -> int:
    if not value:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(value.encode()).decode()))
    except (ValueError, UnicodeDecodeError):
        return -1


def _x_problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"title": title, "detail": detail, "type": "about:blank", "status": status},
        status_code=status,
    )


def routes(state) -> list[Route]:
    data = platform_data(state)
    eng = engagement_data(state)

    async def comments(request: Request):
        object_id = request.path_params["object_id"]
        post = data.post("facebook", object_id)
        platform = "facebook"
        if post is None:
            post = data.post("instagram", object_id)
            platform = "instagram"
        if post is None:
            return graph_error(
                f"Unsupported get request. Object with ID '{object_id}' does not exist.",
                100,
                type_="GraphMethodException",
            )
        try:
            data.authorise(
                (platform,), post.account_id, request.query_params.get("access_token"), state.now()
            )
        except TokenProblem as problem:
            return token_error(problem)
        try:
            limit = min(100, max(1, int(request.query_params.get("limit", 25))))
        except ValueError:
            return graph_error("(#100) Param limit must be an integer", 100)
        start = _uncursor(request.query_params.get("after"))
        if start < 0:
            return graph_error("(#100) Invalid cursor", 100)
        items = eng.comments(platform, object_id, post.published_at)
        page = items[start : start + limit]
        if platform == "facebook":
            rows = [
                {
                    "id": c["id"],
                    "message": c["text"],
                    "created_time": _graph_time(c["when"]),
                    "from": {"id": c["author_id"], "name": c["author"]},
                }
                for c in page
            ]
        else:
            rows = [
                {
                    "id": c["id"],
                    "text": c["text"],
                    "timestamp": _graph_time(c["when"]),
                    "username": c["author"],
                    "like_count": 0,
                }
                for c in page
            ]
        body: dict = {"data": rows}
        if rows:
            body["paging"] = {
                "cursors": {"before": _cursor(start), "after": _cursor(start + len(rows))}
            }
            if start + len(rows) < len(items):
                q = dict(request.query_params)
                q["after"] = _cursor(start + len(rows))
                from urllib.parse import urlencode

                body["paging"]["next"] = f"{str(request.url).split('?')[0]}?{urlencode(q)}"
        return JSONResponse(body)

    def _x_auth(request: Request, user_id: str | None):
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        owner = data.token_owner(("x",), token) if token else None
        if owner is None or (user_id is not None and owner.account_id != str(user_id)):
            return None, _x_problem(401, "Unauthorized", "Unauthorized")
        try:
            data.authorise(("x",), owner.account_id, token, state.now())
        except TokenProblem:
            return None, _x_problem(401, "Unauthorized", "Unauthorized")
        return owner, None

    def _x_page(request: Request, items: list[dict], render, id_users: str):
        q = request.query_params
        try:
            max_results = int(q.get("max_results", 10))
        except ValueError:
            return _x_problem(400, "Invalid Request", "max_results must be a number")
        if not 1 <= max_results <= 100:
            return _x_problem(
                400,
                "Invalid Request",
                "The `max_results` query parameter value is not between 1 and 100",
            )
        try:
            start_t, end_t = parse_time(q.get("start_time")), parse_time(q.get("end_time"))
        except ValueError:
            return _x_problem(400, "Invalid Request", "Invalid start_time or end_time")
        items = [
            i
            for i in items
            if (start_t is None or i["when"] >= start_t) and (end_t is None or i["when"] < end_t)
        ]
        items.sort(key=lambda i: (i["when"], i["id"]), reverse=True)
        offset = _uncursor(q.get("pagination_token"))
        if offset < 0:
            return _x_problem(400, "Invalid Request", "Invalid pagination_token")
        page = items[offset : offset + max_results]
        rows = [render(i) for i in page]
        body: dict = {"meta": {"result_count": len(rows)}}
        if rows:
            body["data"] = rows
            users = [u for u in (eng.user(i[id_users]) for i in page) if u]
            if users:
                body["includes"] = {"users": list({u["id"]: u for u in users}.values())}
            body["meta"].update({"newest_id": rows[0]["id"], "oldest_id": rows[-1]["id"]})
            if offset + len(rows) < len(items):
                body["meta"]["next_token"] = _cursor(offset + len(rows))
        return JSONResponse(body)

    async def x_mentions(request: Request):
        user_id = request.path_params["user_id"]
        owner, err = _x_auth(request, user_id)
        if err:
            return err
        return _x_page(
            request,
            eng.mentions(user_id),
            lambda m: {
                "id": m["id"],
                "text": m["text"],
                "author_id": m["author_id"],
                "created_at": _x_time(m["when"]),
                "conversation_id": m["id"],
                "edit_history_tweet_ids": [m["id"]],
            },
            "author_id",
        )

    async def x_dm_events(request: Request):
        owner, err = _x_auth(request, None)
        if err:
            return err
        return _x_page(
            request,
            eng.dms(owner.account_id),
            lambda d: {
                "id": d["id"],
                "text": d["text"],
                "event_type": "MessageCreate",
                "sender_id": d["sender_id"],
                "created_at": _x_time(d["when"]),
                "dm_conversation_id": d["conversation_id"],
            },
            "sender_id",
        )

    return [
        Route(
            f"{GRAPH}/{{object_id}}/comments", comments, methods=["GET"], name="engagement.comments"
        ),
        Route(
            f"{X}/users/{{user_id}}/mentions",
            x_mentions,
            methods=["GET"],
            name="engagement.x_mentions",
        ),
        Route(f"{X}/dm_events", x_dm_events, methods=["GET"], name="engagement.x_dm_events"),
    ]
