"""Noise learned from the page itself and one identity per product, on pages written here by
hand: none of them is in the benchmark corpus the rules were tuned on, their class names are
on no list, and their noise has other shapes and wordings."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from marba_dagster.core.competitive.changes import (
    Change,
    detect_page_changes,
    merge_product_changes,
)
from marba_dagster.core.competitive.extract import extract_page, learn_page_noise
from marba_dagster.core.competitive.monitoring import signal_row
from marba_dagster.core.competitive.noise import (
    COUNT,
    RANDOM,
    is_random_token,
    mask_counters,
    mask_random_tokens,
)
from marba_dagster.core.competitive.products import merge_representations, name_similarity

URL = "https://rival.example/shop"


def _page(body: str, *, head: str = "", title: str = "Rival Goods") -> str:
    return (
        f'<!doctype html><html lang="en"><head><title>{title}</title>{head}</head>'
        f"<body>{body}</body></html>"
    )


def _changes(loads: list[str], after: str, *, again: str | None = None):
    """What the monitor reports for ``after`` given the first-seen ``loads`` (and, when the
    text changed, a confirmation load ``again``), as the service does it."""
    mask = learn_page_noise(loads)
    previous = extract_page(loads[0], URL, mask).as_row()
    current = extract_page(after, URL, mask).as_row()
    found = detect_page_changes(previous, current, mask=mask)
    if again is not None and any(c.change_type == "website_change" for c in found):
        mask = mask.merge(learn_page_noise([after, again]))
        current = extract_page(after, URL, mask).as_row()
        found = detect_page_changes(previous, current, mask=mask)
    return [c.change_type for c in found], found


STORY = (
    "<main><h1>Handmade ceramics</h1><p>Every mug is thrown on the wheel in our Leeds studio"
    " and glazed by hand.</p><p>We ship across the United Kingdom within three days.</p></main>"
)


# ----------------------------------------------------------------------- generic filters


@pytest.mark.parametrize(
    "token",
    ["rq-9Hx2LmQ7vT", "Z8K2-M4QX-71PA", "a9f03c7be21d", "sid=Kq83nZp02x", "7Gh2Kq9mWx"],
)
def test_random_tokens_of_many_shapes(token):
    assert is_random_token(token)


@pytest.mark.parametrize(
    "token", ["WH-1000XM5", "RTX4090", "iPhone15", "B2B", "COVID-19", "2026", "Leeds", "A4"]
)
def test_model_names_and_words_are_not_random(token):
    assert not is_random_token(token)


def test_random_token_in_visible_text_is_masked():
    assert mask_random_tokens("Trace rq-9Hx2LmQ7vT · v2 node") == f"Trace {RANDOM} · v2 node"


@pytest.mark.parametrize(
    "text",
    [
        "Right now 14 shoppers are looking at this lamp",
        "Hurry, just 2 remaining",
        "1,380 bought this month",
        "Gerade schauen sich 9 Leute diesen Artikel an",
        "Nur 4 Stück verfügbar",
        "Il en reste 3 - 212 clients l'ont acheté",
        "Quedan 6 en existencias",
        "17 personas lo compraron hoy",
    ],
)
def test_live_counters_in_four_languages(text):
    masked = mask_counters(text)
    assert COUNT in masked and not any(ch.isdigit() for ch in masked.replace(COUNT, ""))


def test_prices_years_and_plain_numbers_are_not_counters():
    text = "Pack of 6 glasses for 24,00 € since 1998, 2 year warranty"
    assert mask_counters(text) == text


# --------------------------------------------------------------------- learned noise


def _bar_page(message: str, body: str = STORY, cls: str = "zq-ribbon") -> str:
    return _page(f'<div class="{cls}"><span>{message}</span></div>{body}')


def test_rotating_announcement_bar_under_an_unknown_class_is_learned():
    loads = [
        _bar_page("Autumn edit: new glazes in store now"),
        _bar_page("Members get free engraving on every order"),
        _bar_page("Workshop tickets for December are on sale"),
    ]
    after = _bar_page("Our studio is closed on Monday for stocktaking and deliveries")
    assert _changes(loads, after)[0] == []


def test_a_real_change_next_to_learned_noise_is_still_reported():
    loads = [_bar_page("Autumn edit is here"), _bar_page("Free engraving for members")]
    new_story = STORY.replace(
        "</main>", "<p>From January we also sell kiln-fired stoneware planters.</p></main>"
    )
    kinds, found = _changes(loads, _bar_page("Gift wrap is free this week", new_story))
    assert kinds == ["website_change"]
    assert found[0].details["added"] == ["From January we also sell kiln-fired stoneware planters."]


def test_noise_the_learning_loads_missed_is_learned_from_a_confirmation_load():
    """The bar showed the same message in all learning loads; the confirmation load shows
    it moves by itself, so it is noise and the run reports nothing."""
    same = _bar_page("Autumn edit: new glazes in store now")
    after = _bar_page("Members get free engraving on every single order today")
    again = _bar_page("Workshop tickets for December are on sale from Friday")
    assert _changes([same, same], after)[0] == ["website_change"]  # without confirmation
    assert _changes([same, same], after, again=again)[0] == []


def test_one_changed_token_is_not_a_website_change():
    """A request id the filters do not recognise (short, one word) and no learning."""
    before = _page(STORY + "<footer><p>Ref QX7P2</p></footer>")
    after = _page(STORY + "<footer><p>Ref MZ4K9</p></footer>")
    assert _changes([before], after)[0] == []


def test_reordered_recommendations_are_not_a_change():
    def page(order):
        items = "".join(f"<li>{name}</li>" for name in order)
        return _page(
            STORY + f'<section class="peek-shelf"><h4>Pairs well with</h4><ul>{items}'
            "</ul></section>"
        )

    names = ["Oak coaster set", "Linen napkins", "Stoneware bowl", "Tea towel"]
    assert _changes([page(names)], page(list(reversed(names))))[0] == []


def test_rotating_recommendation_cards_with_prices_are_not_launches():
    def page(items):
        cells = "".join(
            f'<div class="yum-cell"><a href="/p/{n}">{n}</a><b>£{p}.00</b></div>' for n, p in items
        )
        return _page(STORY + f'<aside class="yum-box"><h4>Others also viewed</h4>{cells}</aside>')

    loads = [
        page([("Oak coaster set", 12), ("Linen napkins", 18), ("Tea towel", 9)]),
        page([("Stoneware bowl", 22), ("Oak coaster set", 12), ("Butter dish", 15)]),
        page([("Espresso cups", 28), ("Salt pig", 14), ("Linen napkins", 18)]),
    ]
    after = page([("Cake stand", 35), ("Salad servers", 19), ("Jam jar", 7)])
    assert _changes(loads, after)[0] == []


def test_moving_tokens_in_a_stable_block_become_a_template():
    def page(node, ms):
        return _page(STORY + f"<footer><small>Answered by {node} in {ms} ms</small></footer>")

    loads = [page("fra-7", 38), page("ams-2", 51)]
    mask = learn_page_noise(loads)
    assert list(mask.templates.values()) == [["Answered by", None, "in", None, "ms"]]
    assert _changes(loads, page("lhr-4", 112))[0] == []


def test_generated_class_names_that_change_per_load_do_not_move_the_blocks():
    def page(cls, message):
        return _page(f'<div class="{cls}"><div class="{cls}-x"><p>{message}</p></div>{STORY}</div>')

    loads = [page("jss-qwe", "Sale ends soon"), page("jss-rty", "New arrivals weekly")]
    assert learn_page_noise(loads).class_prefixes == {"jss-"}
    assert _changes(loads, page("jss-uio", "Book a studio visit"))[0] == []


# ------------------------------------------------------------------------- one product


def _plans(prices: dict[str, int], *, extra: str = "", ld_prices: dict | None = None) -> str:
    ld_prices = ld_prices or prices
    graph = [
        {
            "@type": "Product",
            "name": f"Rival {name} Plan (billed annually)",
            "sku": f"rv-{name.lower()}",
            "offers": {"@type": "Offer", "price": str(price), "priceCurrency": "GBP"},
        }
        for name, price in ld_prices.items()
    ]
    cols = "".join(
        f'<div class="mx-col"><h3>{name}</h3><p>£{price} a month</p><p>For teams of all sizes'
        "</p></div>"
        for name, price in prices.items()
    )
    head = f'<script type="application/ld+json">{json.dumps({"@graph": graph})}</script>'
    return _page(f"<h1>Plans</h1><div class='mx-row'>{cols}</div>{extra}", head=head)


def test_card_and_json_ld_under_a_longer_name_are_one_product():
    products = extract_page(_plans({"Solo": 9, "Studio": 29}), URL).as_row()["products"]
    assert [(p["name"], p["sku"], p["price"]) for p in products] == [
        ("Rival Solo Plan (billed annually)", "rv-solo", "9.00"),
        ("Rival Studio Plan (billed annually)", "rv-studio", "29.00"),
    ]
    assert all({s["source"] for s in p["sources"]} == {"json-ld", "text"} for p in products)


def test_a_price_move_in_every_representation_is_one_pricing_change():
    before = _plans({"Solo": 9, "Studio": 29})
    after = _plans({"Solo": 9, "Studio": 35})
    kinds, found = _changes([before], after)
    assert kinds == ["pricing_change"]
    assert (found[0].details["old_price"], found[0].details["new_price"]) == ("29.00", "35.00")


def test_a_price_move_in_one_representation_only_is_still_one_pricing_change():
    before = _plans({"Solo": 9, "Studio": 29})
    after = _plans({"Solo": 9, "Studio": 32}, ld_prices={"Solo": 9, "Studio": 29})
    kinds, found = _changes([before], after)
    assert kinds == ["pricing_change"] and found[0].details["new_price"] == "32.00"


def test_a_new_plan_is_one_launch_and_not_a_website_change():
    kinds, found = _changes(
        [_plans({"Solo": 9, "Studio": 29})], _plans({"Solo": 9, "Studio": 29, "Agency": 79})
    )
    assert kinds == ["product_launch"]
    assert found[0].details["sku"] == "rv-agency"


def test_similar_names_from_one_source_stay_two_products():
    merged = merge_representations(
        [
            {"name": "Kettle", "price": "40.00", "currency": "GBP", "source": "text"},
            {"name": "Kettle Max", "price": "60.00", "currency": "GBP", "source": "text"},
            {"name": "Copper Kettle", "price": "40.00", "currency": "GBP", "source": "json-ld"},
        ]
    )
    assert sorted((p["name"], p["price"]) for p in merged) == [
        ("Copper Kettle", "40.00"),
        ("Kettle Max", "60.00"),
    ]
    assert name_similarity("Kettle", "Copper Kettle") == 1.0


def test_different_skus_are_never_one_product():
    merged = merge_representations(
        [
            {"name": "Desk Lamp", "sku": "L-1", "source": "json-ld"},
            {"name": "Desk Lamp", "sku": "L-2", "source": "microdata"},
        ]
    )
    assert len(merged) == 2


def test_the_same_product_on_two_pages_of_a_competitor_is_one_signal():
    product = {"name": "Studio", "sku": "rv-studio", "price": "35.00", "currency": "GBP"}
    on_home = {"name": "Rival Studio Plan", "price": "35.00", "currency": "GBP"}
    details = {"new_price": "35.00", "currency": "GBP", "old_price": "29.00"}
    found = [
        (
            "https://rival.example/",
            Change("pricing_change", "a", dict(details), 0.5, "price:a", {"product": on_home}),
        ),
        (
            "https://rival.example/pricing",
            Change("pricing_change", "b", dict(details), 0.5, "price:b", {"product": product}),
        ),
        ("https://rival.example/", Change("website_change", "c", {}, 0.3, "website:1")),
    ]
    merged = merge_product_changes(found)
    assert [(url, c.change_type) for url, c in merged] == [
        ("https://rival.example/", "pricing_change"),
        ("https://rival.example/", "website_change"),
    ]
    assert merged[0][1].details["urls"] == [
        "https://rival.example/",
        "https://rival.example/pricing",
    ]
    competitor = {"id": "rival", "name": "Rival"}
    row = signal_row(
        "b1",
        competitor,
        merged[0][0],
        "competitor_site",
        merged[0][1],
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        per_page=False,
    )
    assert row["dedup_key"] == "rival:price:a"


# ----------------------------------------------------------------- stored beside snapshots


def _watch(engine, home: str, pricing: str) -> None:
    from marba_dagster.store import schema
    from marba_dagster.store.db import insert_many

    with engine.begin() as conn:
        insert_many(conn, schema.brands, [{"id": "b1", "name": "B", "industry": "retail"}])
        insert_many(
            conn,
            schema.competitors,
            [
                {
                    "id": "rival",
                    "brand_id": "b1",
                    "name": "Rival",
                    "website_url": home,
                    "watch_urls": [pricing],
                    "feed_url": None,
                }
            ],
        )


def _snapshot_run(db_url, sandbox):
    from marba_dagster.defs.competitive.assets import competitor_snapshots
    from marba_dagster.defs.competitive.resources import SafeFetchSettings
    from marba_dagster.defs.resources import MarbaDatabase

    result = dg.materialize(
        [competitor_snapshots],
        resources={
            "marba_db": MarbaDatabase(url=db_url),
            "safe_fetch": SafeFetchSettings(
                allowed_hosts=sandbox.env()["MARBA_FETCH_ALLOWED_HOSTS"], per_host_interval=0
            ),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    return result.asset_materializations_for_node(competitor_snapshots.op.name)[0].metadata


def _signal_types(engine) -> list[str]:
    from marba_dagster.store import schema

    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.intelligence_signals.c.payload)).all()
    return sorted(row[0]["change_type"] for row in rows)


def test_first_sight_learns_and_stores_the_mask(db_url, engine, sandbox):
    """The sandbox's announcement bar moves on with every load: learned on first sight."""
    from marba_dagster.store import schema

    home, pricing = sandbox.url("/sites/rival"), sandbox.url("/sites/rival/pricing")
    _watch(engine, home, pricing)
    first = _snapshot_run(db_url, sandbox)
    assert first["urls_loaded_again"].value == 4  # two pages, two more loads each
    assert first["pages_noise_learned"].value == 2
    with engine.connect() as conn:
        masks = conn.execute(sa.select(schema.competitive_page_noise)).mappings().all()
        snaps = conn.execute(sa.select(schema.competitive_intelligence_snapshots)).mappings().all()
    assert sorted(m["url"] for m in masks) == sorted([home, pricing])
    assert all(m["loads"] == 3 and m["mask"]["blocks"] for m in masks)
    assert all(s["blocks"] for s in snaps)
    second = _snapshot_run(db_url, sandbox)  # noise only, and the bar moved on again
    assert second["urls_loaded_again"].value == 0 and second["signals"].value == 0


