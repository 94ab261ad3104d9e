"""The learning engine's statistics: which times, formats, topics, words and hashtags work.

Pure logic (pandas in, pandas out). For every brand and platform:

1. **Engagement rate per post**: ``(likes + comments + shares + saves) / reach``, falling back
   to impressions when reach is missing (see ``core.analytics.engagement_rate``).
2. **Normalised per account**: each post's rate is divided by the median rate of its
   (brand, platform) account, so a big account does not drown a small one and an hour with
   many posts does not win by volume: every pattern is judged on the *mean* normalised
   engagement of its posts, never on totals.
3. **Lift**: mean normalised engagement of the posts showing a pattern divided by the
   baseline, the mean normalised engagement of all the account's posts.
4. **Confidence** from the number of posts behind the pattern (docs/architecture.md tiers:
   100+ -> 0.9, 30-99 -> 0.7, 10-29 -> 0.5, under 10 -> 0.3).
5. **Significance**: a Welch t-test of the pattern's posts against the account's other
   posts, two-sided, corrected for multiple comparisons with Benjamini-Hochberg over every
   pattern tested for that account (``p_value`` holds the adjusted value). A big sample
   with no real effect gets a large p-value and is not recommended.

A pattern is *recommended* only when confidence > 0.5, lift > 1 and adjusted p < ``ALPHA``.

Everything is vectorised over all accounts at once (group sums, not per-pattern loops), so a
million posts are learned in about the time it takes to read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np
import pandas as pd

from marba_dagster.core.analytics import add_engagement_rate

ALPHA = 0.05
MIN_RECOMMEND_CONFIDENCE = 0.5  # strictly greater than this (docs/architecture.md)

PATTERN_TYPES = ("best_posting_time", "content_format", "topic", "power_word", "hashtag")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Stored only from this many posts up (keeps the table meaningful and small): single hours
# and formats always (so a small brand still sees its low-confidence picture), weekday-hour
# cells only where the data supports them, words and hashtags from a handful of posts.
MIN_POINTS = {
    "hour": 2,
    "weekday_hour": 10,
    "content_format": 2,
    "topic": 3,
    "power_word": 3,
    "hashtag": 3,
}
# At most this many word-like patterns (topics, power words, hashtags) kept per account and
# type, best lift first among the most supported.
MAX_TEXT_PATTERNS = 25

# Words marketers reach for to prompt action or emotion; matched as whole lower-case words.
POWER_WORDS = frozenset(
    [
        "free",
        "new",
        "now",
        "today",
        "limited",
        "exclusive",
        "save",
        "sale",
        "discount",
        "offer",
        "deal",
        "bonus",
        "instant",
        "easy",
        "proven",
        "secret",
        "discover",
        "guaranteed",
        "fresh",
        "best",
        "ultimate",
        "amazing",
        "love",
        "win",
        "giveaway",
        "last",
        "hurry",
        "only",
        "introducing",
        "announcing",
        "finally",
        "unlock",
        "boost",
        "quick",
        "simple",
        "essential",
        "premium",
        "special",
        "hot",
        "trending",
        "must",
        "favorite",
        "favourite",
        "perfect",
        "delicious",
        "official",
        "launch",
    ]
)

_HASHTAG_RE = re.compile(r"#(\w+)", re.UNICODE)
# A hashtag (group 1) or a power word (group 2), case-insensitive, in one pass.
_TAG_OR_POWER_RE = re.compile(
    r"#(\w+)|(?<![\w'#])(" + "|".join(sorted(POWER_WORDS, key=len, reverse=True)) + r")(?![\w'])"
)


def confidence_for(data_points: int | np.ndarray) -> float | np.ndarray:
    """The tiers of docs/architecture.md.

    100+ -> 0.9, 30-99 -> 0.7, 10-29 -> 0.5, under 10 -> 0.3.
    """
    n = np.asarray(data_points)
    out = np.select([n >= 100, n >= 30, n >= 10], [0.9, 0.7, 0.5], default=0.3)
    return float(out) if out.ndim == 0 else out


def is_recommendable(confidence: float, lift: float, p_value: float | None) -> bool:
    return (
        confidence > MIN_RECOMMEND_CONFIDENCE
        and lift > 1.0
        and p_value is not None
        and not np.isnan(p_value)
        and p_value < ALPHA
    )


@dataclass(frozen=True)
class LearningInput:
    """What the engine needs besides the posts: each brand's timezone and topic keywords."""

    timezones: Mapping[str, str]
    keywords: Mapping[str, Iterable[str]]


