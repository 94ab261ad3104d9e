"""Noise a page shows without knowing it: generic filters and a mask learned from the page.

Pure functions, no I/O. A page's visible text is cut into **blocks** (the text of one
block-level element: a paragraph, a list item, a heading, a table cell, a div holding text),
each with a **key**: a short hash of its element path (tag, the class names that do not look
generated, and the index among like siblings). Two loads of the same page a few seconds apart
show which blocks and tokens change by themselves:

* a block present in one load only, or whose text is mostly different, is **masked** (a
  rotating promo or announcement bar, a "recommended for you" box with other items; a parent
  with two or more masked children is masked whole, so a longer list next time stays masked);
* a block whose text differs in a few tokens gets a **template** (its constant words with
  wildcards where the tokens moved: "served by * in * ms");
* a block whose siblings hold the same texts in another order is not noise: blocks are
  compared as a multiset, so a reordered list changes nothing.

Before any learning, every block goes through the generic filters: the volatile fragments of
:func:`.text.strip_noise` (dates, clocks, UUIDs, long hex and base64 runs), random-looking
tokens (:func:`is_random_token`: request and session ids however they are spelled) and the
numbers of live counters ("12 people are viewing", "only 3 left", "1,204 sold", in English,
German, French and Spanish and a few more) become placeholders.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .text import collapse, strip_noise

__all__ = [
    "Block",
    "NoiseMask",
    "apply_mask",
    "generic_filter",
    "is_random_token",
    "learn_mask",
    "mask_counters",
    "mask_random_tokens",
]

RANDOM = "<id>"
COUNT = "<n>"
WILDCARD = "*"

# ------------------------------------------------------------------------ generic filters

_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-:.=+/#]*[A-Za-z0-9=]")


def _entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def is_random_token(token: str) -> bool:
    """A token that looks generated (a request, session or trace id), not written.

    Its letters and digits (separators dropped) are at least 8 characters with at least two
    of each, and either they alternate often (5+ runs of letters or digits), or letters of
    both cases mix with digits (3+ runs), or a long token (12+) has 3+ runs or high character
    entropy. Model names (``WH-1000XM5``, ``RTX4090``, ``B2B``) have few runs and stay.
    Also a run of 9+ digits with no separator (an order or visitor number).
    """
    core = re.sub(r"[^A-Za-z0-9]", "", token)
    if len(core) >= 9 and core.isdigit():
        return True
    if len(core) < 8:
        return False
    digits = sum(ch.isdigit() for ch in core)
    letters = len(core) - digits
    if digits < 2 or letters < 2:
        return len(core) >= 20 and _entropy(core) >= 3.5
    runs = len(re.findall(r"[A-Za-z]+|[0-9]+", core))
    mixed_case = any(ch.islower() for ch in core) and any(ch.isupper() for ch in core)
    if runs >= 5 or (mixed_case and runs >= 3):
        return True
    return len(core) >= 12 and (runs >= 3 or _entropy(core) >= 3.4)


def mask_random_tokens(text: str) -> str:
    """``text`` with each random-looking token replaced by a placeholder."""
    return _TOKEN_RE.sub(lambda m: RANDOM if is_random_token(m.group(0)) else m.group(0), text)


# Words that make a nearby number a live counter (viewers, stock left, items sold, reviews).
_COUNTER_WORDS = frozenset(
    [
        "viewing",
        "watching",
        "looking",
        "viewed",
        "view",
        "views",
        "visitors",
        "visitor",
        "shoppers",
        "people",
        "persons",
        "others",
        "customers",
        "users",
        "buyers",
        "left",
        "remaining",
        "remain",
        "stock",
        "sold",
        "bought",
        "purchased",
        "ordered",
        "orders",
        "booked",
        "bookings",
        "carts",
        "cart",
        "basket",
        "baskets",
        "reviews",
        "review",
        "ratings",
        "rating",
        "downloads",
        "installs",
        "signups",
        "waiting",
        "queue",
        "seats",
        "spots",
        "claimed",
        "personen",
        "leute",
        "kunden",
        "besucher",
        "sehen",
        "schauen",
        "betrachten",
        "ansehen",
        "angesehen",
        "gekauft",
        "verkauft",
        "bestellt",
        "übrig",
        "verfügbar",
        "lager",
        "vorrätig",
        "bewertungen",
        "rezensionen",
        "warenkorb",
        "stück",
        "plätze",
        "personne",
        "personnes",
        "regardent",
        "consultent",
        "consulté",
        "visiteurs",
        "clients",
        "achetés",
        "acheté",
        "vendus",
        "vendu",
        "vendues",
        "reste",
        "restent",
        "restant",
        "restants",
        "restantes",
        "disponible",
        "disponibles",
        "avis",
        "commandes",
        "panier",
        "paniers",
        "persona",
        "personas",
        "viendo",
        "mirando",
        "visitantes",
        "clientes",
        "comprado",
        "comprados",
        "compraron",
        "vendido",
        "vendidos",
        "vendidas",
        "quedan",
        "queda",
        "quedaban",
        "disponibles",
        "existencias",
        "opiniones",
        "reseñas",
        "carrito",
        "unidades",
        "persone",
        "stanno",
        "guardando",
        "venduti",
        "rimasti",
        "disponibili",
        "recensioni",
        "pessoas",
        "vendo",
        "vendidos",
        "restam",
        "disponíveis",
        "avaliações",
    ]
)
_NUMBER = re.compile(
    r"(?<![\w$€£¥₹.,])(?:\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+|\d+)(?:[.,]\d+)?(?:\s?[kK])?\+?"
    r"(?![\w$€£¥₹%]|\s?(?:[$€£¥₹]|USD|EUR|GBP|CHF|JPY)\b|[.,]\d)"
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_COUNTER_REACH = 3  # words either side of the number


def mask_counters(text: str) -> str:
    """``text`` with the number of each live counter phrase replaced by a placeholder: a
    bare number (no currency, no percent) with a counter word among the three words either
    side ("12 people are viewing this", "nur noch 3 auf Lager", "plus que 2 en stock")."""

    def replace(m: re.Match[str]) -> str:
        before = _WORD.findall(text[max(0, m.start() - 60) : m.start()].lower())
        after = _WORD.findall(text[m.end() : m.end() + 60].lower())
        near = before[-_COUNTER_REACH:] + after[:_COUNTER_REACH]
        return COUNT if any(word in _COUNTER_WORDS for word in near) else m.group(0)

    return _NUMBER.sub(replace, text)


# A block this short that holds a live counter is the counter ("only 3 left", "12 people
# are viewing this"): its wording rotates too, so the whole block is the placeholder.
COUNTER_BLOCK_WORDS = 8


def generic_filter(text: str) -> str:
    """One block's text without the noise every page may carry (see the module doc)."""
    if not text or text.isspace():
        return ""
    if len(text) <= _CACHED_LENGTH:  # navigation, footers, cards: the same on every load
        return _generic_filter_cached(text)
    return _generic_filter(text)