def _with_block(html: str, block: str) -> str:
    return html.replace("<main>", f"<main>{block}", 1)


def test_noise_the_first_loads_missed_is_learned_from_a_confirmation_load(db_url, engine, sandbox):
    from marba_dagster.sandbox.routes.sites import Site, home_page

    home, pricing = sandbox.url("/sites/rival"), sandbox.url("/sites/rival/pricing")
    _watch(engine, home, pricing)
    _snapshot_run(db_url, sandbox)
    flash = '<div class="zz-flash"><p>Flash sale tonight only on every winter coat</p></div>'
    sandbox.faults.add(
        "sites.home",
        "malformed_body",
        times=1,  # this load only: the confirmation load has no flash box
        body=_with_block(home_page(Site("rival", 1), "2026-12-07T10:00:00"), flash),
        content_type="text/html; charset=utf-8",
    )
    second = _snapshot_run(db_url, sandbox)
    assert second["urls_loaded_again"].value == 1 and second["pages_noise_learned"].value == 1
    assert second["signals"].value == 0 and _signal_types(engine) == []


def test_a_real_change_survives_the_confirmation_load(db_url, engine, sandbox):
    from marba_dagster.sandbox.routes.sites import Site, home_page

    home, pricing = sandbox.url("/sites/rival"), sandbox.url("/sites/rival/pricing")
    _watch(engine, home, pricing)
    _snapshot_run(db_url, sandbox)
    news = "<p>We now open a second shop by the harbour with a roastery and a bakery.</p>"
    sandbox.faults.add(
        "sites.home",
        "malformed_body",
        body=_with_block(home_page(Site("rival", 1), "2026-12-07T10:00:00"), news),
        content_type="text/html; charset=utf-8",
    )
    second = _snapshot_run(db_url, sandbox)
    assert second["urls_loaded_again"].value == 1
    assert _signal_types(engine) == ["website_change"]


def test_an_unreadable_stored_mask_or_block_list_is_relearned_not_a_crash():
    from marba_dagster.core.competitive.noise import NoiseMask

    assert not NoiseMask.from_json("not a mask") and not NoiseMask.from_json({"templates": [1]})
    current = extract_page(_page(STORY), URL).as_row()
    previous = dict(current, blocks=[["only-a-key"], 7, None])
    assert detect_page_changes(previous, current) == []
