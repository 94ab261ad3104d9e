"""Trends and news RSS in their real formats, and the feed faults each refused cleanly."""

from __future__ import annotations

import pytest

from marba_dagster.connectors.http import ApiClient, HttpPolicy, RateLimited
from marba_dagster.connectors.rss import (
    FeedEncodingError,
    FeedRejected,
    InvalidFeed,
    NewsClient,
    TrendsClient,
    parse_news,
    parse_trends,
)
from marba_dagster.sandbox.routes._feeds import BILLION_LAUGHS

TRENDS_ROUTE = "trends.trending_rss"  # the path sandbox_env points MARBA_TRENDS_RSS_URL at

REAL_TRENDS = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<rss xmlns:atom="http://www.w3.org/2005/Atom" \
xmlns:ht="https://trends.google.com/trending/rss" version="2.0">
  <channel>
    <title>Daily Search Trends</title>
    <description>Recent searches</description>
    <link>https://trends.google.com/trending/rss?geo=BD</link>
    <atom:link href="https://trends.google.com/trending/rss?geo=BD" rel="self" \
type="application/rss+xml"/>
    <item>
      <title>madureira vs vasco da gama</title>
      <ht:approx_traffic>200+</ht:approx_traffic>
      <description/>
      <link>https://trends.google.com/trending/rss?geo=BD</link>
      <pubDate>Mon, 2 Feb 2026 17:10:00 -0800</pubDate>
      <ht:picture>https://encrypted-tbn3.gstatic.com/images?q=tbn:x</ht:picture>
      <ht:picture_source>The Playoffs</ht:picture_source>
      <ht:news_item>
        <ht:news_item_title>Fim da 5\xc2\xaa rodada do Campeonato Carioca</ht:news_item_title>
        <ht:news_item_snippet/>
        <ht:news_item_url>https://theplayoffs.news/noticias/a</ht:news_item_url>
        <ht:news_item_picture>https://encrypted-tbn3.gstatic.com/images?q=tbn:x</ht:news_item_picture>
        <ht:news_item_source>The Playoffs</ht:news_item_source>
      </ht:news_item>
      <ht:news_item>
        <ht:news_item_title>Puma perde p\xc3\xaanalti no Vasco</ht:news_item_title>
        <ht:news_item_url>https://onefootball.com/b</ht:news_item_url>
        <ht:news_item_source>OneFootball</ht:news_item_source>
      </ht:news_item>
    </item>
    <item><title></title></item>
  </channel>