POST_COLUMNS = (
    "brand_id",
    "platform",
    "post_id",
    "published_at",
    "format",
    "body",
    "impressions",
    "reach",
    "likes",
    "comments",
    "shares",
    "saves",
)

# What identifies a pattern and how strong it is: what readers of learning_patterns select.
PATTERN_SUMMARY_COLUMNS = (
    "brand_id",
    "platform",
    "pattern_type",
    "pattern_key",
    "lift",
    "data_points",
    "confidence",
)
PATTERN_COLUMNS = [
    *PATTERN_SUMMARY_COLUMNS,
    "p_value",
    "p_raw",
    "mean_engagement",
    "baseline_engagement",
    "mean_normalised",
    "recommended",
]


def _empty_patterns() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in PATTERN_COLUMNS})


def normalise_engagement(posts: pd.DataFrame) -> pd.DataFrame:
    """A slim frame of the posts with a rate: brand_id, platform, published_at, format, body,
    ``engagement_rate``, ``g`` (account code) and ``norm`` (rate / account median).

    Posts with neither reach nor impressions carry no rate and are dropped. Only the needed
    columns are kept (no copy of the whole input: a million posts are big).
    """
    rated = add_engagement_rate(
        posts[["reach", "impressions", "likes", "comments", "shares", "saves"]]
    )
    er_all = rated["engagement_rate"].to_numpy(dtype="float64")
    keep = ~np.isnan(er_all)
    cols = ["brand_id", "platform", "published_at", "format", "body"]
    df = posts[cols] if keep.all() else posts.loc[keep, cols]
    df = df.reset_index(drop=True)
    df = df.assign(engagement_rate=er_all[keep])
    if df.empty:
        return df.assign(g=pd.Series(dtype="int64"), norm=pd.Series(dtype="float64"))
    g = df.groupby(["brand_id", "platform"], sort=True, observed=True).ngroup().to_numpy()
    er = df["engagement_rate"].to_numpy(dtype="float64")
    by = pd.Series(er).groupby(g)
    med = by.transform("median").to_numpy(dtype="float64")
    mean = by.transform("mean").to_numpy(dtype="float64")
    scale = np.where(med > 0, med, mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.where(scale > 0, er / scale, 1.0)  # an account with no engagement at all
    return df.assign(g=g, norm=norm)


def _local_time_keys(
    df: pd.DataFrame, timezones: Mapping[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Local hour and weekday (0 = Monday) of each post in its brand's timezone."""
    hours = np.zeros(len(df), dtype="int16")
    weekdays = np.zeros(len(df), dtype="int16")
    published = pd.to_datetime(df["published_at"], utc=True)
    tz = df["brand_id"].map(lambda b: timezones.get(b) or "UTC").to_numpy()
    for zone in pd.unique(tz):
        mask = tz == zone
        try:
            local = published[mask].dt.tz_convert(zone)
        except Exception:  # an unknown zone name: fall back to UTC rather than lose the brand
            local = published[mask]
        hours[mask] = local.dt.hour.to_numpy()
        weekdays[mask] = local.dt.day_of_week.to_numpy()
    return hours, weekdays


class _Vocabulary:
    """(kind, key) pairs and their integer codes."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.keys: list[str] = []

    def add(self, kind: str, keys) -> int:
        """Append ``keys`` of ``kind``; returns the code of the first one."""
        base = len(self.keys)
        self.kinds.extend([kind] * len(keys))
        self.keys.extend(str(k) for k in keys)
        return base

    def __len__(self) -> int:
        return len(self.keys)


def _occurrences(
    df: pd.DataFrame, inp: LearningInput
) -> tuple[np.ndarray, np.ndarray, _Vocabulary]:
    """(post row, pattern code) pairs, deduplicated, and the vocabulary of pattern codes.

    Integer codes keep memory flat: a million posts give several million pairs.
    """
    n = len(df)
    rows = np.arange(n, dtype=np.int64)
    vocab = _Vocabulary()
    hours, weekdays = _local_time_keys(df, inp.timezones)
    hour_base = vocab.add("hour", [f"{h:02d}" for h in range(24)])
    wd_base = vocab.add(
        "weekday_hour", [f"{WEEKDAYS[d]}-{h:02d}" for d in range(7) for h in range(24)]
    )
    fmt_codes, fmt_values = pd.factorize(df["format"].fillna("text").astype(str))
    fmt_base = vocab.add("content_format", list(fmt_values))
    # One hour, one weekday-hour and one format per post: unique by construction.
    fixed_rows = np.concatenate([rows, rows, rows])
    fixed_codes = np.concatenate(
        [
            hour_base + hours.astype(np.int64),
            wd_base + (weekdays.astype(np.int64) * 24 + hours),
            fmt_base + fmt_codes.astype(np.int64),
        ]
    )
    all_rows: list[np.ndarray] = []
    all_codes: list[np.ndarray] = []

    def add_matches(kind: str, match_rows: np.ndarray, keys: list[str], prefix: str = "") -> None:
        if not len(match_rows):
            return
        codes, uniques = pd.factorize(pd.Series(keys, dtype=object))  # already lower-case
        base = vocab.add(kind, [prefix + u for u in uniques])
        all_rows.append(np.asarray(match_rows, dtype=np.int64))
        all_codes.append(base + codes.astype(np.int64))

    # Text patterns: each regex scans one long string (bodies joined by newlines, which no
    # pattern can cross) instead of a million short ones; match offsets map back to posts.
    bodies = [b.replace("\n", " ") if isinstance(b, str) else "" for b in df["body"].tolist()]
    pos, tags, words = _scan(bodies, _TAG_OR_POWER_RE)
    if len(pos):
        is_tag = np.fromiter((t != "" for t in tags), dtype=bool, count=len(tags))
        add_matches("hashtag", pos[is_tag], [t for t in tags if t], prefix="#")
        add_matches(
            "power_word", pos[~is_tag], [w for t, w in zip(tags, words, strict=True) if not t]
        )
    del pos, tags, words
    t_rows, t_keys = _topic_occurrences(df, bodies, inp.keywords)
    del bodies
    add_matches("topic", t_rows, t_keys)

    if all_rows:  # a word or tag said twice in one post counts once
        text_pairs = pd.unique(np.concatenate(all_rows) * len(vocab) + np.concatenate(all_codes))
        fixed_rows = np.concatenate([fixed_rows, text_pairs // len(vocab)])
        fixed_codes = np.concatenate([fixed_codes, text_pairs % len(vocab)])
    return fixed_rows, fixed_codes, vocab


def _scan(bodies: list[str], regex: re.Pattern, rows: np.ndarray | None = None):
    """(row of each match, group 1s, group 2s) of ``regex`` over ``bodies``."""
    if not bodies:
        return np.zeros(0, dtype=np.int64), [], []
    text = "\n".join(bodies).lower()  # one C pass; the patterns are lower-case
    lengths = np.fromiter((len(b) + 1 for b in bodies), dtype=np.int64, count=len(bodies))
    starts = np.cumsum(lengths) - lengths
    positions, g1, g2 = [], [], []
    if regex.groups >= 2:
        for m in regex.finditer(text):
            positions.append(m.start())
            a, b = m.group(1, 2)
            g1.append(a or "")
            g2.append(b or "")
    else:
        for m in regex.finditer(text):
            positions.append(m.start())
            g1.append(m.group(1))
    at = np.searchsorted(starts, np.asarray(positions, dtype=np.int64), side="right") - 1
    return (at if rows is None else rows[at]), g1, g2


def _topic_occurrences(
    df: pd.DataFrame, bodies: list[str], keywords: Mapping[str, Iterable[str]]
) -> tuple[np.ndarray, list[str]]:
    """Topics: the brand's own keywords (``brands.keywords``) mentioned in a post; for a brand
    without keywords, the terms with the highest TF-IDF weight across its posts."""
    rows_out: list[np.ndarray] = []
    keys_out: list[str] = []
    for brand, idx in df.groupby("brand_id", sort=False, observed=True).indices.items():
        texts = [bodies[i] for i in idx]
        terms = [str(k).strip().lower() for k in (keywords.get(brand) or []) if str(k).strip()]
        if not terms:
            terms = _tfidf_terms(pd.Series(texts, dtype=object).str.lower())
        if not terms:
            continue
        regex = _topic_regex(tuple(sorted(set(terms), key=lambda t: (-len(t), t))))
        rows, found, _ = _scan(texts, regex, np.asarray(idx))
        if len(rows):
            rows_out.append(rows)
            keys_out.extend(found)
    rows = np.concatenate(rows_out) if rows_out else np.zeros(0, dtype=np.int64)
    return rows, keys_out


@lru_cache(maxsize=4096)
def _topic_regex(terms: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in terms) + r")(?!\w)")


def _tfidf_terms(texts: pd.Series, top: int = 15) -> list[str]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = texts[texts.str.strip() != ""]
    if len(texts) < 5:
        return []
    vec = TfidfVectorizer(
        stop_words="english",
        ngram_range=(1, 2),
        min_df=3,
        token_pattern=r"(?u)\b[a-z][a-z]{2,}\b",
        max_features=2000,
    )
    try:
        matrix = vec.fit_transform(texts.str.replace(_HASHTAG_RE, " ", regex=True))
    except ValueError:  # empty vocabulary
        return []
    weights = np.asarray(matrix.sum(axis=0)).ravel()
    vocab = vec.get_feature_names_out()
    order = np.argsort(-weights)[:top]
    return [str(vocab[i]) for i in order if str(vocab[i]) not in POWER_WORDS]


def _benjamini_hochberg(p: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values within each group (NaN p-values count as 1)."""
    p = np.where(np.isnan(p), 1.0, p)
    frame = pd.DataFrame({"g": groups, "p": p, "i": np.arange(len(p))})
    frame = frame.sort_values(["g", "p"], kind="mergesort")
    rank = frame.groupby("g").cumcount().to_numpy() + 1
    m = frame.groupby("g")["p"].transform("size").to_numpy()
    raw = frame["p"].to_numpy() * m / rank
    frame["adj"] = raw
    # Enforce monotonicity: running minimum from the largest p downwards, per group.
    frame["adj"] = frame.iloc[::-1].groupby("g")["adj"].cummin().iloc[::-1]
    adj = np.empty(len(p))
    adj[frame["i"].to_numpy()] = np.minimum(frame["adj"].to_numpy(), 1.0)
    return adj


def _student_t():
    """scipy's Student t distribution, imported on first use: scipy.stats takes ~0.5 s to
    import, which every run worker would otherwise pay when it loads the definitions."""
    from scipy import stats

    return stats.t


def learn_patterns(posts: pd.DataFrame, inp: LearningInput) -> pd.DataFrame:
    """Patterns per (brand, platform) with lift, data points, confidence and p-value.

    ``posts``: one row per post with its latest metrics (``POST_COLUMNS``; ``published_at``
    in UTC). Returns ``PATTERN_COLUMNS``; ``pattern_type`` is one of ``PATTERN_TYPES`` and
    hours are keyed ``"18"``, weekday-hours ``"tue-18"``, hashtags with their ``#``.
    """
    if posts.empty:  # a brand without posts: nothing to learn, not an error
        return _empty_patterns()
    missing = [c for c in POST_COLUMNS if c not in posts.columns]
    if missing:
        raise ValueError(f"posts are missing columns: {', '.join(missing)}")
    df = normalise_engagement(posts).reset_index(drop=True)
    if df.empty:
        return _empty_patterns()

    occ_rows, occ_codes, vocab = _occurrences(df, inp)
    g_of_row = df["g"].to_numpy().astype(np.int64)
    y = df["norm"].to_numpy(dtype="float64")
    er = df["engagement_rate"].to_numpy(dtype="float64")
    # Sums per (account, pattern) with bincount over one integer key: no object columns.
    key = g_of_row[occ_rows] * len(vocab) + occ_codes
    inv, uniq = pd.factorize(key)  # hash-based: linear in the number of pairs
    yv = y[occ_rows]
    agg = pd.DataFrame(
        {
            "g": uniq // len(vocab),
            "code": uniq % len(vocab),
            "n": np.bincount(inv),
            "s": np.bincount(inv, weights=yv),
            "ss": np.bincount(inv, weights=yv * yv),
            "er_sum": np.bincount(inv, weights=er[occ_rows]),
        }
    )
    del key, inv, yv, occ_rows, occ_codes
    kinds_arr = np.asarray(vocab.kinds, dtype=object)
    keys_arr = np.asarray(vocab.keys, dtype=object)
    agg["kind"] = kinds_arr[agg["code"].to_numpy()]
    agg["key"] = keys_arr[agg["code"].to_numpy()]

    totals = (
        pd.DataFrame({"g": g_of_row, "y": y, "y2": y * y, "er": er})
        .groupby("g")
        .agg(N=("y", "size"), S=("y", "sum"), SS=("y2", "sum"), ER=("er", "sum"))
    )
    agg = agg.join(totals, on="g")

    n = agg["n"].to_numpy(dtype="float64")
    n2 = agg["N"].to_numpy(dtype="float64") - n
    s1, ss1 = agg["s"].to_numpy(), agg["ss"].to_numpy()
    s2 = agg["S"].to_numpy() - s1
    ss2 = agg["SS"].to_numpy() - ss1
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, m2 = s1 / n, s2 / n2
        v1 = np.maximum(ss1 - n * m1 * m1, 0.0) / (n - 1)
        v2 = np.maximum(ss2 - n2 * m2 * m2, 0.0) / (n2 - 1)
        se2 = v1 / n + v2 / n2
        t = (m1 - m2) / np.sqrt(se2)
        dof = se2**2 / ((v1 / n) ** 2 / (n - 1) + (v2 / n2) ** 2 / (n2 - 1))
        p = 2.0 * _student_t().sf(np.abs(t), dof)
        baseline = agg["S"].to_numpy() / agg["N"].to_numpy()
        lift = m1 / baseline
    # Too few posts on either side for a variance: untestable, never significant.
    p = np.where((n >= 2) & (n2 >= 2) & np.isfinite(p), p, np.nan)
    # Identical values on both sides (zero variance, equal means): no evidence of a difference.
    p = np.where((se2 == 0) & (m1 == m2), 1.0, p)
    p = np.where((se2 == 0) & (m1 != m2) & (n >= 2) & (n2 >= 2), 0.0, p)
    agg["p_raw"] = p
    agg["p_value"] = _benjamini_hochberg(p, agg["g"].to_numpy())
    agg["lift"] = np.where(np.isfinite(lift), lift, 1.0)
    agg["mean_normalised"] = m1
    agg["mean_engagement"] = agg["er_sum"] / agg["n"]
    agg["baseline_engagement"] = agg["ER"] / agg["N"]
    agg["data_points"] = agg["n"].astype("int64")
    agg["confidence"] = confidence_for(agg["data_points"].to_numpy())
    agg["recommended"] = (
        (agg["confidence"] > MIN_RECOMMEND_CONFIDENCE)
        & (agg["lift"] > 1.0)
        & (agg["p_value"] < ALPHA)
    )

    kind = agg["kind"].astype(str)
    min_points = kind.map(MIN_POINTS).astype(int)
    agg = agg[agg["data_points"] >= min_points].copy()
    kind = agg["kind"].astype(str)
    textual = kind.isin(["topic", "power_word", "hashtag"])
    if textual.any():
        ranked = agg[textual].sort_values(
            ["g", "kind", "recommended", "lift"], ascending=[True, True, False, False]
        )
        keep = ranked.groupby(["g", "kind"], observed=True).head(MAX_TEXT_PATTERNS).index
        agg = pd.concat([agg[~textual], agg.loc[keep]])
    kind = agg["kind"].astype(str)
    agg["pattern_type"] = kind.map(
        {"hour": "best_posting_time", "weekday_hour": "best_posting_time"}
    ).fillna(kind)

    accounts = df.groupby("g")[["brand_id", "platform"]].first()
    agg = agg.join(accounts, on="g")
    agg = agg.rename(columns={"key": "pattern_key"})
    out = agg[PATTERN_COLUMNS].sort_values(
        ["brand_id", "platform", "pattern_type", "lift"], ascending=[True, True, True, False]
    )
    return out.reset_index(drop=True)


def pattern_rows(patterns: pd.DataFrame, computed_at: datetime) -> list[dict]:
    """``learning_patterns`` rows for the database (JSON-safe values)."""
    if patterns.empty:
        return []
    p_val = patterns["p_value"].to_numpy(dtype="float64")
    p_raw = patterns["p_raw"].to_numpy(dtype="float64")
    mean_norm = patterns["mean_normalised"].to_numpy(dtype="float64")
    recommended = patterns["recommended"].to_numpy(dtype=bool)
    rows = []
    for i, (b, pl, pt, pk, lift, dp, conf, me, be) in enumerate(
        zip(
            patterns["brand_id"],
            patterns["platform"],
            patterns["pattern_type"],
            patterns["pattern_key"],
            patterns["lift"].astype(float),
            patterns["data_points"],
            patterns["confidence"].astype(float),
            patterns["mean_engagement"].astype(float),
            patterns["baseline_engagement"].astype(float),
            strict=True,
        )
    ):
        rows.append(
            {
                "brand_id": b,
                "platform": pl,
                "pattern_type": pt,
                "pattern_key": str(pk)[:120],
                "lift": round(lift, 6),
                "data_points": int(dp),
                "confidence": conf,
                "p_value": None if np.isnan(p_val[i]) else float(p_val[i]),
                "mean_engagement": round(me, 8),
                "baseline_engagement": round(be, 8),
                "details": {
                    "p_raw": None if np.isnan(p_raw[i]) else float(p_raw[i]),
                    "mean_normalised_engagement": round(float(mean_norm[i]), 6),
                    "recommended": bool(recommended[i]),
                    "test": "welch_t_two_sided_bh",
                },
                "computed_at": computed_at,
            }
        )
    return rows
