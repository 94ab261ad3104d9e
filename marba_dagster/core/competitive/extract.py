"""What a competitor page says, without its noise: text, title, headlines, prices, products.

Pure parsing (lxml), no I/O. Structured data comes first - JSON-LD, microdata, OpenGraph -
then prices written in the visible text; a price is a (currency, amount) pair, so one price
spelled two ways (``$19.99``, ``USD 19.99``) is one price. Everything volatile - scripts,
styles, hidden inputs and CSRF tokens, ad slots, timestamps, cache busters - is removed
before the text is compared, and structured data is canonicalised (sorted keys, sorted
lists) so reordering it changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree

from .noise import (
    Block,
    NoiseMask,
    apply_mask,
    class_tokens,
    collect_blocks,
    element_keys,
    learn_mask,
    stable_classes,
    volatile_class_prefixes,
)
from .products import merge_representations
from .text import collapse, strip_noise

__all__ = [
    "PageSnapshot",
    "Price",
    "Product",
    "canonical_url",
    "content_hash",
    "extract_page",
    "learn_page_noise",
    "parse_amount",
    "text_prices",
]

# Elements whose content is never visible text.
_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "svg",
    "canvas",
    "object",
    "embed",
    "head",
    "link",
    "meta",
    "input",
    "button",
    "select",
    "textarea",
)
# Class/id tokens (or prefixes) that mark ad slots, cookie banners and other rotating boxes.
_NOISE_TOKENS = frozenset(
    {
        "ad",
        "ads",
        "advert",
        "advertisement",
        "adsbygoogle",
        "sponsored",
        "sponsor",
        "promo-rotator",
        "ad-slot",
        "adslot",
        "banner-ad",
        "cookie-banner",
        "cookie-consent",
        "csrf",
        "visually-hidden",
        "sr-only",
        "hidden",
    }
)
_NOISE_PREFIXES = ("ad-", "ads-", "ad_", "advert", "sponsor", "cookie-", "gdpr")
_CACHE_BUSTERS = frozenset(
    {
        "v",
        "ver",
        "version",
        "_",
        "cb",
        "cachebust",
        "cache",
        "ts",
        "t",
        "timestamp",
        "rnd",
        "rand",
        "nocache",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "gclid",
        "fbclid",
        "sid",
        "session",
        "sessionid",
        "phpsessid",
        "jsessionid",
        "csrf",
        "token",
    }
)

_SYMBOLS = {
    "us$": "USD",
    "usd": "USD",
    "c$": "CAD",
    "ca$": "CAD",
    "cad": "CAD",
    "a$": "AUD",
    "au$": "AUD",
    "aud": "AUD",
    "nz$": "NZD",
    "nzd": "NZD",
    "r$": "BRL",
    "brl": "BRL",
    "$": "USD",
    "€": "EUR",
    "eur": "EUR",
    "£": "GBP",
    "gbp": "GBP",
    "¥": "JPY",
    "円": "JPY",
    "jpy": "JPY",
    "₹": "INR",
    "inr": "INR",
    "₽": "RUB",
    "руб": "RUB",
    "руб.": "RUB",
    "rub": "RUB",
    "₩": "KRW",
    "krw": "KRW",
    "chf": "CHF",
    "cny": "CNY",
    "rmb": "CNY",
    "sek": "SEK",
    "nok": "NOK",
    "dkk": "DKK",
    "pln": "PLN",
    "zł": "PLN",
    "mxn": "MXN",
    "zar": "ZAR",
    "sgd": "SGD",
    "hkd": "HKD",
}
_ZERO_DECIMAL = frozenset({"JPY", "KRW"})
_CODES = "USD|EUR|GBP|JPY|CAD|AUD|NZD|BRL|INR|RUB|KRW|CHF|CNY|RMB|SEK|NOK|DKK|PLN|MXN|ZAR|SGD|HKD"
_NUM = r"\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_PRE = rf"US\$|CA?\$|AU?\$|NZ\$|R\$|\$|€|£|¥|₹|₽|₩|(?:{_CODES})(?=[\s\d])"
_POST = rf"€|£|\$|円|руб\.?|₽|zł|(?:{_CODES})\b"
_PRICE_RE = re.compile(
    rf"(?<![\w$])(?P<pre>{_PRE})\s?(?P<n1>{_NUM})(?!\d)|(?<![\w.,])(?P<n2>{_NUM})\s?(?P<post>{_POST})",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Price:
    amount: str  # decimal string, e.g. "19.99"
    currency: str  # ISO 4217
    product: str | None = None
    source: str = "text"  # json-ld | microdata | opengraph | text

    def key(self) -> tuple[str, str]:
        return (self.currency, self.amount)


@dataclass(frozen=True)
class Product:
    name: str
    price: str | None = None
    currency: str | None = None
    sku: str | None = None
    url: str | None = None
    source: str = "text"
    gtin: str | None = None

    @property
    def key(self) -> str:
        return product_key(self.name)


def product_key(name: str) -> str:
    return re.sub(r"[^\w]+", " ", (name or "").lower()).strip()


@dataclass
class PageSnapshot:
    url: str
    title: str | None
    meta_description: str | None
    headlines: list[str]
    hero: list[str]
    prices: list[dict[str, Any]]
    products: list[dict[str, Any]]
    text: str
    positioning_text: str
    content_hash: str
    formats: list[str] = field(default_factory=list)
    blocks: list[list[Any]] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        return {
            "blocks": self.blocks,
            "title": self.title,
            "meta_description": self.meta_description,
            "headlines": self.headlines,
            "prices": self.prices,
            "products": self.products,
            "positioning_text": self.positioning_text,
            "text": self.text,
            "content_hash": self.content_hash,
        }


# ------------------------------------------------------------------------------- helpers


def canonical_url(url: str | None) -> str | None:
    """``url`` without cache busters, tracking and session parameters or a fragment."""
    if not url:
        return url
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _CACHE_BUSTERS
    ]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(sorted(query)), ""))


def parse_amount(raw: Any, currency: str | None = None) -> str | None:
    """A price amount as a normalised decimal string, whatever its spelling; None if not one."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float, Decimal)):
        value = Decimal(str(raw))
    else:
        s = str(raw).strip().replace("\u00a0", " ").replace("\u202f", " ")
        s = re.sub(r"[^\d.,\s]", "", s).strip().replace(" ", "")
        if not s or not re.search(r"\d", s):
            return None
        if "," in s and "." in s:
            dec = "," if s.rfind(",") > s.rfind(".") else "."
            s = s.replace("." if dec == "," else ",", "").replace(dec, ".")
        elif "," in s or "." in s:
            sep = "," if "," in s else "."
            head, _, tail = s.rpartition(sep)
            if s.count(sep) > 1 or (len(tail) == 3 and head and head != "0"):
                s = s.replace(sep, "")  # thousands grouping
            else:
                s = head.replace(sep, "") + "." + tail
        try:
            value = Decimal(s)
        except InvalidOperation:
            return None
    if value < 0 or value > Decimal("100000000"):
        return None
    q = Decimal("1") if currency in _ZERO_DECIMAL else Decimal("0.01")
    return str(value.quantize(q, rounding=ROUND_HALF_UP))


