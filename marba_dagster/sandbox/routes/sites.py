"""Competitor websites for competitive monitoring, under ``/sites``.

Any competitor id gets a site whose content is derived from the id (same id, same site), so
the demo works for whatever competitors were seeded:

* ``GET /sites/{competitor_id}/`` (``sites.page``): home page - title, meta description,
  hero copy, feature headlines, a microdata product and an ad slot.
* ``GET /sites/{competitor_id}/pricing`` (``sites.page``): plans as JSON-LD ``Product``s with
  ``Offer``s and as visible cards; each price also appears spelled a second way
  (``$29.00`` and ``29 USD``).
* ``GET /sites/{competitor_id}/products/{n}`` (``sites.page``): one catalogue page per
  ``n`` (any number): a product in JSON-LD and as a visible card, so a competitor can watch
  hundreds of URLs on one host (politeness tests and benchmarks).
* ``GET /sites/{competitor_id}/feed.xml`` (``sites.feed``): RSS 2.0 of recent posts.

Every response carries fresh noise: the time of the request, a new CSRF token (meta tag
and hidden input), a script nonce, a cache-busting query on assets, a randomly rotated ad
and JSON-LD whose keys come in a random order; the home and pricing pages also show an
announcement bar under a class name no filter knows, whose message moves on with each
request of that page (two loads in a row always differ: noise only learning finds).
**Versions** change the real content:

=====  =====================================================================
1      base site
2      noise only (identical content to 1)
3      a price change: the middle plan costs more
4      3 + a new product
5      4 + a messaging rewrite (title, description, hero and headlines) and a burst of
       posts in the feed (posting frequency well above its own baseline)
=====  =====================================================================

The version is global or per competitor and settable through the state
(``sites_state(state).set_version(...)``) or ``GET|PATCH /_sandbox/sites``
(``{"version": 3}``, ``{"competitors": {"comp-1": 4}}``, ``{"fail": {"comp-2": 404}}`` with
404, 410, 500 or ``"loop"``; ``{"reset": true}``).

Special pages under ``/sites/_special/`` (``sites.special``): ``shift_jis`` and ``cp1251``
(``?declare=header|meta|none``, ``&lang=none`` drops ``<html lang>``), ``big`` (``?mb=50``,
streamed, never held in memory),
``gzip-bomb`` (``?mb=1024`` of zeros sent gzip-encoded, ~1 MB on the wire;
``&encoding=deflate`` or a stack such as ``gzip,gzip``, ``&raw=1`` for deflate without its
zlib wrapper), ``missing``
(404), ``gone`` (410), ``loop`` (a redirect loop), ``redirect?to=URL`` (a 302 to any URL).
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import threading
from datetime import timedelta
from typing import Any
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from marba_dagster.sandbox.compression import compress, parse_encoding
from marba_dagster.sandbox.state import SandboxState

PREFIX = "/sites"
MAX_VERSION = 5

_ADJ = [
    "Bright",
    "Urban",
    "Golden",
    "Nordic",
    "Cedar",
    "Harbor",
    "Summit",
    "Velvet",
    "Copper",
    "Maple",
]
_NOUN = [
    "Table",
    "Works",
    "Studio",
    "Market",
    "Kitchen",
    "Supply",
    "Collective",
    "Lab",
    "House",
    "Garden",
]
_TOPICS = [
    ("sustainable sourcing", "Sustainable sourcing from local farms"),
    ("same-day delivery", "Same-day delivery across the city"),
    ("loyalty rewards", "Loyalty rewards for regulars"),
    ("plant-based menu", "A plant-based menu that changes weekly"),
    ("community workshops", "Community workshops every weekend"),
    ("zero-waste packaging", "Zero-waste packaging on every order"),
    ("gift subscriptions", "Gift subscriptions for every occasion"),
    ("seasonal collections", "Seasonal collections crafted in small batches"),
]
_PLANS = ["Starter", "Classic", "Premium", "Family", "Pro", "Deluxe"]
_CURRENCIES = [("USD", "$", "{sym}{amt}"), ("EUR", "€", "{amt} {sym}"), ("GBP", "£", "{sym}{amt}")]
_ADS = [
    "Try our partner's coffee beans - 20% off this week",
    "Win a weekend getaway with Skyline Hotels",
    "Download the CityRide app and ride free today",
]
_NEW_PRODUCT = "Ultimate"
_ANNOUNCEMENTS = [
    "Free delivery on every order this weekend",
    "Our new loyalty card is here: ask in store",
    "Holiday opening hours: see the store page",
    "Refer a friend and both of you save ten percent",
    "Gift cards now available in any amount",
]


class SitesState:
    """Which version each competitor's site shows, and which competitors fail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = 1
        self.per_competitor: dict[str, int] = {}
        self.fail: dict[str, str] = {}
        self.loads: dict[str, int] = {}

    def announcement(self, path: str) -> str:
        """The announcement of this load of ``path`` (the next one each request)."""
        with self._lock:
            count = self.loads.get(path, 0)
            self.loads[path] = count + 1
        return _ANNOUNCEMENTS[count % len(_ANNOUNCEMENTS)]

    def set_version(self, version: int, competitor_id: str | None = None) -> None:
        version = int(version)
        if not 1 <= version <= MAX_VERSION:
            raise ValueError(f"version must be 1..{MAX_VERSION}")
        with self._lock:
            if competitor_id is None:
                self.version = version
            else:
                self.per_competitor[competitor_id] = version

    def set_failure(self, competitor_id: str, mode: str | int | None) -> None:
        with self._lock:
            if mode is None:
                self.fail.pop(competitor_id, None)
                return
            mode = str(mode)
            if mode not in ("404", "410", "500", "loop"):
                raise ValueError("failure must be 404, 410, 500, loop or null")
            self.fail[competitor_id] = mode

    def version_for(self, competitor_id: str) -> int:
        with self._lock:
            return self.per_competitor.get(competitor_id, self.version)

    def failure_for(self, competitor_id: str) -> str | None:
        with self._lock:
            return self.fail.get(competitor_id)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "version": self.version,
                "competitors": dict(self.per_competitor),
                "fail": dict(self.fail),
            }

    def reset(self) -> None:
        with self._lock:
            self.version = 1
            self.per_competitor.clear()
            self.fail.clear()
            self.loads.clear()


