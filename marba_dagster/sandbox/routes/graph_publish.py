"""Graph API publishing routes (Facebook Pages, Instagram content publishing), v21.0 shapes.

* ``POST /graph/v21.0/{page-id}/feed`` (``graph_publish.page_feed``): ``message`` (and/or
  ``link``) -> ``{"id": "{page-id}_{n}"}``.
* ``POST /graph/v21.0/{page-id}/photos`` (``graph_publish.page_photos``): ``url`` and
  ``message`` -> ``{"id": photo-id, "post_id": "{page-id}_{n}"}``.
* ``POST /graph/v21.0/{ig-user-id}/media`` (``graph_publish.ig_media``): a container from
  ``image_url`` / ``video_url`` + ``media_type`` (``REELS``, ``VIDEO``, ``CAROUSEL`` with
  ``children``), ``caption``, ``is_carousel_item`` -> ``{"id": container-id}``. Nothing is
  published yet.
* ``POST /graph/v21.0/{ig-user-id}/media_publish`` (``graph_publish.ig_media_publish``):
  ``creation_id`` -> ``{"id": media-id}``; a container publishes once (again: code 9007
  "media ID is not available"/already published); past the account's content publishing
  limit (``routes._published.PublishLimits``) error 9, subcode 2207042. Page posts carry
  ``X-Business-Use-Case-Usage`` for a Page whose usage a test set (``page_usage``).

Parameters come from the form body or the query string; the token from ``access_token``
(body or query) or an ``Authorization: Bearer`` header. Errors use Graph's shape:
code 190 (HTTP 400) for a bad, revoked or expired token, 100 for missing parameters or an
unknown object, 506 "Duplicate status message" for the same Page text within an hour.
Containers are ``FINISHED`` as soon as they exist; their ``status_code`` is served by
``content_publishing_status.py`` (a module that sorts before the read side's ``graph.py``).

Accepted posts are added to ``sandbox.platform_data`` and to the publish log
(``routes._published``) that tests count on the platform side.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marba_dagster.sandbox.platform_data import TokenProblem, platform_data
from marba_dagster.sandbox.routes._published import (
    Received,
    after_apply,
    publish_limits,
    published_index,
    published_log,
    register_apply_faults,
)
from marba_dagster.sandbox.routes.graph import PREFIX, graph_error, token_error

FEED = "graph_publish.page_feed"
PHOTOS = "graph_publish.page_photos"
IG_MEDIA = "graph_publish.ig_media"
IG_PUBLISH = "graph_publish.ig_media_publish"
DUPLICATE_WINDOW_SECONDS = 3600.0
CONTAINER_ID_REGEX = "1789[0-9]{11}"  # the ids Containers.create hands out

for _name in (FEED, PHOTOS, IG_PUBLISH):
    register_apply_faults(_name)


class Containers:
    """Instagram media containers: id -> (account, caption, media, published media id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, dict] = {}
        self._seq = 0

    def reset(self) -> None:
        with self._lock:
            self._items = {}

    def create(self, account_id: str, caption: str, media: tuple[str, ...], kind: str) -> str:
        with self._lock:
            self._seq += 1
            cid = f"1789{self._seq:011d}"
            self._items[cid] = {
                "account_id": account_id,
                "caption": caption,
                "media": media,
                "kind": kind,
                "published": None,
            }
            return cid

    def get(self, cid: str) -> dict | None:
        with self._lock:
            c = self._items.get(cid)
            return dict(c) if c is not None else None

    def take_for_publish(self, cid: str, account_id: str) -> tuple[dict | None, str | None]:
        """(container, None) to publish, or (None, reason)."""
        with self._lock:
            c = self._items.get(cid)
            if c is None or c["account_id"] != account_id:
                return None, "missing"
            if c["published"] is not None:
                return None, "published"
            c["published"] = "pending"
            return c, None

    def mark_published(self, cid: str, media_id: str) -> None:
        with self._lock:
            self._items[cid]["published"] = media_id


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    if "application/json" in ctype:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        if isinstance(body, dict):
            params.update({k: str(v) for k, v in body.items()})
    else:
        # application/x-www-form-urlencoded (what Graph clients send); parsed by hand because
        # Starlette's form parser needs python-multipart.
        raw = (await request.body()).decode("utf-8", errors="replace")
        params.update({k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()})
    auth = request.headers.get("authorization", "")
    if not params.get("access_token") and auth.lower().startswith("bearer "):
        params["access_token"] = auth[7:].strip()
    return params


def _authorise(state, platform: str, node: str, token: str | None):
    """(account, None) or (None, error response)."""
    try:
        acct = platform_data(state).authorise((platform,), node, token, state.now())
    except TokenProblem as problem:
        return None, token_error(problem)
    if acct is None:
        return None, graph_error(
            f"Unsupported post request. Object with ID '{node}' does not exist, cannot be loaded "
            "due to missing permissions, or does not support this operation.",
            100,
            type_="GraphMethodException",
        )
    return acct, None


def _usage_headers(state, page_id: str) -> dict[str, str]:
    """Graph's ``X-Business-Use-Case-Usage`` for a Page whose usage a test set
    (``PublishLimits.page_usage``: page id -> (percent, minutes to regain access))."""
    usage = publish_limits(state).page_usage.get(page_id)
    if usage is None:
        return {}
    percent, minutes = usage
    entry = {
        "type": "pages",
        "call_count": percent,
        "total_cputime": 1,
        "total_time": 1,
        "estimated_time_to_regain_access": minutes,
    }
    return {"x-business-use-case-usage": json.dumps({page_id: [entry]})}


