"""X API v2 media upload (``/x/2/media/upload``) and a media host (``/media/...``).

* ``POST /x/2/media/upload`` (route ``x_media.upload``), a ``multipart/form-data`` form with
  the user's Bearer token: ``command=INIT`` (``media_type``, ``total_bytes``,
  ``media_category``) answers ``{"data": {"id", "media_key", "expires_after_secs"}}``;
  ``APPEND`` (``media_id``, ``segment_index``, ``media`` bytes) answers 204; ``FINALIZE``
  (``media_id``) checks the bytes add up and answers ``{"data": {"id", "media_key", "size",
  "expires_after_secs", "processing_info"?}}``, with ``processing_info`` (``state``
  ``pending``, ``check_after_secs``) for ``tweet_video`` and ``tweet_gif``.
* ``GET /x/2/media/upload?command=STATUS&media_id=...`` (route ``x_media.status``):
  ``in_progress`` (with ``progress_percent``) for ``processing_polls`` calls, then
  ``succeeded``, or ``failed`` with an ``error`` when the media was marked to fail
  (``x_media(state).fail_processing``: media types whose processing fails).
* ``POST /x/2/tweets`` accepts ``media.media_ids`` only of media that finished (``x_publish``).
* ``GET /media/{path}`` (route ``media.file``): deterministic bytes for a media URL, the
  type from the extension (``.jpg`` 20 KB ``image/jpeg``, ``.png``, ``.gif``, ``.mp4`` 2.5 MB
  ``video/mp4``; ``.txt`` is ``text/plain``; a path with ``missing`` is 404).

Errors use X's problem shape: 401 for a bad token, 400 for a bad command or parameters.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marba_dagster.sandbox.platform_data import TokenProblem, platform_data

PREFIX = "/x/2"
UPLOAD = "x_media.upload"
STATUS = "x_media.status"
MEDIA = "media.file"
SIZES = {".jpg": 20_000, ".jpeg": 20_000, ".png": 30_000, ".gif": 60_000, ".mp4": 2_500_000}
TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".txt": "text/plain",
}


@dataclass
class Upload:
    account_id: str
    media_type: str
    category: str
    total_bytes: int
    segments: dict[int, int] = field(default_factory=dict)
    finalized: bool = False
    polls: int = 0
    state: str = "pending"  # pending, in_progress, succeeded, failed


class XMedia:
    """Uploads by media id; ``processing_polls`` STATUS answers before a video is ready;
    ``fail_processing``: media types whose processing fails."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self._uploads: dict[str, Upload] = {}
            self._seq = 0
            self.processing_polls = 1
            self.fail_processing: set[str] = set()

    def new(self, upload: Upload) -> str:
        with self._lock:
            self._seq += 1
            media_id = str(1_870_000_000_000_000_000 + self._seq)
            self._uploads[media_id] = upload
            return media_id

    def get(self, media_id: str) -> Upload | None:
        with self._lock:
            return self._uploads.get(media_id)

    def ready(self, media_id: str, account_id: str) -> bool:
        """A finished upload of this account that a post may attach."""
        with self._lock:
            u = self._uploads.get(media_id)
            return bool(u and u.account_id == account_id and u.state == "succeeded")


def x_media(state) -> XMedia:
    return state.module_state("x_media", XMedia)


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"title": title, "detail": detail, "type": "about:blank", "status": status},
        status_code=status,
    )


def parse_multipart(body: bytes, content_type: str) -> dict[str, bytes] | None:
    """The fields of a ``multipart/form-data`` body (file fields as bytes); None if it is
    not one."""
    marker = "boundary="
    if "multipart/form-data" not in content_type or marker not in content_type:
        return None
    boundary = content_type.split(marker, 1)[1].split(";")[0].strip().strip('"').encode()
    out: dict[str, bytes] = {}
    for part in body.split(b"--" + boundary):
        part = part.removeprefix(b"\r\n")
        if not part or part.startswith(b"--"):
            continue
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            return None
        name = None
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            if line.lower().startswith("content-disposition:") and 'name="' in line:
                name = line.split('name="', 1)[1].split('"', 1)[0]
        if name is None:
            return None
        out[name] = value.removesuffix(b"\r\n")
    return out


