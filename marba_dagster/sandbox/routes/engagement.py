"""Engagement read routes: comments (Graph API), mentions and direct messages (X API v2).

* ``GET /graph/v21.0/{object-id}/comments`` (``engagement.comments``): a Facebook post's
  comments (``id``, ``message``, ``from{id,name}``, ``created_time``) or an Instagram
  media's (``id``, ``text``, ``username``, ``timestamp``), oldest first, ``limit`` (25,
  max 100) with cursor paging (``after``; ``paging.next`` only when more remain). The
  ``access_token`` must be the token of the account that owns the post (code 190 if not).
* ``GET /graph/v21.0/{page-id}/conversations`` (``engagement.conversations``): the Page's
  Messenger (``platform=messenger``) or linked Instagram account's (``platform=instagram``)
  conversations, newest first, each with ``updated_time`` and, when ``fields`` asks for
  ``messages``, its newest messages (``messages.limit(N)``, default 25) with their own
  ``paging``; ``limit`` and cursor paging (``after``). The Page's token is required (code
  190 otherwise); a token without ``pages_messaging`` (Messenger) gets ``(#200)`` and one
  without ``instagram_manage_messages`` gets ``(#10)``, both HTTP 403.
* ``GET /graph/v21.0/{conversation-id}/messages`` (``engagement.conversation_messages``):
  the rest of a conversation's messages, newest first, same paging and permissions.
* ``GET /x/2/users/{id}/mentions`` (``engagement.x_mentions``): posts mentioning the user,
  newest first, ``start_time``/``end_time``, ``max_results`` (5-100), ``pagination_token``;
  ``includes.users`` with ``public_metrics.followers_count``.
* ``GET /x/2/dm_events`` (``engagement.x_dm_events``): the token owner's direct message
  events, newest first, same paging; ``includes.users`` for senders.

Data: what tests put in :func:`engagement_data` (``add_comment``, ``add_mention``,
``add_dm``, ``add_message``). With ``generate`` on (the default, for the demo), a post with
no comments set gets 0-3 deterministic ones derived from its id and publication time, and a
Page with no conversations set gets 0-2 conversations a day for the last three days (ids and
times derived from the Page, the platform and the day, so repeated reads agree).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

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


DEMO_DMS = (
    ("Hi! Do you deliver on weekends?", "Rosa L."),
    ("Can I book a table for six tomorrow evening?", "Ken T."),
    ("I was charged twice for my order, please fix this asap", "Ines V."),
    ("Thank you so much, everything was perfect 🙏", "Omar F."),
    ("Do you have gift cards?", "Lena H."),
    ("Still waiting for a refund after two weeks. Terrible.", "Carl J."),
)
MESSAGING_PERMISSIONS = {
    "messenger": ("pages_messaging", 200, "(#200) Requires pages_messaging permission"),
    "instagram": (
        "instagram_manage_messages",
        10,
        "(#10) Application does not have permission for this action",
    ),
}


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
            # (page id, messenger|instagram) -> conversation id -> messages
            self._conversations: dict[tuple[str, str], dict[str, list[dict]]] = {}

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

    def add_message(
        self,
        page_id: str,
        platform: str,
        conversation_id: str,
        message_id: str,
        text: str,
        when: datetime,
        sender_id: str,
        sender_name: str = "someone",
    ) -> None:
        """A direct message in a conversation of the Page (``platform`` ``messenger``) or of
        its linked Instagram account (``instagram``)."""
        if platform not in MESSAGING_PERMISSIONS:
            raise ValueError(f"platform is messenger or instagram, got {platform!r}")
        with self._lock:
            self._conversations.setdefault((str(page_id), platform), {}).setdefault(
                str(conversation_id), []
            ).append(
                {
                    "id": str(message_id),
                    "text": text,
                    "when": when,
                    "sender_id": str(sender_id),
                    "sender_name": sender_name,
                }
            )

    def conversations(self, page_id: str, platform: str, now: datetime) -> list[dict]:
        """``[{"id", "updated", "messages": newest first}]``, newest conversation first."""
        with self._lock:
            explicit = self._conversations.get((str(page_id), platform))
            explicit = {k: list(v) for k, v in (explicit or {}).items()}
            generate = self.generate and not explicit
        found = explicit if not generate else self._demo_conversations(page_id, platform, now)
        out = []
        for conversation_id, messages in found.items():
            messages = sorted(messages, key=lambda m: (m["when"], m["id"]), reverse=True)
            if messages:
                out.append(
                    {"id": conversation_id, "updated": messages[0]["when"], "messages": messages}
                )
        return sorted(out, key=lambda c: (c["updated"], c["id"]), reverse=True)

    @staticmethod
    def _demo_conversations(page_id: str, platform: str, now: datetime) -> dict[str, list[dict]]:
        today = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        found: dict[str, list[dict]] = {}
        for back in range(3):
            day = today - timedelta(days=back)
            digest = hashlib.sha256(f"{platform}:{page_id}:{day:%Y%m%d}".encode()).digest()
            for k in range(digest[0] % 3):
                when = day + timedelta(minutes=digest[k + 1] * 5 + 7 * k)
                if when >= now:
                    continue
                text, author = DEMO_DMS[digest[k + 5] % len(DEMO_DMS)]
                conversation_id = f"t_{platform[:2]}{page_id}_{day:%Y%m%d}{k}"
                found[conversation_id] = [
                    {
                        "id": f"m_{conversation_id}",
                        "text": text,
                        "when": when,
                        "sender_id": f"{digest[k + 9]}{k}{digest[k + 13]}",
                        "sender_name": author,
                    }
                ]
        return found

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

    def _paged(request: Request, items: list, default_limit: int):
        """(page, start, error) for Graph cursor paging (``limit``, ``after``)."""
        try:
            limit = min(100, max(1, int(request.query_params.get("limit", default_limit))))
        except ValueError:
            return None, 0, graph_error("(#100) Param limit must be an integer", 100)
        start = _uncursor(request.query_params.get("after"))
        if start < 0:
            return None, 0, graph_error("(#100) Invalid cursor", 100)
        return items[start : start + limit], start, None

    def _paging(base_url: str, query: dict, start: int, count: int, total: int) -> dict:
        paging: dict = {"cursors": {"before": _cursor(start), "after": _cursor(start + count)}}
        if start + count < total:
            query = {**query, "after": _cursor(start + count)}
            paging["next"] = f"{base_url}?{urlencode(query)}"
        return paging

    def _message_rows(page_id: str, platform: str, messages: list[dict]) -> list[dict]:
        rows = []
        for m in messages:
            frm = {"id": m["sender_id"]}
            frm["username" if platform == "instagram" else "name"] = m["sender_name"]
            rows.append(
                {
                    "id": m["id"],
                    "message": m["text"],
                    "from": frm,
                    "created_time": _graph_time(m["when"]),
                }
            )
        return rows

    def _messaging_auth(request: Request, page_id: str, platform: str):
        try:
            acct = data.authorise(
                ("facebook",), page_id, request.query_params.get("access_token"), state.now()
            )
        except TokenProblem as problem:
            return token_error(problem)
        if acct is None:
            return graph_error(
                f"Unsupported get request. Object with ID '{page_id}' does not exist.",
                100,
                type_="GraphMethodException",
            )
        permission, code, message = MESSAGING_PERMISSIONS[platform]
        if permission in acct.denied:
            return graph_error(message, code, status=403)
        return None

    def _nested_limit(fields: str) -> int | None:
        """N of ``messages.limit(N){...}`` in ``fields``; 25 for plain ``messages``; None
        when messages are not asked for."""
        match = re.search(r"messages(?:\.limit\((\d+)\))?", fields)
        if not match:
            return None
        return min(100, max(1, int(match.group(1)))) if match.group(1) else 25

    async def conversations(request: Request):
        page_id = request.path_params["page_id"]
        platform = request.query_params.get("platform", "messenger")
        if platform not in MESSAGING_PERMISSIONS:
            return graph_error("(#100) param platform must be one of {MESSENGER, INSTAGRAM}", 100)
        problem = _messaging_auth(request, page_id, platform)
        if problem is not None:
            return problem
        items = eng.conversations(page_id, platform, state.now())
        page, start, problem = _paged(request, items, 25)
        if problem is not None:
            return problem
        nested = _nested_limit(request.query_params.get("fields", ""))
        base = f"{str(request.url).split('?')[0]}"
        root = base.rsplit(f"/{page_id}/conversations", 1)[0]
        rows = []
        for c in page:
            row: dict = {"id": c["id"], "updated_time": _graph_time(c["updated"])}
            if nested is not None:
                first = c["messages"][:nested]
                row["messages"] = {"data": _message_rows(page_id, platform, first)}
                if first:
                    row["messages"]["paging"] = _paging(
                        f"{root}/{c['id']}/messages",
                        {
                            "fields": "id,message,from,created_time",
                            "limit": nested,
                            "platform": platform,
                            "page": page_id,
                            "access_token": request.query_params.get("access_token", ""),
                        },
                        0,
                        len(first),
                        len(c["messages"]),
                    )
            rows.append(row)
        body: dict = {"data": rows}
        if rows:
            body["paging"] = _paging(base, dict(request.query_params), start, len(rows), len(items))
        return JSONResponse(body)

    async def conversation_messages(request: Request):
        conversation_id = request.path_params["conversation_id"]
        q = request.query_params
        page_id, platform = q.get("page", ""), q.get("platform", "messenger")
        if platform not in MESSAGING_PERMISSIONS:
            return graph_error("(#100) Invalid platform", 100)
        problem = _messaging_auth(request, page_id, platform)
        if problem is not None:
            return problem
        found = next(
            (
                c
                for c in eng.conversations(page_id, platform, state.now())
                if c["id"] == conversation_id
            ),
            None,
        )
        if found is None:
            return graph_error(
                f"Unsupported get request. Object with ID '{conversation_id}' does not exist.",
                100,
                type_="GraphMethodException",
            )
        page, start, problem = _paged(request, found["messages"], 25)
        if problem is not None:
            return problem
        rows = _message_rows(page_id, platform, page)
        body: dict = {"data": rows}
        if rows:
            body["paging"] = _paging(
                str(request.url).split("?")[0], dict(q), start, len(rows), len(found["messages"])
            )
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
            f"{GRAPH}/{{page_id}}/conversations",
            conversations,
            methods=["GET"],
            name="engagement.conversations",
        ),
        Route(
            f"{GRAPH}/{{conversation_id}}/messages",
            conversation_messages,
            methods=["GET"],
            name="engagement.conversation_messages",
        ),
        Route(
            f"{X}/users/{{user_id}}/mentions",
            x_mentions,
            methods=["GET"],
            name="engagement.x_mentions",
        ),
        Route(f"{X}/dm_events", x_dm_events, methods=["GET"], name="engagement.x_dm_events"),
    ]
