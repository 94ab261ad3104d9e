"""Publishing to the platforms: Facebook Pages and Instagram (Graph API), X (API v2), Google
Business Profile (API v4).

* Facebook Page post: ``POST /{page-id}/feed`` (``message``, optional ``link``) answers
  ``{"id": "{page-id}_{post-id}"}``; a single image goes through ``POST /{page-id}/photos``
  (``url``, ``message``) which answers ``{"id": photo-id, "post_id": ...}``.
* Instagram: ``POST /{ig-user-id}/media`` creates a container (``image_url`` or
  ``video_url`` + ``media_type=REELS``, ``caption``; carousels from ``is_carousel_item``
  children); video containers are polled (``GET /{container-id}?fields=status_code``) until
  ``FINISHED``; then ``POST /{ig-user-id}/media_publish`` with ``creation_id`` publishes and
  answers ``{"id": media-id}``. Creating a container publishes nothing, so any failure there
  is safe to retry; only ``media_publish`` can leave an unknown outcome.
* X: ``POST /2/tweets`` with ``{"text": ...}`` (and ``"media": {"media_ids": [...]}`` of
  media uploaded first in chunks, ``POST /2/media/upload``) answers ``201 {"data": {"id",
  "text"}}``.
* Google Business Profile: ``POST /accounts/{a}/locations/{l}/localPosts`` with a
  ``LocalPost`` answers the created post (its ``name``).

Each call is made once (``max_attempts=1``): whether to try again is the publisher's
decision, made from :func:`classify_failure`, because re-sending a post the platform may have
applied is how posts get published twice. Access tokens go in the request body (Graph) or
the Authorization header (X), never in a URL, a log line or an error message.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from marba_dagster.connectors.http import (
    ApiClient,
    ClientError,
    ConnectFailed,
    DeadlineExceeded,
    HttpError,
    MalformedResponse,
    RateLimited,
    ResponseTooLarge,
    ServerError,
)
from marba_dagster.connectors.redaction import redact_url
from marba_dagster.core.publishing import (
    X_MEDIA_MAX_BYTES,
    X_MEDIA_TYPES,
    Classified,
    Outcome,
    Transport,
    chunks,
    classify_http,
    classify_transport,
    gbp_local_post,
    multipart,
    x_media_type,
)
from marba_dagster.core.tokens import GRAPH_PLATFORMS, graph_error_code

SUPPORTED_PLATFORMS = ("facebook", "instagram", "x", "google_business")

# The answer headers that say how much of a rate limit is left (X, Graph), and Retry-After.
LIMIT_HEADERS = (
    "retry-after",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
    "x-app-limit-24hour-limit",
    "x-app-limit-24hour-remaining",
    "x-app-limit-24hour-reset",
    "x-app-usage",
    "x-business-use-case-usage",
)


class LimitHeaders:
    """The rate-limit headers of the answers a thread received since its last ``clear()``
    (a publish runs on one thread, so they are that post's), from every client it is
    attached to (``attach``)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def attach(self, client: ApiClient) -> None:
        # httpx calls response hooks on the thread that sent the request, before the body.
        client._client.event_hooks["response"].append(self._record)

    def _record(self, response: httpx.Response) -> None:
        seen = self._seen()
        for name in LIMIT_HEADERS:
            value = response.headers.get(name)
            if value is not None:
                seen[name] = value

    def _seen(self) -> dict[str, str]:
        if not hasattr(self._local, "seen"):
            self._local.seen = {}
        return self._local.seen

    def clear(self) -> None:
        self._local.seen = {}

    def current(self) -> dict[str, str]:
        return dict(self._seen())


@dataclass(frozen=True)
class PostRequest:
    """What to publish, as read from ``scheduled_content`` at claim time."""

    platform: str
    account_id: str  # page id, IG user id or X user id
    access_token: str = field(repr=False)
    body: str
    media_urls: tuple[str, ...] = ()
    format: str = "text"
    options: dict | None = None  # publish_options (Google Business: type, event, offer, CTA)
    # Called right before each request that can publish (never before a harmless step such
    # as an Instagram container): the publisher records "about to send" durably there, and
    # may refuse (raise) when the claim was lost or the run is stopping.
    before_send: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def sending(self) -> None:
        if self.before_send is not None:
            self.before_send()


@dataclass(frozen=True)
class Published:
    external_post_id: str
    steps: tuple[tuple[str, str], ...] = ()  # (step, id) e.g. ("container", "1789...")


class PublishFailed(Exception):
    """A publish attempt that did not produce a post id; ``classified`` says what it means."""

    def __init__(
        self, classified: Classified, *, step: str, steps: tuple[tuple[str, str], ...] = ()
    ):
        super().__init__(f"{step}: {classified.reason}")
        self.classified = classified
        self.step = step
        self.steps = steps


class UnsupportedPost(ValueError):
    """The post cannot be published as it is (e.g. an Instagram post without media)."""


def _x_message(err: HttpError) -> str:
    data = err.error_json
    if isinstance(data, dict):
        parts = [str(data.get(k)) for k in ("title", "detail") if data.get(k)]
        for e in data.get("errors") or []:
            if isinstance(e, dict) and e.get("message"):
                parts.append(str(e["message"]))
        if parts:
            return "; ".join(parts)
    return err.message


def classify_failure(platform: str, err: HttpError, *, harmless: bool = False) -> Classified:
    """What a failed call means for the post: retry, unknown, failed or reconnect.

    ``harmless``: the step creates nothing visible, so even a request that may have been
    applied can be repeated (Instagram containers).
    """
    cause = err.__cause__
    if isinstance(err, ConnectFailed):
        return classify_transport(Transport.CONNECT_FAILED, sent_is_harmless=harmless)
    if isinstance(err, RateLimited):
        return classify_http(
            platform,
            429,
            error_code=graph_error_code(err.error_json),
            message=err.message,
            retry_after=err.retry_after,
            sent_is_harmless=harmless,
        )
    if err.status is not None and err.status >= 400:
        code = graph_error_code(err.error_json) if platform in GRAPH_PLATFORMS else None
        msg = _x_message(err) if platform == "x" else err.message
        return classify_http(
            platform,
            err.status,
            error_code=code,
            message=msg,
            retry_after=err.retry_after,
            sent_is_harmless=harmless,
        )
    if err.status is not None:
        # A success status whose body could not be read whole: the platform applied it.
        return (
            classify_transport(Transport.CONNECTION_LOST, sent_is_harmless=harmless)
            if harmless
            else Classified(
                Outcome.UNKNOWN,
                f"outcome unknown: HTTP {err.status} answered but the body was unreadable "
                f"({err.message})",
            )
        )
    if isinstance(err, DeadlineExceeded):
        if isinstance(cause, httpx.ReadTimeout):
            return classify_transport(Transport.READ_TIMEOUT, sent_is_harmless=harmless)
        if isinstance(cause, httpx.WriteTimeout):
            return classify_transport(Transport.WRITE_FAILED, sent_is_harmless=harmless)
        # No cause: the deadline passed before the request went out (connecting, waiting
        # for the client rate limit).
        return classify_transport(Transport.CONNECT_FAILED, sent_is_harmless=harmless)
    if isinstance(err, ServerError):
        return classify_transport(Transport.CONNECTION_LOST, sent_is_harmless=harmless)
    if isinstance(err, (MalformedResponse, ResponseTooLarge, ClientError)):
        return Classified(Outcome.UNKNOWN, f"outcome unknown: {err.message}")
    return Classified(Outcome.UNKNOWN, f"outcome unknown: {type(err).__name__}: {err.message}")


def _expect_id(data: Any, *path: str) -> str:
    cur = data
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            raise ValueError(f"answer has no {'.'.join(path)}")
        cur = cur[key]
    if not isinstance(cur, (str, int)) or str(cur) == "":
        raise ValueError(f"answer's {'.'.join(path)} is not an id")
    return str(cur)


def _quota_of(answer: Any) -> tuple[int, int, float] | None:
    """``{"data": [{"quota_usage": 2, "config": {"quota_total": 100, "quota_duration":
    86400}}]}`` -> (2, 100, 86400.0); None when the numbers are not there."""
    data = answer.get("data") if isinstance(answer, dict) else None
    first = data[0] if isinstance(data, list) and data else None
    if not isinstance(first, dict):
        return None
    used = first.get("quota_usage")
    config = first.get("config") if isinstance(first.get("config"), dict) else {}
    total, duration = config.get("quota_total"), config.get("quota_duration", 86400)
    if not all(isinstance(v, int) and v >= 0 for v in (used, total)) or not total:
        return None
    return used, total, float(duration) if isinstance(duration, (int, float)) else 86400.0


class GraphPublisher:
    """Facebook Page and Instagram publishing through one Graph API client."""

    def __init__(
        self,
        client: ApiClient,
        *,
        container_poll_seconds: float = 2.0,
        container_poll_max: int = 30,
    ):
        self.client = client
        self.container_poll_seconds = container_poll_seconds
        self.container_poll_max = container_poll_max
        # Instagram account -> (posts published in the window, quota, window seconds).
        self._quota: dict[str, tuple[int, int, float]] = {}
        self._quota_lock = threading.Lock()

    def publish(self, post: PostRequest) -> Published:
        if post.platform == "facebook":
            return self._facebook(post)
        if post.platform == "instagram":
            return self._instagram(post)
        raise UnsupportedPost(f"GraphPublisher cannot publish to {post.platform!r}")

    def _post(
        self,
        post: PostRequest,
        step: str,
        path: str,
        data: dict,
        *,
        harmless: bool,
        steps: tuple = (),
    ) -> Any:
        platform = post.platform
        if not harmless:
            post.sending()
        try:
            resp = self.client.post(path, data=data)
        except HttpError as err:
            raise PublishFailed(
                classify_failure(platform, err, harmless=harmless), step=step, steps=steps
            ) from err
        try:
            return resp.json()
        except MalformedResponse as err:
            outcome = Outcome.RETRY if harmless else Outcome.UNKNOWN
            raise PublishFailed(
                Classified(outcome, f"unreadable answer: {err.message}"), step=step, steps=steps
            ) from err

    def _facebook(self, post: PostRequest) -> Published:
        if len(post.media_urls) > 1:
            raise UnsupportedPost(
                "Facebook posts with several images are not supported; use one image"
            )
        if post.media_urls:
            data = {
                "url": post.media_urls[0],
                "message": post.body,
                "access_token": post.access_token,
            }
            answer = self._post(post, "photos", f"/{post.account_id}/photos", data, harmless=False)
            key = "post_id" if isinstance(answer, dict) and answer.get("post_id") else "id"
        else:
            data = {"message": post.body, "access_token": post.access_token}
            answer = self._post(post, "feed", f"/{post.account_id}/feed", data, harmless=False)
            key = "id"
        try:
            return Published(_expect_id(answer, key))
        except ValueError as exc:
            raise PublishFailed(
                Classified(Outcome.UNKNOWN, f"outcome unknown: {exc}"), step="feed"
            ) from exc

    def _container(self, post: PostRequest, fields: dict, steps: tuple) -> str:
        data = dict(fields, access_token=post.access_token)
        answer = self._post(
            post, "container", f"/{post.account_id}/media", data, harmless=True, steps=steps
        )
        try:
            return _expect_id(answer, "id")
        except ValueError as exc:
            raise PublishFailed(
                Classified(Outcome.RETRY, f"container not created: {exc}"),
                step="container",
                steps=steps,
            ) from exc

    def _wait_finished(self, post: PostRequest, container_id: str, steps: tuple) -> None:
        for _ in range(self.container_poll_max):
            try:
                status = self.client.get_json(
                    f"/{container_id}",
                    params={"fields": "status_code"},
                    headers={"Authorization": f"Bearer {post.access_token}"},
                )
            except HttpError as err:
                raise PublishFailed(
                    classify_failure("instagram", err, harmless=True),
                    step="container_status",
                    steps=steps,
                ) from err
            code = (status or {}).get("status_code") if isinstance(status, dict) else None
            if code in ("FINISHED", "PUBLISHED"):
                return
            if code in ("ERROR", "EXPIRED"):
                raise PublishFailed(
                    Classified(Outcome.FAILED, f"media container {code.lower()}"),
                    step="container_status",
                    steps=steps,
                )
            time.sleep(self.container_poll_seconds)
        raise PublishFailed(
            Classified(Outcome.RETRY, "media container still processing"),
            step="container_status",
            steps=steps,
        )

    def _quota_left(self, post: PostRequest) -> None:
        """Instagram's content publishing limit (``GET /{ig-user-id}/content_publishing_limit``
        ``?fields=quota_usage,config``), asked once per account per publisher and counted
        down as this publisher publishes: a full quota defers the account (nothing sent)."""
        with self._quota_lock:
            known = self._quota.get(post.account_id)
        if known is None:
            try:
                answer = self.client.get_json(
                    f"/{post.account_id}/content_publishing_limit",
                    params={"fields": "quota_usage,config"},
                    headers={"Authorization": f"Bearer {post.access_token}"},
                )
            except HttpError as err:
                c = classify_failure("instagram", err, harmless=True)
                if c.outcome is Outcome.RECONNECT or c.rate_scope is not None:
                    raise PublishFailed(c, step="publishing_limit") from err
                return  # the check could not be made: the platform's own limit decides
            known = _quota_of(answer)
            if known is None:
                return  # an answer without the numbers: the platform's own check decides
            with self._quota_lock:
                known = self._quota.setdefault(post.account_id, known)
        used, total, duration = known
        if used >= total:
            raise PublishFailed(
                Classified(
                    Outcome.RETRY,
                    f"Instagram content publishing limit reached: {used} of {total} posts in "
                    f"{duration / 3600:g}h (content_publishing_limit)",
                    retry_after=duration / 24,
                    rate_scope="account",
                ),
                step="publishing_limit",
            )

    def _count_published(self, post: PostRequest) -> None:
        with self._quota_lock:
            known = self._quota.get(post.account_id)
            if known is not None:
                self._quota[post.account_id] = (known[0] + 1, known[1], known[2])

    def _instagram(self, post: PostRequest) -> Published:
        if not post.media_urls:
            raise UnsupportedPost("Instagram posts need an image or a video (media_urls is empty)")
        self._quota_left(post)
        published = self._instagram_publish(post)
        self._count_published(post)
        return published

    def _instagram_publish(self, post: PostRequest) -> Published:
        steps: tuple[tuple[str, str], ...] = ()
        is_video = post.format in ("video", "reel")
        if len(post.media_urls) > 1:
            children = []
            for url in post.media_urls[:10]:
                kind = "video_url" if url.lower().endswith((".mp4", ".mov")) else "image_url"
                fields = {kind: url, "is_carousel_item": "true"}
                if kind == "video_url":
                    fields["media_type"] = "VIDEO"
                child = self._container(post, fields, steps)
                steps += (("carousel_item", child),)
                children.append(child)
            container = self._container(
                post,
                {"media_type": "CAROUSEL", "children": ",".join(children), "caption": post.body},
                steps,
            )
        elif is_video:
            container = self._container(
                post,
                {"media_type": "REELS", "video_url": post.media_urls[0], "caption": post.body},
                steps,
            )
        else:
            container = self._container(
                post, {"image_url": post.media_urls[0], "caption": post.body}, steps
            )
        steps += (("container", container),)
        if is_video or len(post.media_urls) > 1:
            self._wait_finished(post, container, steps)
        answer = self._post(
            post,
            "media_publish",
            f"/{post.account_id}/media_publish",
            {"creation_id": container, "access_token": post.access_token},
            harmless=False,
            steps=steps,
        )
        try:
            return Published(_expect_id(answer, "id"), steps)
        except ValueError as exc:
            raise PublishFailed(
                Classified(Outcome.UNKNOWN, f"outcome unknown: {exc}"),
                step="media_publish",
                steps=steps,
            ) from exc


class MediaFetcher(Protocol):
    def fetch(self, url: str) -> Any: ...  # a SafeFetcher: .content, .content_type, .truncated


class XPublisher:
    """Posts through X API v2 (``POST /2/tweets``) with the account's OAuth 2.0 user token.

    Media first (``media_urls``): each file is downloaded (``fetcher``: the safe fetcher,
    https or an allowed local host only) and uploaded in chunks to ``POST /2/media/upload``
    (multipart form: ``command=INIT`` with ``media_type``, ``total_bytes`` and
    ``media_category`` answers ``{"data": {"id"}}``; ``APPEND`` with ``media_id``,
    ``segment_index`` and the ``media`` bytes; ``FINALIZE`` answers the media, with
    ``processing_info`` for video and GIFs), polled with ``GET /2/media/upload?command=STATUS``
    until ``succeeded``; then the post with ``{"media": {"media_ids": [...]}}``. Uploads
    publish nothing, so a failure there is retried or fails the post, and the text is never
    posted without its media.
    """

    def __init__(
        self,
        client: ApiClient,
        fetcher: MediaFetcher | None = None,
        *,
        chunk_bytes: int = 1024 * 1024,
        status_polls: int = 30,
        max_poll_wait: float = 5.0,
    ):
        self.client = client
        self.fetcher = fetcher
        self.chunk_bytes = chunk_bytes
        self.status_polls = status_polls
        self.max_poll_wait = max_poll_wait

    def publish(self, post: PostRequest) -> Published:
        if post.platform != "x":
            raise UnsupportedPost(f"XPublisher cannot publish to {post.platform!r}")
        if not post.body.strip() and not post.media_urls:
            raise UnsupportedPost("X posts need text")
        auth = {"Authorization": f"Bearer {post.access_token}", "Accept": "application/json"}
        steps: tuple[tuple[str, str], ...] = ()
        media_ids = []
        for url in post.media_urls:
            media_id = self._upload(url, auth, steps)
            steps += (("media", media_id),)
            media_ids.append(media_id)
        body: dict[str, Any] = {"text": post.body} if post.body.strip() else {}
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        post.sending()
        try:
            resp = self.client.post("/tweets", json=body, headers=auth)
        except HttpError as err:
            raise PublishFailed(classify_failure("x", err), step="tweets", steps=steps) from err
        try:
            return Published(_expect_id(resp.json(), "data", "id"), steps)
        except (MalformedResponse, ValueError) as exc:
            raise PublishFailed(
                Classified(Outcome.UNKNOWN, f"outcome unknown: {exc}"), step="tweets", steps=steps
            ) from exc

    # -- media ---------------------------------------------------------------------------

    def _media_failed(self, reason: str, steps: tuple, *, retry: bool = False) -> PublishFailed:
        outcome = Outcome.RETRY if retry else Outcome.FAILED
        return PublishFailed(Classified(outcome, reason), step="media", steps=steps)

    def _download(self, url: str, steps: tuple) -> tuple[bytes, str, str]:
        if self.fetcher is None:
            raise self._media_failed("X media cannot be fetched: no media fetcher set up", steps)
        try:
            got = self.fetcher.fetch(url)
        except HttpError as err:
            # The media's host refused, is unreachable or said no: nothing was posted.
            transient = isinstance(err, (ConnectFailed, DeadlineExceeded, ServerError))
            raise self._media_failed(
                f"media {redact_url(url)} could not be fetched: {err.message}",
                steps,
                retry=transient,
            ) from err
        kind = x_media_type(getattr(got, "content_type", None), url)
        if kind is None:
            raise self._media_failed(
                f"media {redact_url(url)} is {got.content_type or 'of no type'}, which X does "
                f"not take (images, GIFs, MP4 or MOV video)",
                steps,
            )
        category = X_MEDIA_TYPES[kind]
        limit = X_MEDIA_MAX_BYTES[category]
        if got.truncated or len(got.content) > limit:
            raise self._media_failed(
                f"media {redact_url(url)} is larger than {limit // 2**20} MB ({category})", steps
            )
        if not got.content:
            raise self._media_failed(f"media {redact_url(url)} is empty", steps)
        return got.content, kind, category

    def _command(self, fields: dict, auth: dict, steps: tuple, file: bytes | None = None) -> Any:
        content, ctype = multipart(
            fields, ("media", file, "application/octet-stream") if file is not None else None
        )
        try:
            resp = self.client.post(
                "/media/upload", content=content, headers={**auth, "Content-Type": ctype}
            )
        except HttpError as err:
            c = classify_failure("x", err, harmless=True)
            raise PublishFailed(
                dataclasses.replace(c, reason=f"media {fields['command']}: {c.reason}"),
                step="media",
                steps=steps,
            ) from err
        if resp.status == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except MalformedResponse as err:
            raise self._media_failed(
                f"media {fields['command']}: unreadable answer", steps, retry=True
            ) from err

    def _upload(self, url: str, auth: dict, steps: tuple) -> str:
        content, kind, category = self._download(url, steps)
        init = self._command(
            {
                "command": "INIT",
                "media_type": kind,
                "total_bytes": str(len(content)),
                "media_category": category,
            },
            auth,
            steps,
        )
        try:
            media_id = _expect_id(init, "data", "id")
        except ValueError as exc:
            raise self._media_failed(f"media INIT: {exc}", steps, retry=True) from exc
        for index, (lo, hi) in enumerate(chunks(len(content), self.chunk_bytes)):
            self._command(
                {"command": "APPEND", "media_id": media_id, "segment_index": str(index)},
                auth,
                steps,
                file=content[lo:hi],
            )
        done = self._command({"command": "FINALIZE", "media_id": media_id}, auth, steps)
        info = (
            (done or {}).get("data", {}).get("processing_info") if isinstance(done, dict) else None
        )
        self._wait_processed(media_id, info, auth, steps)
        return media_id

    def _wait_processed(self, media_id: str, info: Any, auth: dict, steps: tuple) -> None:
        for _ in range(self.status_polls):
            if not isinstance(info, dict):
                return  # no processing_info: ready at once (images)
            state = info.get("state")
            if state == "succeeded":
                return
            if state == "failed":
                error = info.get("error") if isinstance(info.get("error"), dict) else {}
                why = error.get("message") or error.get("name") or "no reason given"
                raise self._media_failed(f"X could not process media {media_id}: {why}", steps)
            wait = info.get("check_after_secs", 1)
            wait = float(wait) if isinstance(wait, (int, float)) else 1.0
            time.sleep(min(max(wait, 0.0), self.max_poll_wait))
            try:
                status = self.client.get_json(
                    "/media/upload",
                    params={"command": "STATUS", "media_id": media_id},
                    headers=auth,
                )
            except HttpError as err:
                raise PublishFailed(
                    classify_failure("x", err, harmless=True), step="media_status", steps=steps
                ) from err
            data = status.get("data") if isinstance(status, dict) else None
            info = data.get("processing_info") if isinstance(data, dict) else None
            if info is None:
                return
        raise self._media_failed(f"X media {media_id} still processing", steps, retry=True)


def _google_message(err: HttpError) -> str:
    data = err.error_json
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        e = data["error"]
        parts = [str(e[k]) for k in ("status", "message") if e.get(k)]
        if parts:
            return ": ".join(parts)
    return err.message


class GbpPublisher:
    """Google Business Profile local posts (Business Profile API v4):
    ``POST /accounts/{a}/locations/{l}/localPosts`` with a ``LocalPost`` (``summary``,
    ``topicType`` STANDARD, EVENT or OFFER with its ``event`` and ``offer``,
    ``callToAction``, ``media``), the location's OAuth token (scope ``business.manage``)
    as Bearer. The answer is the created ``LocalPost``: its ``name`` is the post id; a post
    Google answers ``REJECTED`` fails."""

    def __init__(self, client: ApiClient):
        self.client = client

    def publish(self, post: PostRequest) -> Published:
        if post.platform != "google_business":
            raise UnsupportedPost(f"GbpPublisher cannot publish to {post.platform!r}")
        location = post.account_id
        if not location.startswith("accounts/") or "/locations/" not in location:
            raise UnsupportedPost(
                f"a Business Profile location is 'accounts/{{a}}/locations/{{l}}', got "
                f"{location!r}: reconnect the location"
            )
        body = gbp_local_post(post.body, post.media_urls, post.options)
        post.sending()
        try:
            resp = self.client.post(
                f"/{location}/localPosts",
                json=body,
                headers={"Authorization": f"Bearer {post.access_token}"},
            )
        except HttpError as err:
            if err.status is not None and err.status >= 400:
                c = classify_http(
                    "google_business",
                    err.status,
                    message=_google_message(err),
                    retry_after=err.retry_after,
                )
            else:
                c = classify_failure("google_business", err)
            raise PublishFailed(c, step="localPosts") from err
        try:
            answer = resp.json()
            name = _expect_id(answer, "name")
        except (MalformedResponse, ValueError) as exc:
            raise PublishFailed(
                Classified(Outcome.UNKNOWN, f"outcome unknown: {exc}"), step="localPosts"
            ) from exc
        if answer.get("state") == "REJECTED":
            raise PublishFailed(
                Classified(
                    Outcome.FAILED,
                    f"Google rejected the local post {name} (state REJECTED): check its "
                    "content against the Business Profile post policies",
                ),
                step="localPosts",
            )
        return Published(name, (("state", str(answer.get("state") or "")),))