def sites_state(state: SandboxState) -> SitesState:
    return state.module_state("sites", SitesState)


# ------------------------------------------------------------------------- site content


class Site:
    """The deterministic content of one competitor's site at one version."""

    def __init__(self, competitor_id: str, version: int) -> None:
        self.cid = competitor_id
        self.version = version
        seed = int(hashlib.sha256(competitor_id.encode()).hexdigest()[:12], 16)
        rng = random.Random(seed)
        self.name = f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"
        self.currency, self.symbol, self.fmt = rng.choice(_CURRENCIES)
        self.topics = rng.sample(_TOPICS, 3)
        self.new_topics = [t for t in _TOPICS if t not in self.topics][:2]
        plans = rng.sample(_PLANS, 3)
        base = rng.choice([9, 12, 15, 19])
        self.plans = [(plans[0], base), (plans[1], base * 2 + 5), (plans[2], base * 4 + 9)]
        if version >= 3:  # the middle plan costs more
            name, amount = self.plans[1]
            self.plans[1] = (name, amount + 5)
        if version >= 4:
            self.plans.append((_NEW_PRODUCT, base * 8 + 19))
        self.posts_seed = seed

    def money(self, amount: int) -> str:
        return self.fmt.format(sym=self.symbol, amt=f"{amount:.2f}")

    @property
    def tagline(self) -> str:
        if self.version >= 5:
            return f"Premium {self.new_topics[0][0]} for modern professionals"
        return f"Friendly {self.topics[0][0]} for the whole neighbourhood"

    @property
    def description(self) -> str:
        if self.version >= 5:
            return (
                f"{self.name} is now an enterprise-grade platform: "
                f"{self.new_topics[0][1].lower()}, "
                f"{self.new_topics[1][1].lower()} and concierge onboarding for busy teams."
            )
        return (
            f"{self.name} offers {self.topics[0][1].lower()}, {self.topics[1][1].lower()} "
            f"and {self.topics[2][1].lower()}."
        )

    def headlines(self) -> list[str]:
        if self.version >= 5:
            return [t[1] for t in self.new_topics] + ["Concierge onboarding for enterprise teams"]
        return [t[1] for t in self.topics]


def _noise_head(now: str, token: str, nonce: str) -> str:
    return (
        f'<meta name="csrf-token" content="{token}">'
        f'<link rel="stylesheet" href="/static/app.css?v={secrets.token_hex(4)}">'
        f'<script nonce="{nonce}">'
        f'window.__BOOT__={{"ts":"{now}","session":"{secrets.token_hex(12)}"}};</script>'
    )


