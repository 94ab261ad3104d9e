"""Pure competitive logic: extraction, noise removal, prices, change detection, gaps."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

from marba_dagster.core.competitive import (
    CompetitorActivity,
    detect_page_changes,
    extract_page,
    find_gaps,
    messaging_shift,
    parse_amount,
    parse_feed,
    posting_frequency_change,
    text_prices,
)
from marba_dagster.sandbox.routes.sites import Site, feed_xml, home_page, pricing_page

NOW = datetime(2025, 6, 18, 12, tzinfo=timezone.utc)


def _snap(html: str) -> dict:
    return extract_page(html, "https://c.example/").as_row()


def test_noise_only_versions_are_identical_snapshots():
    """Timestamps, CSRF tokens, nonces, cache busters, rotated ads and reordered JSON-LD keys
    (random on every render) never change the snapshot."""
    random.seed(3)
    for cid in ("comp-a", "comp-b-2", "x"):
        v1, v2 = Site(cid, 1), Site(cid, 2)
        hashes = {
            (
                _snap(home_page(v, (NOW + timedelta(minutes=i)).isoformat()))["content_hash"],
                _snap(pricing_page(v, (NOW + timedelta(hours=i)).isoformat()))["content_hash"],
            )
            for i, v in enumerate([v1, v2, v1, v2, v2])
        }
        assert len(hashes) == 1, cid
        a = _snap(pricing_page(v1, NOW.isoformat()))
        b = _snap(pricing_page(v2, (NOW + timedelta(days=1)).isoformat()))
        assert detect_page_changes(a, b) == []


def test_real_changes_detected_with_details():
    site = {v: Site("comp-z", v) for v in range(1, 6)}
    p = {v: _snap(pricing_page(site[v], NOW.isoformat())) for v in site}
    h = {v: _snap(home_page(site[v], NOW.isoformat())) for v in site}

    price = detect_page_changes(p[2], p[3])
    assert [c.change_type for c in price] == ["pricing_change"]  # a price move is not a text change
    name, old = Site("comp-z", 1).plans[1]
    d = price[0].details
    assert (
        d["product"] == name
        and d["old_price"] == f"{old:.2f}"
        and d["new_price"] == f"{old + 5:.2f}"
    )
    assert d["currency"] == site[3].currency and d["percent_change"] == round(5 / old * 100, 2)

    launch = [c for c in detect_page_changes(p[3], p[4]) if c.change_type == "product_launch"]
    assert [c.details["product"] for c in launch] == ["Ultimate"]
    assert launch[0].details["price"] == f"{site[4].plans[-1][1]:.2f}"

    assert [c.change_type for c in detect_page_changes(h[4], h[5])] == ["website_change"]
    shift = messaging_shift([h[4]["positioning_text"]] * 3, h[5]["positioning_text"])
    assert shift is not None and shift.details["shift_score"] > 0.35
    assert "premium" in shift.details["terms_gained"] and "friendly" in shift.details["terms_lost"]
    assert messaging_shift([h[1]["positioning_text"]], h[2]["positioning_text"]) is None


def test_first_snapshot_is_a_baseline():
    assert detect_page_changes(None, _snap(pricing_page(Site("c", 1), NOW.isoformat()))) == []


def test_structured_prices_first_and_two_spellings_are_one_price():
    html = (
        "<html><head>\n"
        '    <script type="application/ld+json">'
        '{"@graph":[{"offers":{"priceCurrency":"USD","price":"1299.00","@type":"Offer"},\n'
        '      "name":"Pro Plan","@type":"Product"}]}</script>\n'
        '    <meta property="product:price:amount" content="1299">'
        '<meta property="product:price:currency" content="USD">\n'
        '    </head><body><div class="plan-card"><h3>Pro Plan</h3><p>$1,299.00 per year</p></div>\n'
        "    <p>Or pay USD 1299 once.</p><p>Add-on: 49,50 €</p>"
        "<p>Gift card 5000円</p></body></html>"
    )
    snap = _snap(html)
    assert snap["prices"] == [
        {"amount": "49.50", "currency": "EUR", "source": "text"},
        {"amount": "5000", "currency": "JPY", "source": "text"},
        {"amount": "1299.00", "currency": "USD", "product": "Pro Plan", "source": "json-ld"},
    ]
    # The JSON-LD product and its visible card are one product.
    assert snap["products"] == [
        {
            "name": "Pro Plan",
            "price": "1299.00",
            "currency": "USD",
            "source": "json-ld",
            "sources": [
                {"source": "json-ld", "name": "Pro Plan", "price": "1299.00", "currency": "USD"},
                {"source": "text", "name": "Pro Plan", "price": "1299.00", "currency": "USD"},
            ],
        }
    ]


def test_microdata_and_opengraph_prices():
    html = (
        '<html><head><meta property="og:type" content="product">'
        '<meta property="og:title" content="Mug">\n'
        '    <meta property="og:price:amount" content="12.5">'
        '<meta property="og:price:currency" content="GBP"></head>\n'
        '    <body><div itemscope itemtype="http://schema.org/Product">'
        '<span itemprop="name">Tea Set</span>\n'
        '    <meta itemprop="priceCurrency" content="EUR">'
        '<span itemprop="price" content="39.90">39,90 €</span></div></body></html>'
    )
    snap = _snap(html)
    assert {(p["product"], p["amount"], p["currency"], p["source"]) for p in snap["prices"]} == {
        ("Tea Set", "39.90", "EUR", "microdata"),
        ("Mug", "12.50", "GBP", "opengraph"),
    }


def test_amount_spellings():
    assert parse_amount("1.234,56") == "1234.56"
    assert parse_amount("1,234.56") == "1234.56"
    assert parse_amount("1 234,5") == "1234.50"
    assert parse_amount("19,99") == "19.99"
    assert parse_amount("1,299") == "1299.00"
    assert parse_amount("¥1,200", "JPY") == "1200"
    assert parse_amount("free") is None
    assert [
        (p.currency, p.amount) for p in text_prices("US$ 5 or C$7.25 or 3 500 руб. or £0.99")
    ] == [("USD", "5.00"), ("CAD", "7.25"), ("RUB", "3500.00"), ("GBP", "0.99")]


def test_noise_markers_removed_from_text():
    html = (
        '<html><body><h1>Fresh bread</h1><div class="ad-banner">BUY CRYPTO</div>\n'
        '    <aside data-ad-slot="1">Sponsored thing</aside><p style="display:none">hidden</p>\n'
        "    <p>Updated 2025-06-18T10:11:12Z, 5 minutes ago, "
        "session 9f8e7d6c5b4a39281716 token a1b2c3d4e5f6g7h8i9j0</p>\n"
        "    <script>var t = Date.now()</script><style>.x{}</style>"
        '<input type="hidden" name="csrf" value="zz"></body></html>'
    )
    text = _snap(html)["text"]
    assert text == "Fresh bread"


def test_feed_items_and_posting_frequency():
    base = Site("comp-f", 1)
    items = parse_feed(feed_xml(base, "https://c.example", NOW))
    assert len(items) == 10 and items[0]["published"] > items[-1]["published"]
    assert {i["format"] for i in items} <= {"video", "link"}
    times = [datetime.fromisoformat(i["published"]) for i in items]
    assert posting_frequency_change(times, NOW) is None  # its usual weekly rhythm
    burst = parse_feed(feed_xml(Site("comp-f", 5), "https://c.example", NOW))
    change = posting_frequency_change([datetime.fromisoformat(i["published"]) for i in burst], NOW)
    assert change is not None and change.details["direction"] == "spike"
    assert change.details["recent_posts"] == 7 and change.details["baseline_weekly_rate"] == 1.0
    quiet = [t for t in times if t < NOW - timedelta(days=14)]
    drop = posting_frequency_change(quiet, NOW)
    assert drop is not None and drop.details["direction"] == "drop"


def test_bad_feed_is_an_error():
    try:
        parse_feed("<html><body>not a feed</body></html>")
    except ValueError as exc:
        assert "not a feed" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_gaps_topics_channels_formats():
    comps = [
        CompetitorActivity(
            "c1",
            "One",
            ["Sustainable sourcing from local farms", "Zero-waste packaging everywhere"],
            {"x", "instagram", "tiktok"},
            Counter(video=4, link=2),
        ),
        CompetitorActivity(
            "c2",
            "Two",
            ["Our sustainable sourcing promise", "Espresso classes"],
            {"instagram"},
            Counter(link=5, audio=2),
        ),
    ]
    gaps = find_gaps(
        comps, ["We love espresso classes and latte art"], {"instagram"}, {"image", "text"}
    )
    by_type = {(g.gap_type, g.gap_key): g for g in gaps}
    assert ("topic", "sustainable sourcing") in by_type
    assert by_type[("topic", "sustainable sourcing")].evidence["competitors"] == ["c1", "c2"]
    assert not any(k[1].startswith("espresso") for k in by_type)  # the brand covers it
    assert {k[1] for k in by_type if k[0] == "channel"} == {"x", "tiktok"}
    assert {k[1] for k in by_type if k[0] == "format"} == {"video", "audio"}
    assert all(0 <= g.score <= 1 for g in gaps)
    assert (
        by_type[("topic", "sustainable sourcing")].score > by_type[("channel", "x")].score - 1
    )  # scored
    json.dumps([g.evidence for g in gaps])