_CACHED_LENGTH = 2000


@functools.lru_cache(maxsize=65536)
def _generic_filter_cached(text: str) -> str:
    return _generic_filter(text)


def _generic_filter(text: str) -> str:
    text = collapse(mask_counters(mask_random_tokens(strip_noise(text))))
    if COUNT in text and len(text.split()) <= COUNTER_BLOCK_WORDS:
        return COUNT
    return text


# -------------------------------------------------------------------------------- blocks

_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "legend",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
HEADLINE_TAGS = frozenset({"h1", "h2", "h3"})


@dataclass(frozen=True)
class Block:
    """The text of one block-level element, its path key, and what it is (``h`` headline,
    ``hero`` hero copy, ``t`` other text); ``card`` is the product card it belongs to."""

    key: str
    kind: str
    text: str
    card: str | None = None

    def row(self) -> list[Any]:
        return [self.key, self.kind, self.text, self.card]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Block:
        card = row[3] if len(row) > 3 and isinstance(row[3], str) else None
        return cls(str(row[0]), str(row[1]), str(row[2]), card)


def stable_classes(el, ignore: tuple[str, ...] = ()) -> str:
    """The element's class and id names that look written, sorted: generated ones change
    with each build or load and are left out (those with a digit, such as ``css-1x2y3z``,
    and those starting with a prefix the page's mask learned is generated, ``ignore``)."""
    names = []
    for attr in ("class", "id"):
        for token in (el.get(attr) or "").split():
            if re.search(r"\d", token) or len(token) > 40 or token.startswith(ignore):
                continue
            names.append(token.lower())
    return ".".join(sorted(set(names)))


def volatile_class_prefixes(loads: Sequence[set[str]]) -> set[str]:
    """Prefixes (``css-``, ``sc-``, ``Card__``) of the class names some loads of a page
    have and others not: names generated per load, which must not be part of a key."""
    if len(loads) < 2:
        return set()
    every = set.intersection(*loads)
    prefixes = set()
    for token in set.union(*loads) - every:
        match = re.match(r"^[A-Za-z]+[-_]+", token)
        if match:
            prefixes.add(match.group(0))
    return prefixes