def media_bytes(path: str) -> tuple[bytes, str] | None:
    """Deterministic content for a sandbox media path, and its type; None if unknown."""
    ext = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ext not in TYPES or "missing" in path:
        return None
    size = SIZES.get(ext, 200)
    seed = hashlib.sha256(path.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size], TYPES[ext]


def routes(state) -> list[Route]:
    data = platform_data(state)
    store = x_media(state)

    def owner_of(request: Request):
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        owner = data.token_owner(("x",), token) if token else None
        if owner is None:
            return None
        try:
            data.authorise(("x",), owner.account_id, token, state.now())
        except TokenProblem:
            return None
        return owner

    async def upload(request: Request):
        owner = owner_of(request)
        if owner is None:
            return _problem(401, "Unauthorized", "Unauthorized")
        fields = parse_multipart(await request.body(), request.headers.get("content-type", ""))
        if fields is None:
            return _problem(400, "Invalid Request", "The request is not multipart/form-data.")
        command = fields.get("command", b"").decode()
        if command == "INIT":
            try:
                total = int(fields["total_bytes"])
                kind = fields["media_type"].decode()
                category = fields.get("media_category", b"tweet_image").decode()
            except (KeyError, ValueError):
                return _problem(400, "Invalid Request", "INIT needs media_type and total_bytes.")
            media_id = store.new(Upload(owner.account_id, kind, category, total))
            return JSONResponse(
                {
                    "data": {
                        "id": media_id,
                        "media_key": f"3_{media_id}",
                        "expires_after_secs": 86400,
                    }
                }
            )
        media_id = fields.get("media_id", b"").decode()
        u = store.get(media_id)
        if u is None or u.account_id != owner.account_id:
            return _problem(400, "Invalid Request", f"media_id {media_id!r} is not known.")
        if command == "APPEND":
            try:
                index = int(fields["segment_index"])
                chunk = fields["media"]
            except (KeyError, ValueError):
                return _problem(400, "Invalid Request", "APPEND needs segment_index and media.")
            u.segments[index] = len(chunk)
            return Response(status_code=204)
        if command == "FINALIZE":
            got = sum(u.segments.values())
            if sorted(u.segments) != list(range(len(u.segments))) or got != u.total_bytes:
                return _problem(
                    400,
                    "Invalid Request",
                    f"File size mismatch: {got} bytes received for {u.total_bytes} declared.",
                )
            u.finalized = True
            answer: dict = {
                "id": media_id,
                "media_key": f"3_{media_id}",
                "size": got,
                "expires_after_secs": 86400,
            }
            if u.category in ("tweet_video", "tweet_gif"):
                u.state = "pending"
                answer["processing_info"] = {"state": "pending", "check_after_secs": 1}
            else:
                u.state = "succeeded"
            return JSONResponse({"data": answer})
        return _problem(400, "Invalid Request", f"Unknown command {command!r}.")

    async def status(request: Request):
        owner = owner_of(request)
        if owner is None:
            return _problem(401, "Unauthorized", "Unauthorized")
        media_id = request.query_params.get("media_id", "")
        u = store.get(media_id)
        if request.query_params.get("command") != "STATUS" or u is None or not u.finalized:
            return _problem(400, "Invalid Request", f"media_id {media_id!r} is not known.")
        u.polls += 1
        if u.state in ("pending", "in_progress"):
            if u.polls > store.processing_polls:
                u.state = "failed" if u.media_type in store.fail_processing else "succeeded"
            else:
                u.state = "in_progress"
        info: dict = {"state": u.state}
        if u.state == "in_progress":
            info.update(check_after_secs=1, progress_percent=50)
        if u.state == "failed":
            info["error"] = {
                "code": 1,
                "name": "InvalidMedia",
                "message": "Your media file could not be processed.",
            }
        return JSONResponse({"data": {"id": media_id, "processing_info": info}})

    async def media_file(request: Request):
        found = media_bytes(request.path_params["path"])
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        content, kind = found
        return Response(content, media_type=kind)

    return [
        Route(f"{PREFIX}/media/upload", upload, methods=["POST"], name=UPLOAD),
        Route(f"{PREFIX}/media/upload", status, methods=["GET"], name=STATUS),
        Route("/media/{path:path}", media_file, methods=["GET"], name=MEDIA),
    ]