</rss>"""

REAL_NEWS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<rss xmlns:media="http://search.yahoo.com/mrss/" version="2.0"><channel>'
    b"<generator>NFE/5.0</generator>"
    b'<title>"coffee" - Google News</title>'
    b"<link>https://news.google.com/search?q=coffee&amp;hl=en-US&amp;gl=US&amp;ceid=US:en</link>"
    b"<language>en-US</language>"
    b"<webMaster>news-webmaster@google.com</webMaster>"
    b"<copyright>2025 Google LLC</copyright>"
    b"<lastBuildDate>Tue, 10 Jun 2025 12:00:00 GMT</lastBuildDate>"
    b"<description>Google News</description>"
    b"<item><title>Coffee prices hit a record - Reuters</title>"
    b"<link>https://news.google.com/rss/articles/CBMiAbc?oc=5</link>"
    b'<guid isPermaLink="false">CBMiAbc</guid>'
    b"<pubDate>Tue, 10 Jun 2025 09:30:00 GMT</pubDate>"
    b"<description>"
    b'&lt;a href="https://news.google.com/rss/articles/CBMiAbc?oc=5" target="_blank"&gt;'
    b"Coffee prices hit a record&lt;/a&gt;&amp;nbsp;&amp;nbsp;"
    b'&lt;font color="#6f6f6f"&gt;Reuters&lt;/font&gt;'
    b"</description>"
    b'<source url="https://www.reuters.com">Reuters</source></item></channel></rss>'
)


def test_parse_real_trends_format():
    feed = parse_trends(REAL_TRENDS, "BD")
    assert feed.title == "Daily Search Trends" and len(feed.items) == 1 and feed.skipped_items == 1
    item = feed.items[0]
    assert item.title == "madureira vs vasco da gama" and item.approx_traffic == "200+"
    assert item.published_at.isoformat() == "2026-02-03T01:10:00+00:00"
    assert [n.source for n in item.news] == ["The Playoffs", "OneFootball"]
    assert item.news[0].title == "Fim da 5ª rodada do Campeonato Carioca"
    # the retired daily feed's namespace URI is read the same way
    old = REAL_TRENDS.replace(
        b'https://trends.google.com/trending/rss"',
        b'https://trends.google.com/trends/trendingsearches/daily"',
    )
    assert parse_trends(old).items[0].approx_traffic == "200+"


def test_parse_real_news_format():
    feed = parse_news(REAL_NEWS, "coffee")
    (item,) = feed.items
    assert item.title == "Coffee prices hit a record" and item.source == "Reuters"
    assert item.source_url == "https://www.reuters.com" and item.guid == "CBMiAbc"
    assert item.published_at.isoformat() == "2025-06-10T09:30:00+00:00"


def test_encodings_declared_or_from_http_are_handled():
    latin = REAL_NEWS.replace(b"UTF-8", b"ISO-8859-1").replace(
        b"Coffee prices", "Café prices".encode("latin-1")
    )
    assert parse_news(latin).items[0].title == "Café prices hit a record"
    # no declared encoding: the HTTP charset decides
    no_decl = REAL_NEWS.replace(b' encoding="UTF-8"', b"").replace(
        b"Coffee prices", "Café prices".encode("latin-1")
    )
    assert (
        parse_news(no_decl, http_charset="iso-8859-1").items[0].title == "Café prices hit a record"
    )
    with pytest.raises(FeedEncodingError, match="declared UTF-8"):
        parse_news(
            REAL_NEWS.replace(b"Coffee prices", "Café prices".encode("latin-1")),
            http_charset="utf-8",
        )


def test_entity_bomb_and_invalid_xml_are_refused():
    with pytest.raises(FeedRejected, match="DTD"):
        parse_trends(BILLION_LAUGHS)
    external = b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss><channel><title>&x;</title></channel></rss>'
    with pytest.raises(FeedRejected):
        parse_news(external)
    with pytest.raises(InvalidFeed, match="invalid XML"):
        parse_news(b"<rss><channel><item><title>a & b</item></channel>")
    with pytest.raises(InvalidFeed, match="expected an RSS document"):
        parse_news(b"<feed><entry/></feed>")
    with pytest.raises(InvalidFeed, match="empty"):
        parse_news(b"  ")


def test_sandbox_feeds_speak_the_real_format(sandbox):
    env = sandbox.env()
    with ApiClient(env["MARBA_TRENDS_RSS_URL"]) as c:
        feed = TrendsClient(c).trending("us")
    assert len(feed.items) == 20 and all(i.approx_traffic.endswith("+") for i in feed.items)
    assert all(i.news and i.published_at for i in feed.items)
    (rec,) = sandbox.requests(TRENDS_ROUTE)
    assert rec["query"] == "geo=US"
    with ApiClient(env["MARBA_NEWS_RSS_URL"]) as c:
        news = NewsClient(c).search('"Oslo" (coffee OR "cold brew") when:2d', "NO")
    assert news.items and all("Oslo" in i.title for i in news.items)
    (rec,) = sandbox.requests("news.search_rss")
    assert "hl=no" in rec["query"] and "ceid=NO%3Ano" in rec["query"]
    with ApiClient(env["MARBA_TRENDS_RSS_URL"]) as c, pytest.raises(ValueError):
        TrendsClient(c).trending("USA")


def test_each_feed_fault_skips_only_its_country(sandbox):
    sandbox.faults.add(TRENDS_ROUTE, "entity_bomb", match="GB")
    sandbox.faults.add(TRENDS_ROUTE, "invalid_xml", match="FR")
    sandbox.faults.add(TRENDS_ROUTE, "wrong_encoding", match="DE")
    sandbox.faults.add(TRENDS_ROUTE, "feed_status", match="JP", status=429, retry_after=0)
    outcome = {}
    with ApiClient(
        sandbox.env()["MARBA_TRENDS_RSS_URL"], policy=HttpPolicy(max_attempts=2, backoff_base=0)
    ) as c:
        for geo in ("GB", "FR", "DE", "JP", "US", "NO"):
            try:
                outcome[geo] = len(TrendsClient(c).trending(geo).items)
            except Exception as exc:  # noqa: BLE001 - the class is what we check
                outcome[geo] = type(exc)
    assert outcome == {
        "GB": FeedRejected,
        "FR": InvalidFeed,
        "DE": FeedEncodingError,
        "JP": RateLimited,
        "US": 20,
        "NO": 20,
    }
    assert (
        sandbox.request_count(TRENDS_ROUTE) == 7
    )  # the 429 was retried once, honouring Retry-After