def routes(state) -> list[Route]:
    data = platform_data(state)
    log = published_log(state)
    containers = state.module_state("graph_containers", Containers)

    def _record(
        platform: str, account_id: str, post_id: str, text: str, media: tuple[str, ...], fmt: str
    ) -> None:
        now = state.now()
        data.add_post(platform, account_id, post_id, now, body=text, format=fmt)
        log.add(Received(platform, account_id, post_id, text, media, now))

    async def page_feed(request: Request):
        node = request.path_params["node"]
        p = await _params(request)
        acct, err = _authorise(state, "facebook", node, p.get("access_token"))
        if err:
            return err
        message, link = p.get("message", ""), p.get("link")
        if not message.strip() and not link:
            return graph_error("(#100) Param message or link is required", 100)
        if message and log.recent_text(
            "facebook", acct.account_id, message, DUPLICATE_WINDOW_SECONDS, state.now()
        ):
            return graph_error("(#506) Duplicate status message", 506, type_="OAuthException")
        post_id = f"{acct.account_id}_{log.next_id()}"
        _record(
            "facebook",
            acct.account_id,
            post_id,
            message,
            (link,) if link else (),
            "link" if link else "text",
        )
        answer = JSONResponse({"id": post_id}, headers=_usage_headers(state, acct.account_id))
        return await after_apply(state, FEED, request, answer)

    async def page_photos(request: Request):
        node = request.path_params["node"]
        p = await _params(request)
        acct, err = _authorise(state, "facebook", node, p.get("access_token"))
        if err:
            return err
        url = p.get("url")
        if not url:
            return graph_error("(#100) Param url or source is required", 100)
        message = p.get("message", "") or p.get("caption", "")
        if message and log.recent_text(
            "facebook", acct.account_id, message, DUPLICATE_WINDOW_SECONDS, state.now()
        ):
            return graph_error("(#506) Duplicate status message", 506)
        n = log.next_id()
        post_id = f"{acct.account_id}_{n}"
        _record("facebook", acct.account_id, post_id, message, (url,), "image")
        return await after_apply(
            state, PHOTOS, request, JSONResponse({"id": f"{n}", "post_id": post_id})
        )

    async def ig_media(request: Request):
        node = request.path_params["node"]
        p = await _params(request)
        acct, err = _authorise(state, "instagram", node, p.get("access_token"))
        if err:
            return err
        media_type = (p.get("media_type") or "").upper()
        if media_type == "CAROUSEL":
            children = tuple(c for c in (p.get("children") or "").split(",") if c)
            if not 2 <= len(children) <= 10:
                return graph_error("(#100) A carousel needs 2 to 10 children", 100)
            cid = containers.create(acct.account_id, p.get("caption", ""), children, "carousel")
        elif media_type in ("REELS", "VIDEO"):
            if not p.get("video_url"):
                return graph_error("(#100) The parameter video_url is required", 100)
            cid = containers.create(
                acct.account_id, p.get("caption", ""), (p["video_url"],), "reel"
            )
        elif p.get("image_url"):
            cid = containers.create(
                acct.account_id, p.get("caption", ""), (p["image_url"],), "image"
            )
        else:
            return graph_error("(#100) The parameter image_url is required", 100)
        return JSONResponse({"id": cid})

    async def ig_media_publish(request: Request):
        node = request.path_params["node"]
        p = await _params(request)
        acct, err = _authorise(state, "instagram", node, p.get("access_token"))
        if err:
            return err
        cid = p.get("creation_id")
        if not cid:
            return graph_error("(#100) The parameter creation_id is required", 100)
        quota = publish_limits(state).ig_quota_total
        day_ago = state.now() - timedelta(days=1)
        if len(log.since("instagram", acct.account_id, day_ago)) >= quota:
            return graph_error(
                "The maximum number of posts that can be published with the Content "
                "Publishing API in 24 hours has been reached",
                9,
                subcode=2207042,
            )
        container, why = containers.take_for_publish(cid, acct.account_id)
        if container is None:
            if why == "published":
                return graph_error(
                    "The media has already been published", 9007, type_="OAuthException"
                )
            return graph_error("Media ID is not available", 9007, type_="OAuthException")
        media_id = f"1790{log.next_id():011d}"
        containers.mark_published(cid, media_id)
        _record(
            "instagram",
            acct.account_id,
            media_id,
            container["caption"],
            container["media"],
            container["kind"],
        )
        return await after_apply(state, IG_PUBLISH, request, JSONResponse({"id": media_id}))

    return [
        Route(f"{PREFIX}/{{node}}/feed", page_feed, methods=["POST"], name=FEED),
        Route(f"{PREFIX}/{{node}}/photos", page_photos, methods=["POST"], name=PHOTOS),
        Route(f"{PREFIX}/{{node}}/media", ig_media, methods=["POST"], name=IG_MEDIA),
        Route(
            f"{PREFIX}/{{node}}/media_publish", ig_media_publish, methods=["POST"], name=IG_PUBLISH
        ),
        Route(
            "/_sandbox/published", published_index(state), methods=["GET"], name="sandbox.published"
        ),
    ]
