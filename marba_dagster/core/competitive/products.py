"""One product, one identity: a page's product representations merged, products matched
between snapshots and between pages (pure).

A page may show one product four times: JSON-LD, microdata, Open Graph and a visible card,
not always under the same name ("Pro" on the card, "Acme Pro Plan (monthly)" in JSON-LD).
Representations are one product when they share a SKU or GTIN, the same URL, or a name that
matches (token-set similarity, the rapidfuzz ``token_set_ratio`` idea on
``difflib.SequenceMatcher``: the words both names share against each name's words, so a name
contained in the other scores 1). Two representations from the same source are only merged
on an identical id or name (a source listing two products lists them separately); two with a
different SKU are never one product; matching is one to one, best score first.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "MATCH_THRESHOLD",
    "match_products",
    "merge_representations",
    "name_similarity",
    "names_matching",
    "product_identity",
    "same_product_score",
]

MATCH_THRESHOLD = 0.8
SOURCE_ORDER = ("json-ld", "microdata", "opengraph", "text")
# Words that say what kind of offer it is, not which product.
_GENERIC = frozenset(
    [
        "plan",
        "plans",
        "package",
        "tier",
        "edition",
        "subscription",
        "product",
        "products",
        "the",
        "a",
        "an",
        "and",
        "of",
        "for",
        "with",
        "monthly",
        "yearly",
        "annual",
        "annually",
        "month",
        "year",
        "per",
        "mo",
        "yr",
    ]
)


def _norm_id(value: Any) -> str | None:
    text = re.sub(r"[^0-9a-z]", "", str(value or "").lower())
    return text or None


def _tokens(name: str) -> list[str]:
    words = re.findall(r"[^\W_]+", (name or "").lower())
    kept = [w for w in words if w not in _GENERIC]
    return kept or words


def name_similarity(a: str, b: str) -> float:
    """Token-set similarity of two names, 0..1 (1: one name's words all in the other)."""
    ta, tb = set(_tokens(a)), set(_tokens(b))
    if not ta or not tb:
        return 0.0
    common = " ".join(sorted(ta & tb))
    only_a = " ".join(sorted(ta - tb))
    only_b = " ".join(sorted(tb - ta))
    left = f"{common} {only_a}".strip()
    right = f"{common} {only_b}".strip()

    def ratio(x: str, y: str) -> float:
        return difflib.SequenceMatcher(a=x, b=y, autojunk=False).ratio() if x and y else 0.0

    return max(ratio(common, left), ratio(common, right), ratio(left, right))


def _ids(rep: dict[str, Any]) -> set[str]:
    out = set()
    for field in ("sku", "gtin"):
        for value in rep.get(field + "s") or [rep.get(field)]:
            norm = _norm_id(value)
            if norm:
                out.add(norm)
    return out


def _paths(rep: dict[str, Any]) -> set[str]:
    out = set()
    for url in rep.get("urls") or [rep.get("url")]:
        if url:
            parts = urlsplit(str(url))
            path = parts.path.rstrip("/")
            if path:
                out.add(f"{parts.netloc.lower()}{path}")
    return out


def _names(rep: dict[str, Any]) -> list[str]:
    return list(rep.get("names") or [rep.get("name") or ""])


def _price(rep: dict[str, Any]) -> tuple[str, str] | None:
    if rep.get("price") and rep.get("currency"):
        return (str(rep["price"]), str(rep["currency"]))
    return None


def same_product_score(a: dict[str, Any], b: dict[str, Any]) -> float:
    """How surely two product entries (representations or merged products) are one: 1 for a
    shared SKU/GTIN or URL, 0 for different SKUs, else the best name similarity (less 0.15
    when both show a price in one currency and the prices differ)."""
    ids_a, ids_b = _ids(a), _ids(b)
    if ids_a & ids_b:
        return 1.0
    if ids_a and ids_b:
        return 0.0
    if _paths(a) & _paths(b):
        return 1.0
    score = max(
        (name_similarity(x, y) for x in _names(a) for y in _names(b) if x and y), default=0.0
    )
    pa, pb = _price(a), _price(b)
    if pa and pb and pa[1] == pb[1] and pa[0] != pb[0]:
        score -= 0.15
    return score


def _source_rank(rep: dict[str, Any]) -> int:
    source = rep.get("source") or "text"
    return SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER)


# Name candidates are looked up through the words they share; a word more than this many
# entries share is not used to find candidates (matching stays linear on a big catalogue).
CANDIDATES_PER_WORD = 64


