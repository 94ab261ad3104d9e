"""Shared by the trends and news RSS routes: RSS rendering helpers and the feed faults.

Feed fault kinds (registered for each RSS route; ``match`` limits a fault to requests whose
``geo`` (trends) or ``q`` (news) contains it, case-insensitively; None = every request):

``invalid_xml``     200 with a body that is not well-formed XML
``entity_bomb``     200 with a "billion laughs" entity-expansion document
``wrong_encoding``  200 whose bytes are ISO-8859-1 while the declaration and the HTTP
                    charset both say UTF-8
``feed_status``     status [429] with Retry-After retry_after [0] seconds
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

from starlette.responses import Response

from marba_dagster.sandbox.faults import Fault, FaultRegistry

FEED_FAULT_KINDS = {
    "invalid_xml": {"match": None},
    "entity_bomb": {"match": None},
    "wrong_encoding": {"match": None},
    "feed_status": {"status": 429, "retry_after": 0.0, "match": None},
}
RSS_TYPE = "application/rss+xml; charset=UTF-8"

BILLION_LAUGHS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title></item></channel></rss>
"""
INVALID_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<rss version="2.0"><channel><title>Broken</title>'
    b"<item><title>unclosed & bad</item></channel>"
)


def take_matching(registry: FaultRegistry, route: str, value: str) -> Fault | None:
    """Consume one hit of the first active feed fault of ``route`` whose ``match`` is in
    ``value`` (case-insensitively; a fault without ``match`` matches every request)."""
    needle = (value or "").lower()

    def matches(fault: Fault) -> bool:
        match = fault.params.get("match")
        return match is None or str(match).lower() in needle

    hit = registry.take_first(route, FEED_FAULT_KINDS, predicate=matches)
    return hit[0] if hit else None


def fault_response(fault: Fault, render: Callable[[], str]) -> Response:
    if fault.kind == "invalid_xml":
        return Response(INVALID_XML, media_type=RSS_TYPE)
    if fault.kind == "entity_bomb":
        return Response(BILLION_LAUGHS, media_type=RSS_TYPE)
    if fault.kind == "wrong_encoding":
        text = render()  # declares UTF-8; send ISO-8859-1 bytes instead
        return Response(text.encode("latin-1", errors="replace"), media_type=RSS_TYPE)
    status = int(fault.params.get("status") or 429)
    headers = (
        {"Retry-After": str(int(fault.params.get("retry_after") or 0))} if status == 429 else {}
    )
    return Response(
        f"<html><body>Error {status}</body></html>",
        status_code=status,
        media_type="text/html",
        headers=headers,
    )


def h(key: str, *parts: object) -> int:
    """A stable integer from a key (same inputs, same demo content)."""
    return int.from_bytes(
        hashlib.blake2b(repr((key,) + parts).encode(), digest_size=8).digest(), "big"
    )


def rfc822(when: datetime) -> str:
    return format_datetime(when.astimezone(timezone.utc), usegmt=True)


def x(text: str) -> str:
    return escape(text)


def attr(text: str) -> str:
    return quoteattr(text)