def class_tokens(body) -> set[str]:
    return {
        token
        for el in body.iter()
        if isinstance(el.tag, str)
        for attr in ("class", "id")
        for token in (el.get(attr) or "").split()
    }


def element_keys(body, ignore: tuple[str, ...] = ()) -> dict[Any, str]:
    """Each element's key: a hash of ``tag.classes[n]`` of every ancestor down to it, ``n``
    its index among siblings of the same tag and classes. One pass from the top."""
    keys: dict[Any, str] = {}
    stack = [(body, f"{body.tag}.{stable_classes(body, ignore)}[0]")]
    while stack:
        el, path = stack.pop()
        keys[el] = hashlib.sha1(path.encode("utf-8")).hexdigest()[:12]
        seen: Counter[str] = Counter()
        for child in el:
            if not isinstance(child.tag, str):
                continue
            sig = f"{child.tag}.{stable_classes(child, ignore)}"
            stack.append((child, f"{path}/{sig}[{seen[sig]}]"))
            seen[sig] += 1
    return keys


def is_block(el) -> bool:
    return isinstance(el.tag, str) and el.tag in _BLOCK_TAGS


def collect_blocks(body, keys: dict[Any, str], *, is_hero, card_of):
    """The blocks of ``body`` in document order and each block's parent block key.

    A block is a block element's own text (its inline descendants' text; nested blocks are
    blocks of their own) through the generic filter; ``is_hero(el)`` and ``card_of(el)``
    (a product name or None) say what an element is."""
    out: list[Block] = []
    parents: dict[str, str] = {}

    def emit(el, parent_key: str, hero: bool, card: str | None) -> None:
        key = keys.get(el) or element_key_fallback(el)
        hero = hero or is_hero(el)
        card = card_of(el) or card
        kind = "h" if el.tag in HEADLINE_TAGS else ("hero" if hero else "t")
        index = len(out)
        out.append(Block(key, kind, "", card))  # this block before its children
        parents[key] = parent_key
        pieces: list[str] = []

        def inline(node) -> None:
            pieces.append(node.text or "")
            for child in node:
                if isinstance(child.tag, str):
                    if is_block(child):
                        emit(child, key, hero, card)
                    else:
                        inline(child)
                pieces.append(child.tail or "")

        inline(el)
        out[index] = Block(key, kind, generic_filter(" ".join(pieces)), card)

    emit(body, "", False, None)
    return [b for b in out if b.text], parents


def element_key_fallback(el) -> str:
    return hashlib.sha1(el.tag.encode("utf-8")).hexdigest()[:12]


# ---------------------------------------------------------------------------------- mask


@dataclass
class NoiseMask:
    """What one URL shows by itself: masked block keys and block templates."""

    blocks: set[str] = field(default_factory=set)
    templates: dict[str, list[str | None]] = field(default_factory=dict)
    loads: int = 0  # page loads compared to learn it
    class_prefixes: set[str] = field(default_factory=set)  # generated class names

    @property
    def ignore(self) -> tuple[str, ...]:
        return tuple(sorted(self.class_prefixes))

    def as_json(self) -> dict[str, Any]:
        return {
            "blocks": sorted(self.blocks),
            "templates": dict(sorted(self.templates.items())),
            "loads": self.loads,
            "class_prefixes": sorted(self.class_prefixes),
        }

    @classmethod
    def from_json(cls, data: Any) -> NoiseMask:
        """The mask stored as JSON; anything unreadable is an empty mask (relearned)."""
        if not isinstance(data, dict):
            return cls()
        if not isinstance(data.get("templates") or {}, dict):
            return cls()
        return cls(
            set(data.get("blocks") or []),
            {str(k): list(v) for k, v in (data.get("templates") or {}).items()},
            int(data.get("loads") or 0),
            set(data.get("class_prefixes") or []),
        )

    def merge(self, other: NoiseMask) -> NoiseMask:
        """Both masks' noise (a template that keeps failing becomes a masked block)."""
        templates = dict(self.templates)
        blocks = self.blocks | other.blocks
        for key, template in other.templates.items():
            mine = templates.get(key)
            if mine is None or mine == template:
                templates[key] = template
            else:
                merged = _merge_templates(mine, template)
                if merged is None:
                    blocks.add(key)
                    templates.pop(key, None)
                else:
                    templates[key] = merged
        for key in blocks:
            templates.pop(key, None)
        return NoiseMask(
            blocks, templates, self.loads + other.loads, self.class_prefixes | other.class_prefixes
        )

    def __bool__(self) -> bool:
        return bool(self.blocks or self.templates or self.class_prefixes)


