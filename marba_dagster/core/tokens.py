"""When a platform's error answer means it refused the access token itself: the account must
be reconnected by its owner, and no retry can help.

Pure logic (no I/O). One rule for every caller: the read connectors (Graph, X) raise
``TokenRejected`` on it and the publisher marks the post ``reconnect``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GRAPH_PERMISSION_CODES",
    "GRAPH_PLATFORMS",
    "GRAPH_TOKEN_CODES",
    "graph_error_code",
    "is_permission_denial",
    "is_token_rejection",
]

# Graph API error codes (developers.facebook.com/docs/graph-api/guides/error-handling):
# 190 "access token has expired / is invalid", 102 "API session": the login status or
# access token has expired, been revoked or is otherwise invalid.
GRAPH_TOKEN_CODES = frozenset({102, 190})
GRAPH_PLATFORMS = ("facebook", "instagram")
# Graph API "permission" errors: 10 "Application does not have permission for this action",
# 200-299 "Permission error" (e.g. 200 "Requires pages_messaging permission"). The token is
# valid; it only lacks the grant for this one capability.
GRAPH_PERMISSION_CODES = frozenset({10, *range(200, 300)})


def graph_error_code(error_json: Any) -> int | None:
    """``error.code`` of a Graph error body (``{"error": {"code": 190, ...}}``), or None."""
    if isinstance(error_json, dict) and isinstance(error_json.get("error"), dict):
        code = error_json["error"].get("code")
        try:
            return int(code) if code is not None else None
        except (TypeError, ValueError):
            return None
    return None


def is_token_rejection(status: int | None, graph_code: int | None = None) -> bool:
    """HTTP 401 from any platform, or Graph error 190 or 102 whatever the HTTP status.

    Pass ``graph_code`` only for Graph API answers (Facebook, Instagram): other platforms'
    numeric codes mean other things.
    """
    return status == 401 or graph_code in GRAPH_TOKEN_CODES


def is_permission_denial(status: int | None, graph_code: int | None = None) -> bool:
    """The token is valid but was not granted this capability: HTTP 403, or Graph error 10 or
    200-299 whatever the HTTP status. Not a token rejection: the account's other reads work.

    Pass ``graph_code`` only for Graph API answers.
    """
    if is_token_rejection(status, graph_code):
        return False
    return status == 403 or graph_code in GRAPH_PERMISSION_CODES
