"""Building the demo rows: every brand from its own RNG, ``numpy.random.default_rng([seed,
index])``, plus a few seed-level tables (country rotation, city order). Pure: no database."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .. import schema as s
from .effects import (
    BRAND_EFFECT_SIGMA,
    CLICK_RATE,
    ENGAGEMENT_NOISE_SIGMA,
    ENGAGEMENT_SPLIT,
    FORMAT_MULTIPLIERS,
    FORMAT_PROBABILITIES,
    HASHTAG_MULTIPLIERS,
    HASHTAG_PROBABILITIES,
    HOUR_MULTIPLIERS,
    PLATFORM_ENGAGEMENT_FACTOR,
    PLATFORM_FOLLOWER_FACTOR,
    PLATFORM_POSTS_PER_DAY,
    PLATFORM_PRESENCE,
    PLATFORM_REACH_FRACTION,
    POSTING_HABIT,
    POWER_PHRASE_PROBABILITY,
    POWER_PHRASES,
    POWER_WORD_MULTIPLIERS,
    SOCIAL_PLATFORMS,
    VIDEO_VIEW_RATE,
    WEEKDAY_MULTIPLIERS,
)
from .industries import CTAS, GIVEAWAY_LINE, INDUSTRIES, INDUSTRY_NAMES, IndustryProfile
from .places import (
    CITIES_BY_COUNTRY,
    COUNTRY_WEIGHTS,
    DEMO_COUNTRIES,
    NAME_PREFIXES,
    SURNAME_GROUP,
    SURNAMES,
    DemoCity,
)

DEFAULT_SITES_BASE_URL = "http://127.0.0.1:8765/sites"
# Public https, as the publisher requires of media URLs (the platforms fetch them; the
# sandbox's Graph routes do not).
DEFAULT_MEDIA_BASE_URL = "https://media.marba-demo.example/media"

# Insert order (foreign keys first).
TABLE_ORDER = (
    "brands",
    "competitors",
    "platform_accounts",
    "content_posts",
    "post_metrics",
    "account_metrics",
    "scheduled_content",
    "brand_objectives",
)

# ------------------------------------------------------------------------------ ids

_PLATFORM_ABBR = {"facebook": "fb", "instagram": "ig", "x": "x", "google_business": "gbp"}


def _gbp_post(tag: str, bid: str, name: str, handle: str, index: int, now: datetime) -> dict:
    """The demo's Google Business local post of a brand: STANDARD, EVENT or OFFER."""
    kind = ("STANDARD", "EVENT", "OFFER")[index % 3]
    day = (now + timedelta(days=3 + index % 5)).date().isoformat()
    site = f"https://{handle}.example"
    options: dict = {"topic_type": kind}
    if kind == "STANDARD":
        body = f"New this week at {name}: come and see what we have been working on."
        options["call_to_action"] = {"action_type": "LEARN_MORE", "url": f"{site}/news"}
    elif kind == "EVENT":
        body = f"Join us for an evening at {name}, with tastings and the team."
        options["event"] = {
            "title": f"An evening at {name}"[:58],
            "start": f"{day}T18:00",
            "end": f"{day}T21:00",
        }
        options["call_to_action"] = {"action_type": "BOOK", "url": f"{site}/book"}
    else:
        body = f"This week at {name}: 10% off with the code below."
        options["event"] = {
            "title": "10% off this week",
            "start": now.date().isoformat(),
            "end": day,
        }
        options["offer"] = {
            "coupon_code": f"SAVE10-{index + 1}",
            "redeem_url": f"{site}/offer",
            "terms": "One per customer; not with other offers.",
        }
    when = now - timedelta(minutes=index % 10)
    return {
        "id": f"sched-{tag}-gbp",
        "brand_id": bid,
        "platform": "google_business",
        "body": body,
        "media_urls": [],
        "format": "text",
        "publish_options": options,
        "scheduled_at": when,
        "status": "scheduled",
        "attempts": 0,
        "created_at": when - timedelta(hours=2),
        "updated_at": now,
    }


def brand_id(seed: int, index: int) -> str:
    """The stable id of the demo brand ``index`` (0-based) for ``seed``."""
    return f"brand-{seed}-{index + 1:05d}"


def _tag(seed: int, index: int) -> str:
    return f"{seed}-{index + 1:05d}"