def _template(a: str, b: str) -> list[str | None] | None:
    """Constant segments of two texts of one block with ``None`` where they differ, or None
    when the texts are mostly different (the block is masked whole instead)."""
    wa, wb = a.split(), b.split()
    matcher = difflib.SequenceMatcher(a=wa, b=wb, autojunk=False)
    same = sum(size for _i, _j, size in matcher.get_matching_blocks())
    if same < 2 or same < 0.5 * max(len(wa), len(wb)):
        return None
    out: list[str | None] = []
    for op, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(" ".join(wa[i1:i2]))
        elif not out or out[-1] is not None:
            out.append(None)
    return out


def _merge_templates(a: list[str | None], b: list[str | None]) -> list[str | None] | None:
    render = " ".join(WILDCARD if part is None else part for part in a)
    other = " ".join(WILDCARD if part is None else part for part in b)
    merged = _template(render, other)
    if merged is None:
        return None
    return [None if part == WILDCARD else part for part in merged]


def _template_regex(template: Sequence[str | None]) -> re.Pattern[str]:
    pattern = r"\s*".join(
        r"(?:.*?)" if part is None else re.escape(part).replace(r"\ ", r"\s+") for part in template
    )
    return re.compile(rf"\s*{pattern}\s*", re.S)


def _render(template: Sequence[str | None]) -> str:
    return " ".join(WILDCARD if part is None else part for part in template)


def apply_mask(blocks: Iterable[Block], mask: NoiseMask | None) -> list[Block]:
    """``blocks`` without the masked ones; a block matching its template shows the template
    (its moving tokens as ``*``), one that does not (a real change) keeps its text."""
    if not mask:
        return list(blocks)
    out = []
    for block in blocks:
        if block.key in mask.blocks:
            continue
        template = mask.templates.get(block.key)
        if template is not None and _template_regex(template).fullmatch(block.text):
            block = Block(block.key, block.kind, _render(template), block.card)
        out.append(block)
    return out


def learn_mask(loads: Sequence[tuple[list[Block], dict[str, str]]]) -> NoiseMask:
    """The noise of a page from two or more loads taken close together (nothing real changed
    between them). Each load is its blocks and ``parents``: block key -> parent block key."""
    mask = NoiseMask(loads=len(loads))
    if len(loads) < 2:
        return mask
    first_blocks, parents = loads[0]
    for other_blocks, other_parents in loads[1:]:
        parents = {**other_parents, **parents}
        mask = mask.merge(_learn_pair(first_blocks, other_blocks, parents))
    mask.loads = len(loads)
    return mask


def _learn_pair(a: list[Block], b: list[Block], parents: dict[str, str]) -> NoiseMask:
    mask = NoiseMask()
    by_key_a: dict[str, list[str]] = defaultdict(list)
    by_key_b: dict[str, list[str]] = defaultdict(list)
    for block in a:
        by_key_a[block.key].append(block.text)
    for block in b:
        by_key_b[block.key].append(block.text)
    # A parent whose children hold the same texts in both loads was only reordered.
    children_a: dict[str, Counter[str]] = defaultdict(Counter)
    children_b: dict[str, Counter[str]] = defaultdict(Counter)
    for block in a:
        children_a[parents.get(block.key, "")][block.text] += 1
    for block in b:
        children_b[parents.get(block.key, "")][block.text] += 1
    reordered = {p for p in children_a if children_a[p] == children_b.get(p)}
    for key in set(by_key_a) | set(by_key_b):
        texts_a, texts_b = by_key_a.get(key), by_key_b.get(key)
        if texts_a == texts_b:
            continue
        if parents.get(key, "") in reordered:
            continue
        if not texts_a or not texts_b or len(texts_a) != len(texts_b):
            mask.blocks.add(key)
            continue
        template = _template(" ".join(texts_a), " ".join(texts_b))
        if template is None:
            mask.blocks.add(key)
        else:
            mask.templates[key] = template
    # A parent with two or more masked children is masked whole.
    masked_children = Counter(parents.get(key) for key in mask.blocks if parents.get(key))
    all_children = Counter(parents.values())
    for parent, count in masked_children.items():
        if count >= 2 and count * 2 >= all_children[parent] and parents.get(parent):
            mask.blocks.add(parent)
    # Everything under a masked block is masked too (the extraction drops the subtree).
    for key in list(parents):
        node, chain = key, 0
        while node and chain < 64:
            if node in mask.blocks:
                mask.blocks.add(key)
                break
            node, chain = parents.get(node, ""), chain + 1
    for key in mask.blocks:
        mask.templates.pop(key, None)
    return mask