def _noise_body(now: str, token: str) -> tuple[str, str]:
    ad = random.choice(_ADS)
    top = f'<div class="ad-slot" data-ad-id="{secrets.token_hex(3)}"><a href="https://ads.example/{secrets.token_hex(6)}">{escape(ad)}</a></div>'
    bottom = (
        f'<form action="/subscribe" method="post">'
        f'<input type="hidden" name="csrf_token" value="{token}">'
        f'<input type="email" name="email"></form>'
        f"<footer><p>© Copyright. Last updated {now}</p>"
        f"<p>Page rendered at {now[11:19]} UTC · request id {secrets.token_hex(10)}</p></footer>"
    )
    return top, bottom


def _jsonld(obj: Any) -> str:
    """JSON-LD with keys in a random order each time (reordering is noise)."""

    def shuffle(o: Any) -> Any:
        if isinstance(o, dict):
            items = list(o.items())
            random.shuffle(items)
            return {k: shuffle(v) for k, v in items}
        if isinstance(o, list):
            return [shuffle(v) for v in o]
        return o

    data = json.dumps(shuffle(obj), ensure_ascii=False)
    return f'<script type="application/ld+json">{data}</script>'


def _announcement(text: str | None) -> str:
    return f'<div class="notice-belt"><p>{escape(text)}</p></div>' if text else ""


def home_page(site: Site, now: str, announcement: str | None = None) -> str:
    token, nonce = secrets.token_urlsafe(24), secrets.token_hex(8)
    top, bottom = _noise_body(now, token)
    first_name, first_price = site.plans[0]
    features = "".join(
        f'<section class="feature"><h2>{escape(h)}</h2>'
        f"<p>{escape(site.name)} brings you {escape(h.lower())}.</p></section>"
        for h in site.headlines()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(site.name)} | {escape(site.tagline)}</title>"
        f'<meta name="description" content="{escape(site.description)}">'
        f"{_noise_head(now, token, nonce)}</head><body>{top}{_announcement(announcement)}"
        f'<header class="hero"><h1>{escape(site.tagline)}</h1>'
        f'<p class="hero-lead">{escape(site.description)}</p>'
        f'<img src="/img/hero.jpg?cb={secrets.token_hex(5)}" alt=""></header>'
        f"<main>{features}"
        f'<div itemscope itemtype="https://schema.org/Product" class="featured">'
        f'<h3 itemprop="name">{escape(first_name)}</h3>'
        f'<span itemprop="priceCurrency" content="{site.currency}"></span>'
        f'<span itemprop="price" content="{first_price:.2f}">'
        f"{escape(site.money(first_price))}</span></div>"
        f"</main>{bottom}</body></html>"
    )


def pricing_page(site: Site, now: str, announcement: str | None = None) -> str:
    token, nonce = secrets.token_urlsafe(24), secrets.token_hex(8)
    top, bottom = _noise_body(now, token)
    graph = [
        {
            "@type": "Product",
            "name": name,
            "sku": f"{site.cid}-{name.lower()}",
            "offers": {
                "@type": "Offer",
                "price": f"{amount:.2f}",
                "priceCurrency": site.currency,
                "availability": "https://schema.org/InStock",
            },
        }
        for name, amount in site.plans
    ]
    cards = "".join(
        f'<div class="plan-card"><h3>{escape(name)}</h3>'
        f'<p class="amount">{escape(site.money(amount))} / month</p>'
        f"<p>Everything in {escape(name)} with {escape(site.topics[i % 3][0])}.</p></div>"
        for i, (name, amount) in enumerate(site.plans)
    )
    table = "".join(
        f"<tr><td>{escape(name)}</td><td>{amount} {site.currency}</td></tr>"
        for name, amount in site.plans
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Pricing | {escape(site.name)}</title>"
        f'<meta name="description" content="Plans and prices of {escape(site.name)}.">'
        f"{_noise_head(now, token, nonce)}"
        f"{_jsonld({'@context': 'https://schema.org', '@graph': graph})}</head><body>{top}"
        f"{_announcement(announcement)}"
        f'<h1>Simple pricing for {escape(site.name)}</h1><main class="plans">{cards}</main>'
        f'<table class="compare"><tr><th>Plan</th><th>Monthly</th></tr>{table}</table>'
        f"{bottom}</body></html>"
    )


def product_page(site: Site, number: int, now: str) -> str:
    """Catalogue page ``number``: one product (JSON-LD and a visible card); its price follows
    the site's base plan, so a version's price change moves every catalogue page alike."""
    token, nonce = secrets.token_urlsafe(24), secrets.token_hex(8)
    top, bottom = _noise_body(now, token)
    name = f"{site.name} item {number}"
    amount = site.plans[0][1] + number % 7
    product = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": name,
        "sku": f"{site.cid}-item-{number}",
        "offers": {"@type": "Offer", "price": f"{amount:.2f}", "priceCurrency": site.currency},
    }
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(name)} | {escape(site.name)}</title>"
        f"{_noise_head(now, token, nonce)}{_jsonld(product)}</head><body>{top}"
        f'<div class="product-card"><h1>{escape(name)}</h1>'
        f'<p class="amount">{escape(site.money(amount))}</p>'
        f"<p>{escape(site.topics[number % 3][1])}.</p></div>{bottom}</body></html>"
    )


