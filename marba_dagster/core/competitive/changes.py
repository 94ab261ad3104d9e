"""Changes between two snapshots of a competitor page, and posting-frequency shifts.

Pure functions on plain dicts (the snapshot rows), no I/O. Snapshots compared here are
already noise-free (see :mod:`.extract`), so two snapshots whose only differences were a
timestamp, a CSRF token, a rotated ad or reordered JSON-LD compare equal.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .extract import mask_prices, product_key
from .text import cosine, term_counts, words

__all__ = [
    "Change",
    "ChangeThresholds",
    "detect_page_changes",
    "messaging_shift",
    "posting_frequency_change",
]


@dataclass(frozen=True)
class ChangeThresholds:
    # website_change: at least this many words changed, or this share of the text.
    min_changed_words: int = 3
    min_changed_ratio: float = 0.02
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


def _text_change(old: str, new: str) -> tuple[int, float, list[str], list[str]]:
    a, b = words(mask_prices(old)), words(mask_prices(new))
    sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    changed = 0
    added: list[str] = []
    removed: list[str] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            continue
        changed += max(i2 - i1, j2 - j1)
        if i2 > i1:
            removed.append(" ".join(a[i1:i2]))
        if j2 > j1:
            added.append(" ".join(b[j1:j2]))
    ratio = changed / max(1, max(len(a), len(b)))
    return changed, ratio, added, removed


def _products(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in snapshot.get("products") or []:
        if isinstance(p, dict) and p.get("name"):
            out.setdefault(product_key(p["name"]), p)
    # Prices with a product name but no product entry still identify a product's price.
    for pr in snapshot.get("prices") or []:
        if isinstance(pr, dict) and pr.get("product"):
            key = product_key(pr["product"])
            entry = out.setdefault(key, {"name": pr["product"]})
            if not entry.get("price"):
                entry = dict(entry, price=pr.get("amount"), currency=pr.get("currency"))
                out[key] = entry
    return out


def detect_page_changes(
    previous: dict[str, Any] | None,
    current: dict[str, Any],
    thresholds: ChangeThresholds = ChangeThresholds(),
) -> list[Change]:
    """website_change, pricing_change and product_launch between two snapshots of a page.

    The first snapshot of a page is its baseline: no change is reported.
    """
    if not previous:
        return []
    changes: list[Change] = []
    if previous.get("content_hash") != current.get("content_hash"):
        n, ratio, added, removed = _text_change(
            previous.get("text") or "", current.get("text") or ""
        )
        if n >= thresholds.min_changed_words or ratio >= thresholds.min_changed_ratio:
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
                    key=f"website:{current.get('content_hash', '')[:16]}",
                )
            )

    old_p, new_p = _products(previous), _products(current)
    for key, new in new_p.items():
        old = old_p.get(key)
        if old is None:
            continue
        if (
            not old.get("price")
            or not new.get("price")
            or old.get("currency") != new.get("currency")
        ):
            continue
        a, b = Decimal(str(old["price"])), Decimal(str(new["price"]))
        if a == b or a == 0:
            continue
        pct = float((b - a) / a * 100)
        if abs(pct) < thresholds.min_price_change_pct:
            continue
        direction = "raised" if b > a else "cut"
        changes.append(
            Change(
                "pricing_change",
                f"{new['name']}: price {direction} {old['price']} -> {new['price']}"
                f" {new.get('currency')} ({pct:+.1f}%)",
                {
                    "product": new["name"],
                    "old_price": str(a),
                    "new_price": str(b),
                    "currency": new.get("currency"),
                    "percent_change": round(pct, 2),
                    "direction": direction,
                },
                strength=round(min(1.0, 0.4 + abs(pct) / 50), 3),
                key=f"price:{key}:{a}->{b}:{new.get('currency')}",
            )
        )
    launched = [new_p[k] for k in new_p if k not in old_p]
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
                    "known_products": sorted(v["name"] for v in old_p.values()),
                },
                strength=0.7,
                key=f"launch:{product_key(prod['name'])}",
            )
        )
    return changes


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
