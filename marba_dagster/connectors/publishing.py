"""Publishing to the platforms: Facebook Pages and Instagram (Graph API), X (API v2).

* Facebook Page post: ``POST /{page-id}/feed`` (``message``, optional ``link``) answers
  ``{"id": "{page-id}_{post-id}"}``; a single image goes through ``POST /{page-id}/photos``
  (``url``, ``message``) which answers ``{"id": photo-id, "post_id": ...}``.
* Instagram: ``POST /{ig-user-id}/media`` creates a container (``image_url`` or
  ``video_url`` + ``media_type=REELS``, ``caption``; carousels from ``is_carousel_item``
  children); video containers are polled (``GET /{container-id}?fields=status_code``) until
  ``FINISHED``; then ``POST /{ig-user-id}/media_publish`` with ``creation_id`` publishes and
  answers ``{"id": media-id}``. Creating a container publishes nothing, so any failure there
  is safe to retry; only ``media_publish`` can leave an unknown outcome.
* X: ``POST /2/tweets`` with ``{"text": ...}`` answers ``201 {"data": {"id", "text"}}``.

Each call is made once (``max_attempts=1``): whether to try again is the publisher's
decision, made from :func:`classify_failure`, because re-sending a post the platform may have
applied is how posts get published twice. Access tokens go in the request body (Graph) or
the Authorization header (X), never in a URL, a log line or an error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
from marba_dagster.core.publishing import (
    Classified,
    Outcome,
    Transport,
    classify_http,
    classify_transport,
)
from marba_dagster.core.tokens import GRAPH_PLATFORMS, graph_error_code

SUPPORTED_PLATFORMS = ("facebook", "instagram", "x")


@dataclass(frozen=True)
class PostRequest:
    """What to publish, as read from ``scheduled_content`` at claim time."""

    platform: str
    account_id: str  # page id, IG user id or X user id
    access_token: str = field(repr=False)
    body: str
    media_urls: tuple[str, ...] = ()
    format: str = "text"
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

    def _instagram(self, post: PostRequest) -> Published:
        if not post.media_urls:
            raise UnsupportedPost("Instagram posts need an image or a video (media_urls is empty)")
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


class XPublisher:
    """Posts through X API v2 (``POST /2/tweets``) with the account's OAuth 2.0 user token."""

    def __init__(self, client: ApiClient):
        self.client = client

    def publish(self, post: PostRequest) -> Published:
        if post.platform != "x":
            raise UnsupportedPost(f"XPublisher cannot publish to {post.platform!r}")
        if post.media_urls:
            raise UnsupportedPost(
                "X posts with media are not supported by this publisher (text only)"
            )
        if not post.body.strip():
            raise UnsupportedPost("X posts need text")
        post.sending()
        try:
            resp = self.client.post(
                "/tweets",
                json={"text": post.body},
                headers={
                    "Authorization": f"Bearer {post.access_token}",
                    "Accept": "application/json",
                },
            )
        except HttpError as err:
            raise PublishFailed(classify_failure("x", err), step="tweets") from err
        try:
            return Published(_expect_id(resp.json(), "data", "id"))
        except (MalformedResponse, ValueError) as exc:
            raise PublishFailed(
                Classified(Outcome.UNKNOWN, f"outcome unknown: {exc}"), step="tweets"
            ) from exc
