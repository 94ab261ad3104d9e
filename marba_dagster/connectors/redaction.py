"""Keeping credentials out of everything the HTTP clients report: URLs with secret query
values replaced, secrets scrubbed from messages and body excerpts."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote_plus

import httpx

__all__ = [
    "EXCERPT_CHARS",
    "REDACTED",
    "excerpt",
    "is_secret_header",
    "is_secret_param",
    "redact_url",
    "scrub",
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