def _currency(symbol: str | None) -> str | None:
    if not symbol:
        return None
    s = symbol.strip().lower()
    if s in _SYMBOLS:
        return _SYMBOLS[s]
    if re.fullmatch(r"[a-z]{3}", s):
        return s.upper()
    return None


def text_prices(text: str, product: str | None = None) -> list[Price]:
    """Every price written in ``text`` (symbol or code before or after the number)."""
    out = []
    for m in _PRICE_RE.finditer(text or ""):
        cur = _currency(m.group("pre") or m.group("post"))
        amount = parse_amount(m.group("n1") or m.group("n2"), cur)
        if cur and amount is not None:
            out.append(Price(amount=amount, currency=cur, product=product, source="text"))
    return out


def mask_prices(text: str) -> str:
    """``text`` with every written price replaced by a placeholder (price moves are
    reported as pricing changes, not as text changes)."""
    return _PRICE_RE.sub(" <price> ", text or "")


def content_hash(text: str, prices: list[dict], products: list[dict]) -> str:
    """The snapshot's identity: its text lines as a multiset (order is not content), prices
    and products."""
    lines = sorted(text.split("\n"))
    blob = json.dumps({"t": lines, "p": prices, "r": products}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _classes(el) -> set[str]:
    tokens = set()
    for attr in ("class", "id"):
        v = el.get(attr)
        if v:
            tokens.update(t.lower() for t in v.split())
    return tokens


def _is_noise(el) -> bool:
    tokens = _classes(el)
    if tokens & _NOISE_TOKENS or any(t.startswith(_NOISE_PREFIXES) for t in tokens):
        return True
    if el.get("hidden") is not None or el.get("aria-hidden") == "true":
        return True
    style = (el.get("style") or "").replace(" ", "").lower()
    if "display:none" in style or "visibility:hidden" in style:
        return True
    if any(k.startswith("data-ad") for k in el.attrib):
        return True
    return (el.get("aria-label") or "").lower() in ("advertisement", "ad", "sponsored")


def _text_of(el) -> str:
    return collapse(" ".join(el.itertext()))


# ------------------------------------------------------------------------ structured data


def _as_list(v: Any) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _types(node: dict) -> set[str]:
    return {str(t).rsplit("/", 1)[-1].lower() for t in _as_list(node.get("@type"))}


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _offer_prices(offers: Any) -> list[tuple[str, str]]:
    out = []
    for offer in _as_list(offers):
        if not isinstance(offer, dict):
            continue
        spec = offer.get("priceSpecification")
        cur = offer.get("priceCurrency") or (
            spec.get("priceCurrency") if isinstance(spec, dict) else None
        )
        raw = offer.get("price")
        if raw is None and isinstance(spec, dict):
            raw = spec.get("price")
        if raw is None:
            raw = offer.get("lowPrice")
        cur = _currency(str(cur)) if cur else None
        amount = parse_amount(raw, cur)
        if cur and amount is not None:
            out.append((amount, cur))
        if "offers" in offer and offer is not offers:
            out.extend(_offer_prices(offer.get("offers")))
    return out


def _jsonld(doc) -> tuple[list[Price], list[Product]]:
    prices: list[Price] = []
    products: list[Product] = []
    for script in doc.xpath('//script[contains(translate(@type,"LDJSON","ldjson"),"ld+json")]'):
        raw = (script.text or "").strip()
        raw = re.sub(r"^\s*(?:<!--|<!\[CDATA\[)|(?:-->|\]\]>)\s*$", "", raw)
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        for node in _walk(data):
            types = _types(node)
            if types & {
                "product",
                "service",
                "softwareapplication",
                "productmodel",
                "individualproduct",
                "menuitem",
            }:
                name = collapse(str(node.get("name") or ""))
                if not name:
                    continue
                offers = _offer_prices(node.get("offers"))
                amount, cur = offers[0] if offers else (None, None)
                products.append(
                    Product(
                        name=name,
                        price=amount,
                        currency=cur,
                        sku=str(node["sku"]) if node.get("sku") else None,
                        url=canonical_url(node.get("url"))
                        if isinstance(node.get("url"), str)
                        else None,
                        source="json-ld",
                        gtin=_gtin(node),
                    )
                )
                for a, c in offers:
                    prices.append(Price(amount=a, currency=c, product=name, source="json-ld"))
            elif types & {"offer", "aggregateoffer"} and isinstance(node.get("itemOffered"), dict):
                name = collapse(str(node["itemOffered"].get("name") or "")) or None
                for a, c in _offer_prices(node):
                    prices.append(Price(amount=a, currency=c, product=name, source="json-ld"))
                    if name:
                        products.append(Product(name=name, price=a, currency=c, source="json-ld"))
    return prices, products


def _gtin(node: dict) -> str | None:
    for key in ("gtin", "gtin13", "gtin12", "gtin14", "gtin8", "mpn"):
        if node.get(key):
            return str(node[key])
    return None


def _prop(scope, name: str) -> str | None:
    for el in scope.xpath(f'.//*[@itemprop="{name}"]'):
        v = el.get("content") or el.get("value") or _text_of(el)
        if v:
            return collapse(v)
    return None


def _link(scope, name: str) -> str | None:
    for el in scope.xpath(f'.//*[@itemprop="{name}"]'):
        v = el.get("href") or el.get("content")
        if v:
            return v
    return None


def _microdata(doc) -> tuple[list[Price], list[Product]]:
    prices: list[Price] = []
    products: list[Product] = []
    for scope in doc.xpath('//*[@itemscope and contains(@itemtype, "schema.org/Product")]'):
        name = _prop(scope, "name")
        cur = _currency(_prop(scope, "priceCurrency"))
        amount = parse_amount(_prop(scope, "price") or _prop(scope, "lowPrice"), cur)
        if name:
            products.append(
                Product(
                    name=name,
                    price=amount if cur else None,
                    currency=cur if amount else None,
                    sku=_prop(scope, "sku"),
                    url=_link(scope, "url"),
                    source="microdata",
                    gtin=_prop(scope, "gtin13") or _prop(scope, "gtin") or _prop(scope, "mpn"),
                )
            )
        if cur and amount is not None:
            prices.append(Price(amount=amount, currency=cur, product=name, source="microdata"))
    return prices, products


def _opengraph(doc) -> tuple[list[Price], list[Product]]:
    meta = {}
    for el in doc.xpath("//meta[@property or @name]"):
        key = (el.get("property") or el.get("name") or "").lower()
        if key and key not in meta:
            meta[key] = el.get("content") or ""
    cur = _currency(meta.get("product:price:currency") or meta.get("og:price:currency"))
    amount = parse_amount(meta.get("product:price:amount") or meta.get("og:price:amount"), cur)
    if not cur or amount is None:
        return [], []
    name = collapse(meta.get("og:title")) or None
    products = (
        [
            Product(
                name=name,
                price=amount,
                currency=cur,
                source="opengraph",
                url=meta.get("og:url") or None,
                sku=meta.get("product:retailer_item_id") or None,
            )
        ]
        if name and meta.get("og:type", "").startswith("product")
        else []
    )
    return [Price(amount=amount, currency=cur, product=name, source="opengraph")], products


# ------------------------------------------------------------------------------ the page

_CARD_TOKENS = ("product", "plan", "pricing-card", "price-card", "tier", "package")
_HERO_TOKENS = (
    "hero",
    "tagline",
    "lead",
    "subtitle",
    "subheading",
    "intro",
    "jumbotron",
    "masthead",
)


def _is_card(el) -> bool:
    return any(
        t == c or t.startswith(c + "-") or t.endswith("-" + c)
        for t in _classes(el)
        for c in _CARD_TOKENS
    )


def _cards(body) -> list[tuple[Any, str, str]]:
    """(element, name, text) of product/plan cards in the visible page: elements whose class
    says so (``product``, ``plan``, ``tier``, ...), then, whatever their class names, items of
    a repeated structure (two or more like siblings) that each show one price and a name."""
    out = []
    for el in body.iter():
        if not isinstance(el.tag, str) or not _is_card(el):
            continue
        heads = el.xpath(
            ".//h1|.//h2|.//h3|.//h4|.//*[contains(@class,'name') or contains(@class,'title')]"
        )
        name = _text_of(heads[0]) if heads else ""
        if name:
            out.append((el, name, _text_of(el)))
    taken = {el for el, _name, _text in out}
    for parent in body.iter():
        if not isinstance(parent.tag, str):
            continue
        children = [c for c in parent if isinstance(c.tag, str)]
        if len(children) < 2:
            continue
        signatures = Counter(f"{c.tag}.{stable_classes(c)}" for c in children)
        for child in children:
            if signatures[f"{child.tag}.{stable_classes(child)}"] < 2:
                continue
            if child in taken or any(a in taken for a in child.iterancestors()):
                continue
            if any(d in taken for d in child.iterdescendants()):
                continue
            text = _text_of(child)
            if len({p.key() for p in text_prices(strip_noise(text))}) != 1:
                continue
            name = _item_name(child)
            if name:
                out.append((child, name, text))
                taken.add(child)
    return out


def _item_name(el) -> str | None:
    """The first piece of an item's text that reads as a name (letters, no price, no digits
    but a model number's, at most eight words)."""
    for piece in el.itertext():
        piece = collapse(piece)
        if not piece or not re.search(r"[^\W\d_]", piece) or len(piece.split()) > 8:
            continue
        if text_prices(piece) or re.fullmatch(r"[\W\d\s]+", piece):
            continue
        return piece
    return None


def _is_hero(el) -> bool:
    return any(any(tok.startswith(h) for h in _HERO_TOKENS) for tok in _classes(el))


def _dedupe_prices(structured: list[Price], text: list[Price]) -> list[Price]:
    """One entry per (currency, amount, product); text prices already known are dropped."""
    seen_keys = {p.key() for p in structured}
    merged: list[Price] = []
    by_key: dict[tuple[str, str], list[Price]] = {}
    for p in structured + [t for t in text if t.key() not in seen_keys]:
        group = by_key.setdefault(p.key(), [])
        if p.product is None and group:
            continue  # the same price already known (with or without a name)
        if any(q.product and p.product and q.product.lower() == p.product.lower() for q in group):
            continue
        if p.product is not None:
            for q in [q for q in group if q.product is None]:
                group.remove(q)
                merged.remove(q)
        group.append(p)
        merged.append(p)
    return sorted(merged, key=lambda p: (p.product or "", p.currency, Decimal(p.amount)))


def _parse(html: str):
    html = re.sub(r"^\s*<\?xml[^>]*\?>", "", html or "")
    try:
        return lxml.html.fromstring(html) if html.strip() else lxml.html.fromstring("<html></html>")
    except (etree.ParserError, ValueError):
        return lxml.html.fromstring("<html></html>")


def _visible_body(doc):
    """The body without what is never shown and what the structural filters know rotates
    (scripts, styles, forms' inputs, hidden elements, ad slots, cookie banners)."""
    body = doc.find("body") if doc.find("body") is not None else doc
    for el in list(body.iter(*_DROP_TAGS)):
        if el.getparent() is not None:
            el.drop_tree()
    for el in [e for e in body.iter() if isinstance(e.tag, str) and e is not body and _is_noise(e)]:
        if el.getparent() is not None:
            el.drop_tree()
    return body


def _blocks(body, keys, cards) -> tuple[list[Block], dict[str, str]]:
    names = {id(el): name for el, name, _text in cards}
    return collect_blocks(body, keys, is_hero=_is_hero, card_of=lambda el: names.get(id(el)))


def learn_page_noise(loads: list[str]) -> NoiseMask:
    """The noise of a page from two or more of its loads taken close together."""
    bodies = [_visible_body(_parse(html)) for html in loads]
    prefixes = volatile_class_prefixes([class_tokens(body) for body in bodies])
    ignore = tuple(sorted(prefixes))
    views = [_blocks(body, element_keys(body, ignore), _cards(body)) for body in bodies]
    mask = learn_mask(views)
    mask.class_prefixes = prefixes
    return mask


def extract_page(html: str, url: str = "", mask: NoiseMask | None = None) -> PageSnapshot:
    """Parse a page into its comparable parts; never raises on odd HTML. With ``mask`` (the
    page's learned noise) the masked blocks are left out (their cards too) and templated
    blocks show their template."""
    doc = _parse(html)

    title_el = doc.xpath("//title")
    title = strip_noise(_text_of(title_el[0])) if title_el else None
    meta_desc = None
    for xp in (
        '//meta[translate(@name,"DESCRIPTION","description")="description"]/@content',
        '//meta[@property="og:description"]/@content',
    ):
        found = doc.xpath(xp)
        if found and collapse(found[0]):
            meta_desc = strip_noise(collapse(found[0]))
            break

    jl_prices, jl_products = _jsonld(doc)
    md_prices, md_products = _microdata(doc)
    og_prices, og_products = _opengraph(doc)
    formats = set()
    if doc.xpath("//video|//iframe[contains(@src,'youtube') or contains(@src,'vimeo')]"):
        formats.add("video")
    if doc.xpath("//audio"):
        formats.add("audio")

    body = _visible_body(doc)
    keys = element_keys(body, mask.ignore if mask else ())
    if mask and mask.blocks:
        for el in [e for e in body.iter() if keys.get(e) in mask.blocks and e is not body]:
            if el.getparent() is not None:
                el.drop_tree()
    cards = _cards(body)
    blocks, _parents = _blocks(body, keys, cards)
    blocks = apply_mask(blocks, mask)

    headlines: list[str] = []
    hero: list[str] = []
    for block in blocks:
        if block.kind == "h" and block.text not in headlines:
            headlines.append(block.text)
        if block.kind == "hero" and block.text not in hero:
            hero.append(block.text)
    text = "\n".join(block.text for block in blocks)

    structured = jl_prices + md_prices + og_prices
    text_found: list[Price] = []
    carded: set[tuple[str, str]] = set()
    card_products: list[Product] = []
    for card_el, name, card_text in cards:
        found = text_prices(strip_noise(card_text), product=name)
        for p in found:
            text_found.append(p)
            carded.add(p.key())
        link = card_el.xpath(".//a/@href")
        card_products.append(
            Product(
                name=name,
                price=found[0].amount if found else None,
                currency=found[0].currency if found else None,
                url=canonical_url(urljoin(url, link[0])) if link and url else None,
                source="text",
            )
        )
    text_found += [p for p in text_prices(text) if p.key() not in carded]
    prices = _dedupe_prices(structured, text_found)

    reps = []
    for p in jl_products + md_products + og_products + card_products:
        row = {k: v for k, v in asdict(p).items() if v is not None}
        if row.get("url") and url:
            row["url"] = canonical_url(urljoin(url, row["url"]))
        reps.append(row)
    product_rows = merge_representations(reps)
    price_rows = [{k: v for k, v in asdict(p).items() if v is not None} for p in prices]
    positioning = " ".join(
        x for x in [title or "", meta_desc or "", *headlines[:12], *hero[:6]] if x
    )
    return PageSnapshot(
        url=url,
        title=title,
        meta_description=meta_desc,
        headlines=headlines[:50],
        hero=hero[:10],
        prices=price_rows,
        products=product_rows,
        text=text,
        positioning_text=collapse(positioning),
        content_hash=content_hash(text, price_rows, product_rows),
        formats=sorted(formats),
        blocks=[block.row() for block in blocks],
    )