def default_now() -> datetime:
    """The current UTC time rounded down to the hour."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def resolve_now(now: datetime | None) -> datetime:
    """``now`` in UTC; None means this hour (``default_now()``). Naive datetimes are refused."""
    if now is None:
        return default_now()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.astimezone(UTC)


# ------------------------------------------------------------------------- seed-level plan


@dataclass(frozen=True)
class _Plan:
    slots: tuple[str, ...]  # country per position in a rotation cycle
    slot_rank: tuple[int, ...]  # how many earlier slots in the cycle have the same country
    per_cycle: dict[str, int]
    city_order: dict[str, tuple[int, ...]]  # per country: a seed-shuffled city order


@lru_cache(maxsize=32)
def _plan(seed: int) -> _Plan:
    rng = np.random.default_rng([seed, 0x5EED])
    slots = [cc for cc, w in COUNTRY_WEIGHTS.items() for _ in range(w)]
    slots = [slots[i] for i in rng.permutation(len(slots))]
    rank, seen = [], {}
    for cc in slots:
        rank.append(seen.get(cc, 0))
        seen[cc] = seen.get(cc, 0) + 1
    city_order = {
        cc: tuple(int(i) for i in rng.permutation(len(CITIES_BY_COUNTRY[cc])))
        for cc in DEMO_COUNTRIES
    }
    return _Plan(tuple(slots), tuple(rank), seen, city_order)


def city_for(seed: int, index: int) -> DemoCity:
    """The city of demo brand ``index``: countries rotate, cities cycle within a country."""
    plan = _plan(seed)
    cycle, pos = divmod(index, len(plan.slots))
    cc = plan.slots[pos]
    nth = cycle * plan.per_cycle[cc] + plan.slot_rank[pos]
    order = plan.city_order[cc]
    return CITIES_BY_COUNTRY[cc][order[nth % len(order)]]


# ------------------------------------------------------------------------- generation

_HOUR_ARR = np.array([HOUR_MULTIPLIERS[h] for h in range(24)])
_WEEKDAY_ARR = np.array([WEEKDAY_MULTIPLIERS[d] for d in range(7)])
_FORMATS = tuple(s.POST_FORMATS)
_FORMAT_ARR = np.array([FORMAT_MULTIPLIERS[f] for f in _FORMATS])
_FORMAT_INDEX = {f: i for i, f in enumerate(_FORMATS)}
_PLANTED_TAGS = tuple(HASHTAG_MULTIPLIERS)
_PLANTED_TAG_MULT = np.array([HASHTAG_MULTIPLIERS[t] for t in _PLANTED_TAGS])
_PLANTED_TAG_PROB = np.array([HASHTAG_PROBABILITIES[t] for t in _PLANTED_TAGS])
_POWER_WORDS = tuple(POWER_WORD_MULTIPLIERS)
_POWER_MULT = np.array([POWER_WORD_MULTIPLIERS[w] for w in _POWER_WORDS] + [1.0])  # -1 = none
_ALNUM = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _token(rng: np.random.Generator, prefix: str, length: int) -> str:
    return prefix + "".join(_ALNUM[rng.integers(0, len(_ALNUM), size=length)])


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", ascii_text.lower())[:30] or "brand"


def _name(rng: np.random.Generator, industry: IndustryProfile, city: DemoCity) -> str:
    suffix = industry.suffixes[int(rng.integers(len(industry.suffixes)))]
    style = rng.random()
    if style < 0.6:
        first = NAME_PREFIXES[int(rng.integers(len(NAME_PREFIXES)))]
    elif style < 0.85:
        names = SURNAMES[SURNAME_GROUP.get(city.country_code, "EN")]
        first = names[int(rng.integers(len(names)))]
    else:
        first = city.name
    return f"{first} {suffix}"


def _secs_to_dt(secs: np.ndarray) -> list[datetime]:
    return [_EPOCH + timedelta(seconds=v) for v in secs.tolist()]


def generate_brand(
    seed: int,
    index: int,
    *,
    now: datetime | None = None,
    days: int = 90,
    sites_base_url: str = DEFAULT_SITES_BASE_URL,
    media_base_url: str = DEFAULT_MEDIA_BASE_URL,
) -> dict[str, list[dict[str, Any]]]:
    """All demo rows of brand ``index`` (0-based) for ``seed``, keyed by table name.

    Pure and deterministic: the same arguments give the same rows.
    """
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if days < 1:
        raise ValueError("days must be >= 1")
    now = resolve_now(now)
    sites_base_url = sites_base_url.rstrip("/")
    media_base_url = media_base_url.rstrip("/")
    rng = np.random.default_rng([seed, index])
    tag = _tag(seed, index)
    bid = brand_id(seed, index)
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLE_ORDER}

    # ---------------------------------------------------------------- the brand
    city = city_for(seed, index)
    weights = np.array([INDUSTRIES[n].weight for n in INDUSTRY_NAMES])
    industry = INDUSTRIES[INDUSTRY_NAMES[int(rng.choice(len(weights), p=weights / weights.sum()))]]
    name = _name(rng, industry, city)
    has_location = index % 50 != 7
    is_active = index % 20 != 13
    n_kw = int(rng.integers(4, 7))
    kw_idx = rng.permutation(len(industry.keywords))[: min(n_kw, len(industry.keywords))]
    keywords = [industry.keywords[int(i)] for i in sorted(kw_idx)]
    if has_location:
        keywords.append(f"{industry.keywords[0]} {city.name}")
    budget = float(rng.choice([5, 10, 15, 20, 25, 30, 50, 75, 100, 150, 200]))
    created_at = now - timedelta(
        days=days + int(rng.integers(0, 540)), minutes=int(rng.integers(0, 1440))
    )
    out["brands"].append(
        {
            "id": bid,
            "name": name,
            "industry": industry.name,
            "country_code": city.country_code,
            "subdivision": city.subdivision,
            "city": city.name if has_location else None,
            "latitude": city.latitude if has_location else None,
            "longitude": city.longitude if has_location else None,
            "timezone": city.timezone,
            "keywords": keywords,
            "is_active": is_active,
            "monthly_ai_budget_usd": budget,
            "created_at": created_at,
            "updated_at": created_at + timedelta(days=int(rng.integers(0, days))),
        }
    )

    # ---------------------------------------------------------------- competitors
    n_comp = int(rng.integers(2, 5))
    used = {name}
    for j in range(1, n_comp + 1):
        cid = f"comp-{tag}-{j}"
        cname = _name(rng, industry, city)
        if cname in used:
            cname = f"{cname} {['II', 'Studio', 'Collective', 'House'][j - 1]}"
        used.add(cname)
        site = f"{sites_base_url}/{cid}"
        out["competitors"].append(
            {
                "id": cid,
                "brand_id": bid,
                "name": cname,
                "website_url": f"{site}/",
                "watch_urls": [f"{site}/", f"{site}/pricing"],
                "feed_url": f"{site}/feed.xml",
                "social_accounts": {
                    "x": str(int(rng.integers(10**17, 10**18))),
                    "facebook": str(int(rng.integers(10**14, 10**15))),
                    # Read through Business Discovery by brands with an Instagram account.
                    "instagram": f"{_slug(cname)[:24]}_{j}",
                },
                "is_active": bool(rng.random() > 0.05),
                "created_at": created_at + timedelta(days=int(rng.integers(0, 30))),
            }
        )

    # ---------------------------------------------------------------- platform accounts
    presence = rng.random(4)
    social = [p for k, p in enumerate(SOCIAL_PLATFORMS) if presence[k] < PLATFORM_PRESENCE[p]]
    if not social:
        social = ["instagram"]
    platforms = list(social)
    if presence[3] < (0.9 if industry.local else 0.3):
        platforms.append("google_business")
    handle = _slug(name)
    account_ok: dict[str, bool] = {}
    for k, p in enumerate(platforms):
        abbr = _PLATFORM_ABBR[p]
        if p == "facebook":
            ext = str(int(rng.integers(10**14, 10**15)))
            token = _token(rng, "EAAG", 160)
        elif p == "instagram":
            ext = str(int(rng.integers(17841400000000000, 17841499999999999)))
            token = _token(rng, "IGQV", 140)
        elif p == "x":
            ext = str(int(rng.integers(10**17, 10**18)))
            token = _token(rng, "", 90)
        else:
            ext = (
                f"accounts/{int(rng.integers(10**17, 10**18))}"
                f"/locations/{int(rng.integers(10**17, 10**18))}"
            )
            token = _token(rng, "ya29.", 150)
        expired = (index % 25 == 11 and k == 0) or rng.random() < 0.01
        if expired:
            expires = now - timedelta(days=int(rng.integers(1, 20)), hours=int(rng.integers(0, 24)))
        else:
            expires = now + timedelta(days=int(rng.integers(7, 60)), hours=int(rng.integers(0, 24)))
        active = bool(rng.random() > 0.03)
        account_ok[p] = active and not expired
        out["platform_accounts"].append(
            {
                "id": f"acct-{tag}-{abbr}",
                "brand_id": bid,
                "platform": p,
                "external_account_id": ext,
                "handle": handle,
                "access_token": token,
                "token_expires_at": expires,
                "is_active": active,
                "created_at": created_at + timedelta(days=int(rng.integers(0, 30))),
            }
        )

    # ---------------------------------------------------------------- followers
    today = now.date()
    start_day = today - timedelta(days=days - 1)
    base_followers = math.exp(rng.normal(math.log(3500), 0.9))
    followers: dict[str, np.ndarray] = {}
    offsets = np.arange(days, dtype=float)  # 0 = start_day
    for p in social:
        end = max(
            150.0, base_followers * PLATFORM_FOLLOWER_FACTOR[p] * math.exp(rng.normal(0, 0.3))
        )
        growth = max(0.0005, rng.normal(0.0013, 0.0006))
        series = end * np.exp(-growth * (days - 1 - offsets)) * (1 + rng.normal(0, 0.001, days))
        followers[p] = np.maximum(series.round(), 1).astype(np.int64)
        out["account_metrics"].extend(
            {
                "brand_id": bid,
                "platform": p,
                "metric_date": start_day + timedelta(days=d),
                "followers": f,
                "collected_at": now,
            }
            for d, f in enumerate(followers[p].tolist())
        )

    # ---------------------------------------------------------------- posts
    _posts(rng, out, tag, bid, industry, city.timezone, social, followers, now, days,
           start_day, handle)  # fmt: skip

    # ---------------------------------------------------------------- scheduled content
    publishable = [p for p in social if account_ok.get(p)]
    if is_active and publishable:
        n_due = int(rng.integers(1, 3))
        n_future = int(rng.integers(2, 5))
        n_cancel = int(rng.random() < 0.5)
        kinds = ["due"] * n_due + ["future"] * n_future + ["cancelled"] * n_cancel
        for j, kind in enumerate(kinds, 1):
            sid = f"sched-{tag}-{j:02d}"
            p = publishable[int(rng.integers(len(publishable)))]
            fmt_names = list(FORMAT_PROBABILITIES[p])
            probs = np.array(list(FORMAT_PROBABILITIES[p].values()))
            fmt = fmt_names[int(rng.choice(len(fmt_names), p=probs / probs.sum()))]
            if kind == "due":
                when = now - timedelta(minutes=int(rng.integers(0, 11)))
            elif kind == "future":
                when = now + timedelta(minutes=int(rng.integers(60, 7 * 24 * 60)))
            else:
                when = now + timedelta(minutes=int(rng.integers(-3 * 24 * 60, 3 * 24 * 60)))
            if fmt in ("image", "story"):
                media = [f"{media_base_url}/{sid}/1.jpg"]
            elif fmt == "carousel":
                media = [f"{media_base_url}/{sid}/{m}.jpg" for m in range(1, 4)]
            elif fmt in ("video", "reel"):
                media = [f"{media_base_url}/{sid}/1.mp4"]
            else:
                media = []
            body = _one_body(rng, industry, p, fmt, handle)
            out["scheduled_content"].append(
                {
                    "id": sid,
                    "brand_id": bid,
                    "platform": p,
                    "body": body,
                    "media_urls": media,
                    "format": fmt,
                    "publish_options": None,
                    "scheduled_at": when,
                    "status": "cancelled" if kind == "cancelled" else "scheduled",
                    "attempts": 0,
                    "created_at": min(when, now) - timedelta(hours=int(rng.integers(1, 72))),
                    "updated_at": now,
                }
            )

    # ---------------------------------------------------------------- Google Business posts
    # One due local post per active brand with a working Business Profile location, its type
    # by brand (standard with a call to action, event, offer). No random draws: the rest of
    # the seed is the same with or without it.
    if is_active and account_ok.get("google_business"):
        out["scheduled_content"].append(_gbp_post(tag, bid, name, handle, index, now))

    # ---------------------------------------------------------------- objectives
    metrics = ["followers", "engagement_rate", "posts_per_week"]
    n_obj = int(rng.integers(1, 4))
    chosen = [metrics[int(i)] for i in rng.permutation(3)[:n_obj]]
    posts = out["content_posts"]
    pm = out["post_metrics"]
    for j, metric in enumerate(chosen, 1):
        start = today - timedelta(days=int(rng.integers(7, min(60, days) + 7)))
        deadline = today + timedelta(days=int(rng.integers(14, 181)))
        platform = "instagram" if "instagram" in social else social[0]
        if metric == "followers":
            off = min(max((start - start_day).days, 0), days - 1)
            baseline = float(followers[platform][off])
            target = float(round(baseline * (1 + rng.uniform(0.1, 0.5))))
        elif metric == "engagement_rate":
            eng = [
                (m["likes"] + m["comments"] + m["shares"] + m["saves"], m["impressions"])
                for m, p_ in zip(pm, posts, strict=True)
                if p_["platform"] == platform
            ]
            imp = sum(e[1] for e in eng)
            baseline = round(sum(e[0] for e in eng) / imp, 4) if imp else 0.03
            target = round(baseline * rng.uniform(1.15, 1.5), 4)
        else:
            platform = None
            baseline = round(len(posts) / max(days / 7, 1), 1)
            target = float(math.ceil(baseline + rng.uniform(1, 5)))
        out["brand_objectives"].append(
            {
                "id": f"obj-{tag}-{j}",
                "brand_id": bid,
                "metric": metric,
                "platform": platform,
                "baseline_value": baseline,
                "target_value": target,
                "start_date": start,
                "deadline": deadline,
                "created_at": datetime.combine(start, datetime.min.time(), UTC),
            }
        )
    return out


def _one_body(rng, industry: IndustryProfile, platform: str, fmt: str, handle: str) -> str:
    word = int(rng.integers(len(_POWER_WORDS))) if rng.random() < POWER_PHRASE_PROBABILITY else -1
    flags = rng.random((1, len(_PLANTED_TAGS))) < _PLANTED_TAG_PROB
    return _bodies(rng, industry, [platform], [fmt], handle, [word], flags)[0]


def _bodies(rng, industry, platforms, fmts, handle, words, flags) -> list[str]:
    """Post texts: [power phrase] sentence [giveaway line] [CTA or link] hashtags."""
    n = len(platforms)
    variant = rng.integers(0, 2, n).tolist()
    sentence = rng.integers(0, len(industry.sentences), n).tolist()
    item = rng.integers(0, len(industry.items), n).tolist()
    cta = rng.integers(0, len(CTAS), n).tolist()
    x_cta = (rng.random(n) < 0.3).tolist()
    link_no = rng.integers(100, 1000, n).tolist()
    n_tags = rng.integers(1, 4, n).tolist()
    pool = industry.hashtags
    tag_order = np.argsort(rng.random((n, len(pool))), axis=1).tolist()
    flag_rows = np.asarray(flags, dtype=bool).tolist()
    out = []
    for i in range(n):
        platform, fmt, word, f = platforms[i], fmts[i], words[i], flag_rows[i]
        parts = []
        if word >= 0:
            parts.append(POWER_PHRASES[_POWER_WORDS[word]][variant[i]])
        parts.append(industry.sentences[sentence[i]].replace("{item}", industry.items[item[i]]))
        if f[0]:
            parts.append(GIVEAWAY_LINE)
        if fmt == "link":
            parts.append(f"https://example.com/{handle}/{link_no[i]}")
        elif platform != "x" or x_cta[i]:
            parts.append(CTAS[cta[i]])
        k = min(n_tags[i], 2) if platform == "x" else n_tags[i]
        tags = [pool[j] for j in tag_order[i][:k]]
        tags += [tg for tg, on in zip(_PLANTED_TAGS, f, strict=True) if on]
        parts.append(" ".join(tags))
        out.append(" ".join(parts))
    return out


def _posts(rng, out, tag, bid, industry, tz, social, followers, now, days, start_day,
           handle) -> None:  # fmt: skip
    """Published posts and their metrics for one brand (all platforms, vectorised)."""
    now_s = int((now - _EPOCH).total_seconds())
    window_s = now_s - days * 86400
    local_today = now.astimezone(ZoneInfo(tz)).date()
    first_local = np.datetime64(local_today - timedelta(days=days), "D")

    plat_idx_parts, day_parts = [], []
    activity = math.exp(rng.normal(0, 0.25))
    for k, p in enumerate(social):
        per_day = rng.poisson(PLATFORM_POSTS_PER_DAY[p] * activity, size=days + 1)
        n = int(per_day.sum())
        plat_idx_parts.append(np.full(n, k, dtype=np.int64))
        day_parts.append(np.repeat(np.arange(days + 1), per_day))
    plat_idx = np.concatenate(plat_idx_parts)
    day_idx = np.concatenate(day_parts)
    n = len(plat_idx)
    if n == 0:
        return
    hour = rng.choice(24, size=n, p=POSTING_HABIT)
    second_of_hour = rng.integers(0, 3600, size=n)
    local_naive = (first_local + day_idx.astype("timedelta64[D]")).astype("datetime64[s]") + (
        hour * 3600 + second_of_hour
    ).astype("timedelta64[s]")
    idx = pd.DatetimeIndex(local_naive.astype("datetime64[ns]")).tz_localize(
        tz, ambiguous=np.zeros(n, dtype=bool), nonexistent="shift_forward"
    )
    utc_s = idx.tz_convert("UTC").tz_localize(None).values.astype("datetime64[s]").astype(np.int64)
    local_back = idx.tz_convert(tz)
    local_hour = np.asarray(local_back.hour, dtype=np.int64)
    local_wd = np.asarray(local_back.day_of_week, dtype=np.int64)

    # Per-post draws (all n drawn, then filtered to the window, so the stream is stable).
    fmt_idx = np.empty(n, dtype=np.int64)
    for k, p in enumerate(social):
        mask = plat_idx == k
        names = list(FORMAT_PROBABILITIES[p])
        probs = np.array(list(FORMAT_PROBABILITIES[p].values()))
        choice = rng.choice(len(names), size=int(mask.sum()), p=probs / probs.sum())
        fmt_idx[mask] = np.array([_FORMAT_INDEX[f] for f in names])[choice]
    word = np.where(
        rng.random(n) < POWER_PHRASE_PROBABILITY, rng.integers(0, len(_POWER_WORDS), n), -1
    )
    flags = rng.random((n, len(_PLANTED_TAGS))) < _PLANTED_TAG_PROB
    noise = rng.lognormal(-(ENGAGEMENT_NOISE_SIGMA**2) / 2, ENGAGEMENT_NOISE_SIGMA, n)
    imp_noise = rng.lognormal(-(0.3**2) / 2, 0.3, n)
    reach_frac = rng.uniform(0.6, 0.9, n)
    brand_effect = math.exp(rng.normal(-(BRAND_EFFECT_SIGMA**2) / 2, BRAND_EFFECT_SIGMA))

    keep = (utc_s >= window_s) & (utc_s < now_s)
    order = np.flatnonzero(keep)
    order = order[np.lexsort((plat_idx[order], utc_s[order]))]
    plat_idx, utc_s, local_hour, local_wd = (
        plat_idx[order],
        utc_s[order],
        local_hour[order],
        local_wd[order],
    )
    fmt_idx, word, flags = fmt_idx[order], word[order], flags[order]
    noise, imp_noise, reach_frac = noise[order], imp_noise[order], reach_frac[order]
    n = len(order)
    if n == 0:
        return

    plat_er = np.array([PLATFORM_ENGAGEMENT_FACTOR[p] for p in social])[plat_idx]
    plat_reach = np.array([PLATFORM_REACH_FRACTION[p] for p in social])[plat_idx]
    tag_mult = np.prod(np.where(flags, _PLANTED_TAG_MULT, 1.0), axis=1)
    rate = (
        industry.base_engagement_rate * plat_er * brand_effect * _HOUR_ARR[local_hour]
        * _WEEKDAY_ARR[local_wd] * _FORMAT_ARR[fmt_idx] * tag_mult * _POWER_MULT[word] * noise
    )  # fmt: skip
    rate = np.minimum(rate, 0.6)
    start_epoch_day = (start_day - _EPOCH.date()).days
    day_off = np.clip(utc_s // 86400 - start_epoch_day, 0, days - 1)
    fol = np.empty(n, dtype=float)
    for k, p in enumerate(social):
        mask = plat_idx == k
        fol[mask] = followers[p][day_off[mask]]
    age_h = (now_s - utc_s) / 3600.0
    maturity = 1.0 - np.exp(-age_h / 12.0)
    impressions = np.round(fol * plat_reach * imp_noise * maturity).astype(np.int64)
    engagements = rng.poisson(impressions * rate)
    split = np.zeros((n, 4), dtype=np.int64)
    for k, p in enumerate(social):
        mask = plat_idx == k
        if mask.any():
            split[mask] = rng.multinomial(engagements[mask], ENGAGEMENT_SPLIT[p])
    fmt_names = np.array(_FORMATS)[fmt_idx]
    ctr = np.where(fmt_names == "link", CLICK_RATE["link"], 0.004)
    clicks = rng.poisson(impressions * ctr)
    vv_rate = np.select(
        [fmt_names == "video", fmt_names == "reel"],
        [VIDEO_VIEW_RATE["video"], VIDEO_VIEW_RATE["reel"]],
        0.0,
    )
    video_views = rng.binomial(impressions, vv_rate)
    reach = np.round(impressions * reach_frac).astype(np.int64)

    # External ids: per account, a random base plus the publication sequence number.
    published = _secs_to_dt(utc_s)
    seq = np.zeros(n, dtype=np.int64)
    ext_base: dict[int, int] = {}
    for k, p in enumerate(social):
        mask = plat_idx == k
        seq[mask] = np.arange(int(mask.sum()))
        if p == "facebook":
            ext_base[k] = int(rng.integers(10**15, 9 * 10**15))
        elif p == "instagram":
            ext_base[k] = int(rng.integers(17_800_000_000_000_000, 18_100_000_000_000_000))
        else:
            ext_base[k] = int(rng.integers(1_600_000_000_000_000_000, 1_900_000_000_000_000_000))
    accounts = {a["platform"]: a["external_account_id"] for a in out["platform_accounts"]}

    metric_date = now.date()
    plat_list = plat_idx.tolist()
    seq_list = seq.tolist()
    fmt_list = fmt_names.tolist()
    word_list = word.tolist()
    bodies = _bodies(
        rng, industry, [social[k] for k in plat_list], fmt_list, handle, word_list, flags
    )
    posts = out["content_posts"]
    metrics = out["post_metrics"]
    cols = zip(
        impressions.tolist(), reach.tolist(), split[:, 0].tolist(), split[:, 1].tolist(),
        split[:, 2].tolist(), split[:, 3].tolist(), clicks.tolist(), video_views.tolist(),
        strict=True,
    )  # fmt: skip
    for i, (imp, rch, lk, cm, sh, sv, cl, vv) in enumerate(cols):
        k = plat_list[i]
        p = social[k]
        num = ext_base[k] + seq_list[i]
        if p == "facebook":
            ext = f"{accounts[p]}_{num}"
            link = f"https://www.facebook.com/{accounts[p]}/posts/{num}"
        elif p == "instagram":
            ext = str(num)
            link = f"https://www.instagram.com/{handle}/p/{num}/"
        else:
            ext = str(num)
            link = f"https://x.com/{handle}/status/{num}"
        pid = f"post-{tag}-{_PLATFORM_ABBR[p]}-{seq_list[i] + 1:05d}"
        posts.append(
            {
                "id": pid,
                "brand_id": bid,
                "platform": p,
                "external_post_id": ext,
                "body": bodies[i],
                "format": fmt_list[i],
                "published_at": published[i],
                "permalink": link,
                "collected_at": now,
            }
        )
        metrics.append(
            {
                "post_id": pid,
                "metric_date": metric_date,
                "impressions": imp,
                "reach": rch,
                "likes": lk,
                "comments": cm,
                "shares": sh,
                "saves": sv,
                "clicks": cl,
                "video_views": vv,
                "collected_at": now,
            }
        )