def feed_posts(site: Site, now) -> list[dict[str, Any]]:
    """Weekly posts for 10 weeks; version 5 adds a burst of posts in the last week."""
    rng = random.Random(site.posts_seed)
    # Anchor to the start of the current day so the feed is stable within a day.
    anchor = now.replace(hour=12, minute=0, second=0, microsecond=0)
    posts = []
    for week in range(10):
        topic = site.topics[week % 3]
        kind = "video" if rng.random() < 0.4 else "article"
        posts.append(
            {
                "id": f"{site.cid}-w{week}",
                "title": f"{topic[1]}: week {10 - week} notes",
                "when": anchor - timedelta(days=7 * week + 2, hours=rng.randint(0, 8)),
                "kind": kind,
                "topic": topic[0],
            }
        )
    if site.version >= 5:
        for i in range(6):
            topic = site.new_topics[i % 2]
            posts.append(
                {
                    "id": f"{site.cid}-burst{i}",
                    "title": f"Launch week: {topic[1]} ({i + 1}/6)",
                    "when": anchor - timedelta(days=i % 6, hours=1 + i),
                    "kind": "video",
                    "topic": topic[0],
                }
            )
    posts.sort(key=lambda p: p["when"], reverse=True)
    return posts


def feed_xml(site: Site, base: str, now) -> str:
    items = []
    for p in feed_posts(site, now):
        link = f"{base}/posts/{p['id']}"
        enclosure = (
            f'<enclosure url="{link}.mp4" type="video/mp4" length="1000"/>'
            if p["kind"] == "video"
            else ""
        )
        items.append(
            f"<item><title>{escape(p['title'])}</title><link>{escape(link)}</link><guid>{escape(link)}</guid>"
            f"<pubDate>{p['when'].strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
            f"<category>{escape(p['topic'])}</category><description>{escape(p['title'])}</description>{enclosure}</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(site.name)} blog</title><link>{escape(base)}/</link>"
        f"<description>News from {escape(site.name)}</description>"
        f"<lastBuildDate>{now.strftime('%a, %d %b %Y %H:%M:%S +0000')}</lastBuildDate>"
        f"{''.join(items)}</channel></rss>"
    )


# ------------------------------------------------------------------------ special pages

_JA = (
    "東京の老舗和菓子店。季節の和菓子と抹茶をお楽しみください。"
    "価格は税込みです。新商品のどら焼きが登場しました。"
)
_RU = (
    "Московская пекарня. Свежий хлеб каждое утро, доставка по городу "
    "и скидки для постоянных клиентов. Новинка сезона!"
)
_BOMB_CACHE: dict[tuple[int, tuple[str, ...], bool], bytes] = {}
_BOMB_LOCK = threading.Lock()


def _encoded_page(text: str, title: str, charset: str, declare: str, lang: str | None) -> Response:
    lang_attr = f' lang="{lang}"' if lang else ""
    meta = f'<meta charset="{charset}">' if declare == "meta" else ""
    html = (
        f"<!doctype html><html{lang_attr}><head>{meta}<title>{title}</title></head>"
        f"<body><h1>{title}</h1>" + f"<p>{text}</p>" * 3 + "</body></html>"
    )
    ctype = f"text/html; charset={charset}" if declare == "header" else "text/html"
    return Response(html.encode(charset), headers={"content-type": ctype})


def _gzip_bomb(mb: int, codings: tuple[str, ...] = ("gzip",), raw_deflate: bool = False) -> bytes:
    key = (mb, codings, raw_deflate)
    with _BOMB_LOCK:
        if key not in _BOMB_CACHE:
            block = b"\0" * (1 << 20)
            blocks = (block for _ in range(mb))
            _BOMB_CACHE[key] = b"".join(compress(blocks, codings, raw_deflate=raw_deflate))
        return _BOMB_CACHE[key]


async def _big(mb: float):
    chunk = (b"<p>" + b"filler text " * 5400 + b"</p>\n")[: 64 * 1024]
    total = int(mb * 1024 * 1024)
    yield b"<!doctype html><html><body>"
    sent = 0
    while sent < total:
        part = chunk[: min(len(chunk), total - sent)]
        sent += len(part)
        yield part


