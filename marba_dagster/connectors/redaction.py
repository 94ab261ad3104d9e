"""Keeping credentials out of everything the HTTP clients report: URLs with secret query
values replaced, secrets scrubbed from messages and body excerpts.

Every request :class:`~marba_dagster.connectors.http.ApiClient` sends is searched for the
credentials it carries, wherever they are (:func:`secrets_of`: secret headers, query
parameters, form fields and JSON body keys such as Graph's ``access_token`` in a POST form),
and the client scrubs them from any error or excerpt it raises. The values are also
remembered for the life of the process (:func:`remember`, bounded), so :func:`redact`
removes every credential the process has sent from any text, whoever built it: every
``HttpError`` message, excerpt and parsed error body, ``job_logs`` lines, notification texts
and errors, and the stored error columns of the domains go through it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import httpx

__all__ = [
    "EXCERPT_CHARS",
    "REDACTED",
    "excerpt",
    "is_secret_header",
    "is_secret_param",
    "redact",
    "redact_json",
    "redact_url",
    "remember",
    "scrub",
    "secrets_of",
]

EXCERPT_CHARS = 300
REDACTED = "REDACTED"

# Query parameter names whose values are credentials (lower-case).
_SECRET_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "key",
        "access_token",
        "token",
        "refresh_token",
        "id_token",
        "client_secret",
        "secret",
        "password",
        "passwd",
        "pwd",
        "signature",
        "sig",
        "auth",
        "authorization",
        "appsecret_proof",
        "oauth_token",
        "oauth_signature",
        "x-api-key",
        "code",
    }
)
_SECRET_SUFFIXES = ("_token", "_secret", "_key", "_password", "_signature")
# Header names whose values are credentials (lower-case).
_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "x-auth-token",
        "x-access-token",
    }
)


def is_secret_param(name: str) -> bool:
    n = name.lower()
    return n in _SECRET_PARAMS or n.endswith(_SECRET_SUFFIXES)


def is_secret_header(name: str) -> bool:
    n = name.lower()
    return n in _SECRET_HEADERS or n.endswith(("-token", "-secret", "-api-key"))


def redact_url(url: str | httpx.URL) -> str:
    """The URL with user-info removed and credential query values replaced by REDACTED.

    Other parameters are kept byte for byte so the URL stays readable (commas and all).
    """
    text = str(url)
    scheme_sep = text.find("://")
    if scheme_sep != -1:
        rest_start = scheme_sep + 3
        path_start = min(
            (i for i in (text.find(c, rest_start) for c in "/?#") if i != -1), default=len(text)
        )
        authority = text[rest_start:path_start]
        if "@" in authority:
            text = text[:rest_start] + authority.rsplit("@", 1)[1] + text[path_start:]
    base, sep, query = text.partition("?")
    if not sep:
        return text
    query, hsep, fragment = query.partition("#")
    pieces = []
    for piece in query.split("&"):
        name, eq, _value = piece.partition("=")
        if eq and is_secret_param(unquote_plus(name)):
            piece = f"{name}={REDACTED}"
        pieces.append(piece)
    return base + "?" + "&".join(pieces) + (hsep + fragment if hsep else "")


def scrub(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, REDACTED)
    return text


def excerpt(content: bytes, secrets: Iterable[str] = ()) -> str:
    # Scrub before cutting, so a credential at the cut cannot leak half of itself.
    text = scrub(content[: EXCERPT_CHARS * 8].decode("utf-8", errors="replace"), secrets)
    return " ".join(text.split())[:EXCERPT_CHARS]


# ------------------------------------------------------------------------------------------
# The credentials a request carries, and those the process has sent

# Shorter values are not remembered process-wide: scrubbing them everywhere would mangle text.
_MIN_REMEMBERED = 8
_MAX_REMEMBERED = 10_000
_known: OrderedDict[str, None] = OrderedDict()
_known_lock = threading.Lock()


def _variants(value: str) -> set[str]:
    """The spellings a credential takes in URLs, forms and JSON text."""
    out = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    return {v for v in out if v}


def _secret_values(obj: Any, found: set[str], depth: int = 0) -> None:
    """Values under secret-named keys of a JSON body or form (nested up to 10 levels)."""
    if depth > 10:
        return
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if is_secret_param(str(key)) and isinstance(value, str | int) and value != "":
                found.add(str(value))
            else:
                _secret_values(value, found, depth + 1)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _secret_values(item, found, depth + 1)


def secrets_of(
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Iterable[Mapping[str, Any]] = (),
    data: Any = None,
    json_body: Any = None,
) -> tuple[str, ...]:
    """Every credential value a request carries, longest first: secret headers (and the
    token of ``Bearer <token>``), secret query parameters (given or in the URL), secret form
    fields and secret keys anywhere in a JSON body, in every spelling they may be echoed in."""
    found: set[str] = set()
    for hdrs in headers:
        for name, value in (hdrs or {}).items():
            if is_secret_header(str(name)) and value:
                value = str(value)
                found.add(value)
                _scheme, _, token = value.partition(" ")
                if token.strip():
                    found.add(token.strip())
    for name, value in (params or {}).items():
        if is_secret_param(str(name)) and value is not None:
            found.add(str(value))
    query = str(url).partition("?")[2].partition("#")[0]
    for piece in query.split("&"):
        name, eq, value = piece.partition("=")
        if eq and is_secret_param(unquote_plus(name)):
            found.add(value)
            found.add(unquote_plus(value))
    _secret_values(data, found)
    _secret_values(json_body, found)
    spelled = {variant for value in found if len(value) >= 4 for variant in _variants(value)}
    return tuple(sorted((v for v in spelled if len(v) >= 4), key=len, reverse=True))


def remember(secrets: Iterable[str]) -> None:
    """Keep ``secrets`` (from :func:`secrets_of`) for :func:`redact`, the newest 10 000."""
    with _known_lock:
        for secret in secrets:
            if len(secret) < _MIN_REMEMBERED:
                continue
            _known[secret] = None
            _known.move_to_end(secret)
        while len(_known) > _MAX_REMEMBERED:
            _known.popitem(last=False)


def redact(text: Any) -> Any:
    """``text`` without any credential this process has sent (None and non-text unchanged)."""
    if not isinstance(text, str) or not text:
        return text
    with _known_lock:
        if not _known:
            return text
        secrets = sorted(_known, key=len, reverse=True)
    return scrub(text, secrets)


def redact_json(value: Any) -> Any:
    """A JSON-like value with every string :func:`redact`-ed (keys kept)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    return value
