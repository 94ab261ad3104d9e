"""Changes between two snapshots of a competitor page, and posting-frequency shifts.

Pure functions on plain dicts (the snapshot rows), no I/O. Snapshots compared here are
already free of known noise (see :mod:`.extract` and :mod:`.noise`), and the page's learned
mask is applied to both sides again (a mask learned after the older snapshot was taken
covers it too). The text is compared as a multiset of blocks (reordered blocks and list
items change nothing), prices masked (a price move is a ``pricing_change``, not a text
change), the text of a launched product's own card left out (it is the launch), and a text
change must be large enough to matter to be a ``website_change``:

    changed words >= ``min_changed_words`` (5), or
    changed words >= ``min_ratio_words`` (3) and changed / page words >= ``min_changed_ratio``
    (5 %)

so one changed token is never an alert. Products are matched one to one between the
snapshots by SKU/GTIN, URL or name (:mod:`.products`): one ``pricing_change`` or
``product_launch`` per product, whichever of its representations moved.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .extract import mask_prices
from .noise import Block, NoiseMask, apply_mask
from .products import (
    MATCH_THRESHOLD,
    SOURCE_ORDER,
    match_products,
    names_matching,
    product_identity,
    same_product_score,
)
from .text import cosine, term_counts

__all__ = [
    "Change",
    "ChangeThresholds",
    "detect_page_changes",
    "merge_product_changes",
    "messaging_shift",
    "posting_frequency_change",
]


@dataclass(frozen=True)
class ChangeThresholds:
    # website_change: at least min_changed_words words changed, or at least min_ratio_words
    # that are min_changed_ratio of the page's words.
    min_changed_words: int = 5
    min_ratio_words: int = 3
    min_changed_ratio: float = 0.05
    # messaging_shift: 1 - cosine similarity of positioning terms vs the baseline.
    messaging_threshold: float = 0.35
    messaging_baseline_size: int = 4
    # pricing_change: ignore moves smaller than this (percent).
    min_price_change_pct: float = 0.5
    # social_activity: recent week vs the weekly rate of the baseline weeks.
    social_recent_days: int = 7
    social_baseline_days: int = 56
    social_spike_ratio: float = 2.0
    social_drop_ratio: float = 0.34
    social_min_posts: int = 3


@dataclass
class Change:
    change_type: (
        str  # website_change | pricing_change | product_launch | messaging_shift | social_activity
    )
    title: str
    details: dict[str, Any]
    strength: float  # 0..1
    key: str  # stable identity of this change, for dedup
    extra: dict[str, Any] = field(default_factory=dict)


def _blocks(snapshot: dict[str, Any], mask: NoiseMask | None) -> list[Block] | None:
    rows = snapshot.get("blocks")
    good = [
        row
        for row in (rows if isinstance(rows, list) else [])
        if isinstance(row, (list, tuple)) and len(row) >= 3
    ]
    if not good:  # taken before blocks were kept (or unreadable): a baseline for the text
        return None if snapshot.get("text") else []
    return apply_mask((Block.from_row(row) for row in good), mask)


# Above this many (added x removed) block pairs the blocks are not paired up by similarity.
PAIRING_LIMIT = 20_000


def _line_words(block: Block) -> list[str]:
    return mask_prices(block.text).split()


def _text_change(
    old: list[Block], new: list[Block], skip_cards: set[str]
) -> tuple[int, float, list[str], list[str]]:
    """Changed words between two block lists compared as multisets: a removed and an added
    block that resemble each other count their word difference, the others all their words.
    Blocks of the cards named in ``skip_cards`` are left out."""
    old = [b for b in old if b.card not in skip_cards]
    new = [b for b in new if b.card not in skip_cards]
    old_lines = Counter(" ".join(_line_words(b)) for b in old)
    new_lines = Counter(" ".join(_line_words(b)) for b in new)
    removed = [line for line in (old_lines - new_lines).elements() if line]
    added = [line for line in (new_lines - old_lines).elements() if line]
    changed = 0
    pending = list(removed)
    pairs = added
    if len(added) * len(pending) > PAIRING_LIMIT:  # a rewrite: every word counts
        changed = max(
            sum(len(line.split()) for line in added), sum(len(line.split()) for line in pending)
        )
        pending, pairs = [], []
    for line in pairs:
        words_new = line.split()
        best, best_ratio = None, 0.0
        for candidate in pending:
            ratio = difflib.SequenceMatcher(
                a=candidate.split(), b=words_new, autojunk=False
            ).ratio()
            if ratio > best_ratio:
                best, best_ratio = candidate, ratio
        if best is not None and best_ratio >= 0.5:
            pending.remove(best)
            matcher = difflib.SequenceMatcher(a=best.split(), b=words_new, autojunk=False)
            changed += sum(
                max(i2 - i1, j2 - j1)
                for op, i1, i2, j1, j2 in matcher.get_opcodes()
                if op != "equal"
            )
        else:
            changed += len(words_new)
    changed += sum(len(line.split()) for line in pending)
    total = max(
        sum(len(x.split()) for x in old_lines.elements()),
        sum(len(x.split()) for x in new_lines.elements()),
        1,
    )
    return changed, changed / total, added, removed


def _source_prices(product: dict[str, Any]) -> dict[str, tuple[str, str]]:
    out = {}
    for rep in product.get("sources") or [product]:
        if rep.get("price") and rep.get("currency"):
            out.setdefault(rep.get("source") or "text", (str(rep["price"]), rep["currency"]))
    return out


def _price_move(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, str, str] | None:
    """(old amount, new amount, currency) of the product's price move, taken from its most
    structured representation that moved, or None."""
    if (
        old.get("price")
        and new.get("price")
        and old.get("currency") == new.get("currency")
        and str(old["price"]) != str(new["price"])
    ):
        return str(old["price"]), str(new["price"]), str(new["currency"])
    before, after = _source_prices(old), _source_prices(new)
    for source in (*SOURCE_ORDER, *sorted(set(before) - set(SOURCE_ORDER))):
        a, b = before.get(source), after.get(source)
        if a and b and a[1] == b[1] and a[0] != b[0]:
            return a[0], b[0], b[1]
    return None


def detect_page_changes(
    previous: dict[str, Any] | None,
    current: dict[str, Any],
    thresholds: ChangeThresholds = ChangeThresholds(),
    mask: NoiseMask | None = None,
) -> list[Change]:
    """website_change, pricing_change and product_launch between two snapshots of a page,
    with the page's learned noise ``mask`` applied to both.

    The first snapshot of a page is its baseline: no change is reported. A previous
    snapshot without blocks (taken before blocks were kept) is a baseline for the text.
    """
    if not previous:
        return []
    changes: list[Change] = []
    old_products = [p for p in previous.get("products") or [] if isinstance(p, dict)]
    new_products = [p for p in current.get("products") or [] if isinstance(p, dict)]
    pairs, launched = match_products(old_products, new_products)

    old_blocks, new_blocks = _blocks(previous, mask), _blocks(current, mask)
    if old_blocks is not None and new_blocks is not None:
        skip = names_matching((b.card for b in new_blocks if b.card), launched)
        n, ratio, added, removed = _text_change(old_blocks, new_blocks, skip)
        if n >= thresholds.min_changed_words or (
            n >= thresholds.min_ratio_words and ratio >= thresholds.min_changed_ratio
        ):
            changes.append(
                Change(
                    "website_change",
                    f"Page changed: {n} words ({ratio:.0%})",
                    {
                        "changed_words": n,
                        "changed_ratio": round(ratio, 4),
                        "added": [s[:200] for s in added[:10]],
                        "removed": [s[:200] for s in removed[:10]],
                        "old_hash": previous.get("content_hash"),
                        "new_hash": current.get("content_hash"),
                    },
                    strength=round(min(1.0, 0.2 + ratio * 4), 3),
                    key=f"website:{(current.get('content_hash') or '')[:16]}",
                )
            )

    for old, new in pairs:
        move = _price_move(old, new)
        if move is None:
            continue
        a, b = Decimal(move[0]), Decimal(move[1])
        if a == b or a == 0:
            continue
        pct = float((b - a) / a * 100)
        if abs(pct) < thresholds.min_price_change_pct:
            continue
        direction = "raised" if b > a else "cut"
        identity = product_identity(new)
        changes.append(
            Change(
                "pricing_change",
                f"{new['name']}: price {direction} {move[0]} -> {move[1]} {move[2]} ({pct:+.1f}%)",
                {
                    "product": new["name"],
                    "old_price": str(a),
                    "new_price": str(b),
                    "currency": move[2],
                    "percent_change": round(pct, 2),
                    "direction": direction,
                    "sku": new.get("sku"),
                },
                strength=round(min(1.0, 0.4 + abs(pct) / 50), 3),
                key=f"price:{identity}:{a}->{b}:{move[2]}",
                extra={"product": new},
            )
        )
    for prod in launched:
        changes.append(
            Change(
                "product_launch",
                f"New product: {prod['name']}"
                + (f" at {prod['price']} {prod.get('currency')}" if prod.get("price") else ""),
                {
                    "product": prod["name"],
                    "price": prod.get("price"),
                    "currency": prod.get("currency"),
                    "sku": prod.get("sku"),
                    "known_products": sorted(p["name"] for p in old_products),
                },
                strength=0.7,
                key=f"launch:{product_identity(prod)}",
                extra={"product": prod},
            )
        )
    return changes


def merge_product_changes(found: Sequence[tuple[str, Change]]) -> list[tuple[str, Change]]:
    """One change per product across a competitor's pages: ``(url, change)`` pairs whose
    product is the same (:func:`.products.same_product_score`) and whose change is the same
    (a launch, or the same price move) become the first of them, its ``urls`` naming every
    page. Other changes pass through."""
    out: list[tuple[str, Change]] = []
    for url, change in found:
        product = change.extra.get("product")
        if change.change_type not in ("pricing_change", "product_launch") or not product:
            out.append((url, change))
            continue
        twin = None
        for _url, kept in out:
            other = kept.extra.get("product")
            if kept.change_type != change.change_type or not other:
                continue
            if change.change_type == "pricing_change" and (
                kept.details["new_price"],
                kept.details["currency"],
            ) != (change.details["new_price"], change.details["currency"]):
                continue
            if same_product_score(other, product) >= MATCH_THRESHOLD:
                twin = kept
                break
        if twin is None:
            change.details["urls"] = [url]
            out.append((url, change))
        elif url not in twin.details["urls"]:
            twin.details["urls"].append(url)
    return out


def messaging_shift(
    baseline_texts: Sequence[str],
    current_text: str,
    thresholds: ChangeThresholds = ChangeThresholds(),
) -> Change | None:
    """The positioning text moved away from its recent baseline (the last few snapshots).

    Score = 1 - cosine similarity of the term counts of the current positioning text and
    the average of the baseline's; above ``messaging_threshold`` it is a shift, reported
    with the terms gained (new, absent from the baseline) and lost.
    """
    baseline_texts = [t for t in baseline_texts if t][: thresholds.messaging_baseline_size]
    if not baseline_texts or not current_text:
        return None
    per = [term_counts([t]) for t in baseline_texts]
    base: Counter[str] = Counter()
    for c in per:
        for k, v in c.items():
            base[k] += v / len(per)
    cur = term_counts([current_text])
    if not cur or not base:
        return None
    score = 1.0 - cosine(cur, base)
    if score <= thresholds.messaging_threshold:
        return None
    gained = [t for t, _ in cur.most_common() if t not in base][:15]
    lost = [t for t, _ in base.most_common() if t not in cur][:15]
    return Change(
        "messaging_shift",
        f"Messaging shift ({score:.0%}): +{', '.join(gained[:4]) or '-'}"
        f" / -{', '.join(lost[:4]) or '-'}",
        {
            "shift_score": round(score, 4),
            "terms_gained": gained,
            "terms_lost": lost,
            "baseline_snapshots": len(baseline_texts),
            "before_text": baseline_texts[0][:2000],
            "after_text": current_text[:2000],
        },
        strength=round(min(1.0, score), 3),
        key="messaging:" + ",".join(sorted(gained[:8])),
    )


def posting_frequency_change(
    post_times: Sequence[datetime],
    now: datetime,
    *,
    source: str = "feed",
    thresholds: ChangeThresholds = ChangeThresholds(),
) -> Change | None:
    """Posts in the last week against the account's own weekly rate before it.

    A spike (ratio >= ``social_spike_ratio`` with at least ``social_min_posts`` recent
    posts) or a drop (ratio <= ``social_drop_ratio`` from a baseline of at least
    ``social_min_posts`` posts) is a change; anything else is the account's normal rhythm.
    """
    recent_from = now - timedelta(days=thresholds.social_recent_days)
    base_from = recent_from - timedelta(days=thresholds.social_baseline_days)
    recent = sum(1 for t in post_times if recent_from <= t <= now)
    baseline = sum(1 for t in post_times if base_from <= t < recent_from)
    oldest = min(post_times) if post_times else None
    if oldest is None:
        return None
    # Only the part of the baseline window the data covers counts (a short feed).
    covered_days = min(
        thresholds.social_baseline_days, max(0.0, (recent_from - oldest).total_seconds() / 86400)
    )
    if covered_days < thresholds.social_recent_days:
        return None
    weekly = baseline / (covered_days / thresholds.social_recent_days)
    ratio = recent / weekly if weekly > 0 else float("inf") if recent else 1.0
    week = now.isocalendar()
    details = {
        "source": source,
        "recent_posts": recent,
        "recent_days": thresholds.social_recent_days,
        "baseline_posts": baseline,
        "baseline_days": round(covered_days, 1),
        "baseline_weekly_rate": round(weekly, 3),
        "ratio": None if ratio == float("inf") else round(ratio, 3),
    }
    if recent >= thresholds.social_min_posts and ratio >= thresholds.social_spike_ratio:
        return Change(
            "social_activity",
            f"Posting spike on {source}: {recent} posts this week vs {weekly:.1f}/week usually",
            dict(details, direction="spike"),
            strength=round(min(1.0, 0.3 + min(ratio, 10) / 10), 3),
            key=f"social:{source}:spike:{week.year}-W{week.week:02d}",
        )
    if baseline >= thresholds.social_min_posts and ratio <= thresholds.social_drop_ratio:
        return Change(
            "social_activity",
            f"Posting drop on {source}: {recent} posts this week vs {weekly:.1f}/week usually",
            dict(details, direction="drop"),
            strength=round(min(1.0, 0.3 + (1 - ratio) / 2), 3),
            key=f"social:{source}:drop:{week.year}-W{week.week:02d}",
        )
    return None