class _Index:
    """Entries by id, URL path and name word, so matching scores a few candidates, not all."""

    def __init__(self) -> None:
        self.by_id: dict[str, list[int]] = {}
        self.by_path: dict[str, list[int]] = {}
        self.by_word: dict[str, list[int]] = {}

    def add(self, position: int, entry: dict[str, Any]) -> None:
        for key in _ids(entry):
            self.by_id.setdefault(key, []).append(position)
        for key in _paths(entry):
            self.by_path.setdefault(key, []).append(position)
        for name in _names(entry):
            for word in set(_tokens(name)):
                self.by_word.setdefault(word, []).append(position)

    def candidates(self, entry: dict[str, Any]) -> list[int]:
        found: dict[int, None] = {}
        for key in _ids(entry):
            found.update(dict.fromkeys(self.by_id.get(key, [])))
        for key in _paths(entry):
            found.update(dict.fromkeys(self.by_path.get(key, [])))
        for word in {w for name in _names(entry) for w in _tokens(name)}:
            positions = self.by_word.get(word, [])
            if len(positions) <= CANDIDATES_PER_WORD:  # a word most names share tells nothing
                found.update(dict.fromkeys(positions))
        return list(found)


def merge_representations(reps: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per product from its representations (dicts with name, price, currency,
    sku, gtin, url, source). The merged entry takes its name, price and ids from the most
    structured source that has them; ``sources`` lists every representation's
    (source, name, price, currency)."""
    groups: list[list[dict[str, Any]]] = []
    index = _Index()
    for rep in sorted(reps, key=_source_rank):
        if not rep.get("name"):
            continue
        best, best_score = None, 0.0
        for position in index.candidates(rep):
            group = groups[position]
            same_source = [r for r in group if r.get("source") == rep.get("source")]
            if same_source:
                exact = any(
                    (_ids(r) & _ids(rep))
                    or (r["name"].strip().lower() == rep["name"].strip().lower())
                    for r in same_source
                )
                score = 1.0 if exact else 0.0
            else:
                score = max(same_product_score(r, rep) for r in group)
            if score > best_score:
                best, best_score = position, score
        if best is not None and best_score >= MATCH_THRESHOLD:
            groups[best].append(rep)
            index.add(best, rep)
        else:
            groups.append([rep])
            index.add(len(groups) - 1, rep)
    return sorted((_merged(group) for group in groups), key=lambda p: p["name"].lower())


def _merged(group: list[dict[str, Any]]) -> dict[str, Any]:
    def first(field: str) -> Any:
        return next((r[field] for r in group if r.get(field)), None)

    priced = next((r for r in group if r.get("price") and r.get("currency")), None)
    out: dict[str, Any] = {
        "name": group[0]["name"],
        "price": priced["price"] if priced else None,
        "currency": priced["currency"] if priced else None,
        "sku": first("sku"),
        "gtin": first("gtin"),
        "url": first("url"),
        "source": group[0].get("source") or "text",
    }
    out = {k: v for k, v in out.items() if v is not None}
    names = sorted({r["name"] for r in group} - {out["name"]})
    if names:
        out["names"] = [out["name"], *names]
    skus = sorted({str(r["sku"]) for r in group if r.get("sku")})
    if len(skus) > 1:
        out["skus"] = skus
    if len(group) > 1:
        out["sources"] = [
            {k: r[k] for k in ("source", "name", "price", "currency") if r.get(k) is not None}
            for r in group
        ]
    return out


def match_products(
    old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[dict[str, Any]]]:
    """Products of two snapshots paired one to one, best score first: (pairs, new products
    matching none of the old ones)."""
    index = _Index()
    for i, product in enumerate(old):
        index.add(i, product)
    scored = sorted(
        (
            (same_product_score(old[i], b), i, j)
            for j, b in enumerate(new)
            for i in index.candidates(b)
        ),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    used_old: set[int] = set()
    used_new: set[int] = set()
    pairs = []
    for score, i, j in scored:
        if score < MATCH_THRESHOLD:
            break
        if i in used_old or j in used_new:
            continue
        used_old.add(i)
        used_new.add(j)
        pairs.append((old[i], new[j]))
    unmatched = [b for j, b in enumerate(new) if j not in used_new]
    return pairs, unmatched


def names_matching(names: Iterable[str], products: Sequence[dict[str, Any]]) -> set[str]:
    """The ``names`` that name one of ``products`` (name similarity >= the threshold)."""
    index = _Index()
    for i, product in enumerate(products):
        index.add(i, product)
    out = set()
    for name in set(names):
        for i in index.candidates({"name": name}):
            if any(
                name_similarity(name, other) >= MATCH_THRESHOLD for other in _names(products[i])
            ):
                out.add(name)
                break
    return out


def product_identity(product: dict[str, Any]) -> str:
    """A stable short identity for keys: the SKU/GTIN if any, else the normalised name."""
    ids = sorted(_ids(product))
    if ids:
        return f"id:{ids[0]}"
    return "name:" + " ".join(_tokens(product.get("name") or ""))
