"""Google Trends trending-searches RSS and Google News RSS search, parsed safely.

Formats (as the real services send them):

* Trends, ``GET https://trends.google.com/trending/rss?geo=US``: RSS 2.0 with the ``ht``
  namespace (``https://trends.google.com/trending/rss``; the retired daily feed used
  ``https://trends.google.com/trends/trendingsearches/daily``; both are accepted). Each
  ``item`` has ``title`` (the search), ``ht:approx_traffic`` (``"2000+"``), ``pubDate``
  (RFC 822), ``link``, ``ht:picture``, ``ht:picture_source`` and one or more
  ``ht:news_item`` with ``ht:news_item_title``, ``ht:news_item_snippet``,
  ``ht:news_item_url``, ``ht:news_item_picture``, ``ht:news_item_source``.
* News, ``GET https://news.google.com/rss/search?q=...&hl=en-US&gl=US&ceid=US:en``: RSS 2.0
  whose items have ``title`` (``"Headline - Source"``), ``link``, ``guid``
  (``isPermaLink="false"``), ``pubDate``, ``description`` (escaped HTML) and ``source``
  (``url`` attribute, the publisher's name as text).

Safety: XML is parsed with :mod:`defusedxml` and any DTD is refused, so entity-expansion
bombs ("billion laughs", quadratic blowup) and external entities never expand; the body
size is capped by the HTTP client. Encoding: the XML declaration (or BOM) decides, then the
HTTP ``charset``; bytes that are valid in neither are refused with :class:`FeedEncodingError`
rather than guessed (a wrong guess would match keywords on mojibake).
"""

from __future__ import annotations

import codecs
import email.utils
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from defusedxml import ElementTree as SafeET

from marba_dagster.connectors.http import ApiClient, ApiResponse, MalformedResponse

__all__ = [
    "FeedEncodingError",
    "FeedRejected",
    "InvalidFeed",
    "NewsClient",
    "NewsFeed",
    "NewsItem",
    "TrendNewsItem",
    "TrendItem",
    "TrendsClient",
    "TrendsFeed",
    "parse_news",
    "parse_trends",
    "parse_xml",
]

_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']", re.S)
_DECL_ANY = re.compile(rb"^\s*<\?xml[^>]*\?>", re.S)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class InvalidFeed(MalformedResponse):
    """The body is not well-formed XML or not an RSS feed."""


class FeedRejected(InvalidFeed):
    """The XML declares a DTD or entities (an entity-expansion bomb or external entity)."""


class FeedEncodingError(InvalidFeed):
    """The bytes are not valid in the declared encoding nor in the HTTP charset."""


def _error(cls: type[InvalidFeed], message: str, response: ApiResponse | None) -> InvalidFeed:
    if response is None:
        return cls(message)
    return cls(
        message,
        url=response.url,
        status=response.status,
        method=response.method,
        client=response.client,
    )


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = re.search(r"charset\s*=\s*\"?([A-Za-z0-9._\-]+)", content_type, re.I)
    return m.group(1) if m else None


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_xml(
    content: bytes, http_charset: str | None = None, response: ApiResponse | None = None
) -> str:
    """The document as text: BOM, then the XML declaration, then the HTTP charset, then
    UTF-8 (the XML default). Raises FeedEncodingError if none of them decodes the bytes."""
    tried: list[str] = []
    for bom, enc in _BOMS:
        if content.startswith(bom):
            try:
                return content.decode(enc)
            except UnicodeDecodeError:
                raise _error(
                    FeedEncodingError,
                    f"bytes are not valid {enc} despite the byte-order mark",
                    response,
                ) from None
    m = _DECL.match(content)
    candidates = []
    if m:
        declared = m.group(1).decode("ascii")
        if _codec(declared) is None:
            candidates.append(("declared", declared, None))
        else:
            candidates.append(("declared", declared, _codec(declared)))
    if http_charset:
        candidates.append(("HTTP charset", http_charset, _codec(http_charset)))
    if not m:
        candidates.append(("XML default", "utf-8", "utf-8"))
    for label, name, codec in candidates:
        if codec is None:
            tried.append(f"{label} {name} (unknown)")
            continue
        try:
            return content.decode(codec)
        except UnicodeDecodeError as exc:
            tried.append(f"{label} {name} (invalid byte at {exc.start})")
    raise _error(FeedEncodingError, "cannot decode the feed: " + "; ".join(tried), response)


def parse_xml(
    content: bytes, http_charset: str | None = None, response: ApiResponse | None = None
) -> Element:
    """Parse untrusted XML safely; DTDs and entity declarations are refused."""
    if not content.strip():
        raise _error(InvalidFeed, "empty body, expected an RSS feed", response)
    text = decode_xml(content, http_charset, response)
    # Re-encode as UTF-8 with the declaration saying so, so the parser and we agree.
    body = text.lstrip("\ufeff").encode("utf-8")
    body = _DECL_ANY.sub(b'<?xml version="1.0" encoding="utf-8"?>', body, count=1)
    try:
        return SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (
        defusedxml.DTDForbidden,
        defusedxml.EntitiesForbidden,
        defusedxml.ExternalReferenceForbidden,
    ) as exc:
        raise _error(
            FeedRejected,
            f"refused XML with a DTD or entity declarations ({type(exc).__name__})",
            response,
        ) from None
    except ParseError as exc:
        raise _error(InvalidFeed, f"invalid XML: {exc}", response) from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: Element, name: str) -> Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: Element, name: str) -> list[Element]:
    return [c for c in el if _local(c.tag) == name]