def routes(state: SandboxState) -> list[Route]:
    ss = sites_state(state)

    def failure(cid: str) -> Response | None:
        mode = ss.failure_for(cid)
        if mode is None:
            return None
        if mode == "loop":
            return RedirectResponse(f"{PREFIX}/_special/loop", status_code=302)
        return HTMLResponse(f"<h1>HTTP {mode}</h1>", status_code=int(mode))

    async def page(request: Request) -> Response:
        cid = request.path_params["cid"]
        sub = request.path_params.get("page", "").strip("/")
        failed = failure(cid)
        if failed is not None:
            return failed
        site = Site(cid, ss.version_for(cid))
        now = state.now().isoformat(timespec="seconds")
        if sub in ("", "index.html"):
            return HTMLResponse(home_page(site, now, ss.announcement(request.url.path)))
        if sub == "pricing":
            return HTMLResponse(pricing_page(site, now, ss.announcement(request.url.path)))
        head, _, number = sub.partition("/")
        if head == "products" and number.isdigit():
            return HTMLResponse(product_page(site, int(number), now))
        return HTMLResponse("<h1>Not found</h1>", status_code=404)

    async def feed(request: Request) -> Response:
        cid = request.path_params["cid"]
        failed = failure(cid)
        if failed is not None:
            return failed
        site = Site(cid, ss.version_for(cid))
        base = f"{str(request.base_url).rstrip('/')}{PREFIX}/{cid}"
        return Response(
            feed_xml(site, base, state.now()), media_type="application/rss+xml; charset=utf-8"
        )

    async def special(request: Request) -> Response:
        kind = request.path_params["kind"]
        q = request.query_params
        declare = q.get("declare", "header")
        if declare not in ("header", "meta", "none"):
            return HTMLResponse("declare must be header, meta or none", status_code=400)
        if kind == "shift_jis":
            return _encoded_page(
                _JA, "和菓子の店", "shift_jis", declare, None if q.get("lang") == "none" else "ja"
            )
        if kind == "cp1251":
            return _encoded_page(
                _RU,
                "Пекарня у дома",
                "windows-1251",
                declare,
                None if q.get("lang") == "none" else "ru",
            )
        if kind == "big":
            mb = float(q.get("mb", "50"))
            return StreamingResponse(_big(mb), media_type="text/html")
        if kind == "gzip-bomb":
            mb = max(1, min(4096, int(q.get("mb", "1024"))))
            try:
                codings = parse_encoding(q.get("encoding", "gzip"))
            except ValueError as exc:
                return HTMLResponse(str(exc), status_code=400)
            raw = q.get("raw", "0") in ("1", "true", "yes")
            return Response(
                _gzip_bomb(mb, codings, raw),
                headers={"content-type": "text/html", "content-encoding": ", ".join(codings)},
            )
        if kind == "missing":
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        if kind == "gone":
            return HTMLResponse("<h1>Gone</h1>", status_code=410)
        if kind == "loop":
            return RedirectResponse(f"{PREFIX}/_special/loop-b", status_code=302)
        if kind == "loop-b":
            return RedirectResponse(f"{PREFIX}/_special/loop", status_code=302)
        if kind == "redirect":
            to = q.get("to")
            if not to:
                return HTMLResponse("to= is required", status_code=400)
            return RedirectResponse(to, status_code=int(q.get("status", "302")))
        return HTMLResponse("<h1>Not found</h1>", status_code=404)

    async def control(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                payload = json.loads(await request.body() or b"{}")
                if not isinstance(payload, dict):
                    raise ValueError("body must be a JSON object")
                unknown = set(payload) - {"version", "competitors", "fail", "reset"}
                if unknown:
                    raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
                if payload.get("reset"):
                    ss.reset()
                if "version" in payload:
                    ss.set_version(payload["version"])
                for cid, v in (payload.get("competitors") or {}).items():
                    ss.set_version(v, cid)
                for cid, mode in (payload.get("fail") or {}).items():
                    ss.set_failure(cid, mode)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(ss.as_dict())

    return [
        Route("/_sandbox/sites", control, methods=["GET", "PATCH"], name="sites.control"),
        Route(f"{PREFIX}/_special/{{kind}}", special, methods=["GET"], name="sites.special"),
        Route(f"{PREFIX}/{{cid}}/feed.xml", feed, methods=["GET"], name="sites.feed"),
        Route(f"{PREFIX}/{{cid}}", page, methods=["GET"], name="sites.home"),
        Route(f"{PREFIX}/{{cid}}/{{page:path}}", page, methods=["GET"], name="sites.page"),
    ]