def _text(el: Element, name: str) -> str | None:
    c = _child(el, name)
    if c is None or c.text is None:
        return None
    t = c.text.strip()
    return t or None


def parse_date(value: str | None) -> datetime | None:
    """RFC 822 dates of RSS (``Mon, 2 Feb 2026 17:10:00 -0800``) as aware UTC; None if bad."""
    if not value:
        return None
    try:
        d = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.astimezone(timezone.utc)


def _channel(root: Element, response: ApiResponse | None) -> Element:
    if _local(root.tag) != "rss":
        raise _error(InvalidFeed, f"expected an RSS document, got <{_local(root.tag)}>", response)
    channel = _child(root, "channel")
    if channel is None:
        raise _error(InvalidFeed, "RSS document without <channel>", response)
    return channel


# ------------------------------------------------------------------------------ trends


@dataclass(frozen=True)
class TrendNewsItem:
    title: str
    url: str | None
    source: str | None
    snippet: str | None = None


@dataclass(frozen=True)
class TrendItem:
    title: str
    approx_traffic: str | None
    published_at: datetime | None
    link: str | None
    picture: str | None
    news: tuple[TrendNewsItem, ...] = ()


@dataclass
class TrendsFeed:
    geo: str
    title: str | None
    items: list[TrendItem] = field(default_factory=list)
    skipped_items: int = 0


def parse_trends(
    content: bytes,
    geo: str = "",
    http_charset: str | None = None,
    response: ApiResponse | None = None,
) -> TrendsFeed:
    channel = _channel(parse_xml(content, http_charset, response), response)
    feed = TrendsFeed(geo=geo, title=_text(channel, "title"))
    for item in _children(channel, "item"):
        title = _text(item, "title")
        if not title:
            feed.skipped_items += 1
            continue
        news = []
        for n in _children(item, "news_item"):
            nt = _text(n, "news_item_title")
            if nt:
                news.append(
                    TrendNewsItem(
                        nt,
                        _text(n, "news_item_url"),
                        _text(n, "news_item_source"),
                        _text(n, "news_item_snippet"),
                    )
                )
        feed.items.append(
            TrendItem(
                title=title,
                approx_traffic=_text(item, "approx_traffic"),
                published_at=parse_date(_text(item, "pubDate")),
                link=_text(item, "link"),
                picture=_text(item, "picture"),
                news=tuple(news),
            )
        )
    return feed


class TrendsClient:
    """``GET {MARBA_TRENDS_RSS_URL}?geo=XX``: the trending searches of one country."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def trending(self, geo: str) -> TrendsFeed:
        geo = (geo or "").strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", geo):
            raise ValueError(f"geo must be an ISO 3166-1 alpha-2 code, got {geo!r}")
        resp = self.client.get(
            "",
            params={"geo": geo},
            headers={"Accept": "application/rss+xml, application/xml;q=0.9, */*;q=0.5"},
        )
        return parse_trends(resp.content, geo, _charset(resp.headers.get("content-type")), resp)


# -------------------------------------------------------------------------------- news


@dataclass(frozen=True)
class NewsItem:
    title: str
    link: str | None
    guid: str | None
    published_at: datetime | None
    source: str | None
    source_url: str | None
    description: str | None

    @property
    def key(self) -> str:
        return self.guid or self.link or self.title


@dataclass
class NewsFeed:
    query: str
    title: str | None
    items: list[NewsItem] = field(default_factory=list)
    skipped_items: int = 0


def parse_news(
    content: bytes,
    query: str = "",
    http_charset: str | None = None,
    response: ApiResponse | None = None,
) -> NewsFeed:
    channel = _channel(parse_xml(content, http_charset, response), response)
    feed = NewsFeed(query=query, title=_text(channel, "title"))
    for item in _children(channel, "item"):
        title = _text(item, "title")
        if not title:
            feed.skipped_items += 1
            continue
        src_el = _child(item, "source")
        source = src_el.text.strip() if src_el is not None and src_el.text else None
        if source and title.endswith(f" - {source}"):
            title = title[: -len(source) - 3].rstrip()
        feed.items.append(
            NewsItem(
                title=title,
                link=_text(item, "link"),
                guid=_text(item, "guid"),
                published_at=parse_date(_text(item, "pubDate")),
                source=source,
                source_url=src_el.get("url") if src_el is not None else None,
                description=_text(item, "description"),
            )
        )
    return feed


# Edition language per country (Google News ``hl``/``ceid``); English elsewhere.
NEWS_LANGUAGES = {
    "DE": "de",
    "AT": "de",
    "FR": "fr",
    "ES": "es",
    "MX": "es",
    "IT": "it",
    "NL": "nl",
    "NO": "no",
    "JP": "ja",
    "BR": "pt-419",
    "PT": "pt-150",
}


class NewsClient:
    """``GET {MARBA_NEWS_RSS_URL}?q=...&hl=..&gl=..&ceid=..``: Google News search results."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def search(
        self, query: str, country: str | None = None, language: str | None = None
    ) -> NewsFeed:
        if not query or not query.strip():
            raise ValueError("a news search needs a query")
        gl = (country or "US").upper()
        lang = language or NEWS_LANGUAGES.get(gl, "en")
        hl = f"{lang}-{gl}" if lang == "en" else lang
        params = {"q": query, "hl": hl, "gl": gl, "ceid": f"{gl}:{lang}"}
        resp = self.client.get(
            "",
            params=params,
            headers={"Accept": "application/rss+xml, application/xml;q=0.9, */*;q=0.5"},
        )
        return parse_news(resp.content, query, _charset(resp.headers.get("content-type")), resp)
