"""Publishing rules: which posts are due, lateness, backoff and what an outcome means.

Pure logic (no I/O). The one rule everything else follows: a post may be sent again only
when we *know* the platform never received it. Anything the platform may have applied
(a timeout after the request was written, a reset connection, a crash between its answer
and our commit, a lease that ran out) is ``unknown``: never retried automatically, shown to
a person. Failures before anything was sent are retried with backoff, at most
``MAX_ATTEMPTS`` attempts in all; permanent rejections fail with their reason.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from urllib.parse import urlsplit

from marba_dagster.core.durations import parse_duration
from marba_dagster.core.tokens import GRAPH_PLATFORMS, is_token_rejection

# The MARBA guide's window: a run publishes what is due up to five minutes ahead.
DUE_WINDOW = timedelta(minutes=5)
DEFAULT_MAX_LATENESS = timedelta(hours=24)
MAX_ATTEMPTS = 3
BASE_BACKOFF_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 30 * 60.0


class Outcome(str, Enum):  # noqa: UP042 - StrEnum would change str() and f"{member}"
    PUBLISHED = "published"
    RETRY = "retry"  # definitely not sent: safe to try again later
    UNKNOWN = "unknown"  # may have been applied: never retried automatically
    FAILED = "failed"  # permanent rejection
    RECONNECT = "reconnect"  # the token was rejected: failed, the account must reconnect


class Transport(str, Enum):  # noqa: UP042 - as Outcome
    """How a request ended when no HTTP answer came back."""

    CONNECT_FAILED = "connect_failed"  # refused, DNS, connect timeout: nothing sent
    POOL_TIMEOUT = "pool_timeout"  # never left the client: nothing sent
    WRITE_FAILED = "write_failed"  # partly written: may have been received
    READ_TIMEOUT = "read_timeout"  # written, no answer in time: may have been applied
    CONNECTION_LOST = "connection_lost"  # reset / closed after sending: may have been applied


NOT_SENT_TRANSPORT = {Transport.CONNECT_FAILED, Transport.POOL_TIMEOUT}

# Graph API error codes (developers.facebook.com/docs/graph-api/guides/error-handling):
# (Token codes 102 and 190, session / access token invalid: core.tokens.)
GRAPH_PERMISSION_CODES = {10, 200, 299}  # permission missing: the user must reconnect
# (9 with subcode 2207042: the Instagram account's content publishing limit.)
GRAPH_RATE_LIMIT_CODES = {4, 9, 17, 32, 613, 80001}  # throttled: request not applied
GRAPH_APP_RATE_LIMIT_CODES = {4}  # the app's limit (the others: the user's, the Page's)
GRAPH_TEMPORARY_CODES = {2}  # "Service temporarily unavailable": not applied, retry
GRAPH_DUPLICATE_CODES = {506}  # "Duplicate status message"
X_DUPLICATE_MARKERS = ("duplicate content",)


@dataclass(frozen=True)
class Classified:
    outcome: Outcome
    reason: str
    retry_after: float | None = None
    # A rate limit ("account" or "app"): the post waits, not failed and not counted.
    rate_scope: str | None = None


def classify_transport(kind: Transport, *, sent_is_harmless: bool = False) -> Classified:
    """A request that got no HTTP answer.

    ``sent_is_harmless``: the step creates nothing visible (an Instagram media container),
    so even a request that may have been applied is safe to repeat.
    """
    if kind in NOT_SENT_TRANSPORT:
        return Classified(Outcome.RETRY, f"not sent ({kind.value})")
    if sent_is_harmless:
        return Classified(Outcome.RETRY, f"{kind.value} on a step that publishes nothing")
    return Classified(Outcome.UNKNOWN, f"outcome unknown: {kind.value} after the request was sent")


def classify_http(
    platform: str,
    status: int,
    *,
    error_code: int | None = None,
    message: str = "",
    retry_after: float | None = None,
    sent_is_harmless: bool = False,
) -> Classified:
    """An HTTP error answer from a platform (``status`` >= 400)."""
    msg = (message or "").strip()[:300]
    label = f"HTTP {status}" + (f" (code {error_code})" if error_code is not None else "")
    detail = f"{label}: {msg}" if msg else label
    if status == 429 or (
        platform in ("facebook", "instagram") and error_code in GRAPH_RATE_LIMIT_CODES
    ):
        # Google's quotas (429 RESOURCE_EXHAUSTED) are per project: the app's.
        scope = (
            "app"
            if (platform in GRAPH_PLATFORMS and error_code in GRAPH_APP_RATE_LIMIT_CODES)
            or platform == "google_business"
            else "account"
        )
        return Classified(
            Outcome.RETRY, f"rate limited, not applied: {detail}", retry_after, rate_scope=scope
        )
    if is_token_rejection(status, error_code if platform in GRAPH_PLATFORMS else None):
        return Classified(
            Outcome.RECONNECT, f"access token rejected, reconnect the account: {detail}"
        )
    if platform == "google_business" and status == 403:
        return Classified(Outcome.RECONNECT, f"permission denied, reconnect the location: {detail}")
    if platform in ("facebook", "instagram") and error_code in GRAPH_PERMISSION_CODES:
        return Classified(Outcome.RECONNECT, f"permission missing, reconnect the account: {detail}")
    if platform in ("facebook", "instagram") and error_code in GRAPH_DUPLICATE_CODES:
        return Classified(Outcome.FAILED, f"duplicate post rejected by the platform: {detail}")
    if platform == "x" and status == 403 and any(m in msg.lower() for m in X_DUPLICATE_MARKERS):
        return Classified(Outcome.FAILED, f"duplicate post rejected by the platform: {detail}")
    if status == 503 or (
        platform in ("facebook", "instagram") and error_code in GRAPH_TEMPORARY_CODES
    ):
        # 503 Service Unavailable: the platform documents it as not processed (overloaded /
        # down); Graph code 2 is its "temporary issue, retry" error.
        return Classified(
            Outcome.RETRY, f"temporarily unavailable, not applied: {detail}", retry_after
        )
    if status >= 500:
        if sent_is_harmless:
            return Classified(
                Outcome.RETRY, f"server error on a step that publishes nothing: {detail}"
            )
        return Classified(Outcome.UNKNOWN, f"outcome unknown: server error after sending: {detail}")
    return Classified(Outcome.FAILED, f"rejected: {detail}")


def backoff_seconds(
    attempt: int,
    retry_after: float | None = None,
    *,
    base: float = BASE_BACKOFF_SECONDS,
    cap: float = MAX_BACKOFF_SECONDS,
    rng: random.Random | None = None,
) -> float:
    """Delay before attempt ``attempt + 1``: exponential with ±20% jitter, at least Retry-After."""
    exp = min(cap, base * (2 ** max(0, attempt - 1)))
    jitter = (rng or random).uniform(0.8, 1.2)
    delay = min(cap, exp * jitter)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, float(retry_after))
    return delay


def next_attempt_at(
    now: datetime, attempt: int, retry_after: float | None = None, **kw
) -> datetime:
    return now + timedelta(seconds=backoff_seconds(attempt, retry_after, **kw))


class DueDecision(str, Enum):  # noqa: UP042 - as Outcome
    PUBLISH = "publish"
    MISSED = "missed"
    NOT_YET = "not_yet"


def due_horizon(now: datetime, window: timedelta = DUE_WINDOW) -> datetime:
    """Posts scheduled at or before this instant are due in a run at ``now``."""
    return now + window


def missed_cutoff(now: datetime, max_lateness: timedelta = DEFAULT_MAX_LATENESS) -> datetime:
    """Posts scheduled before this instant are too late to go out: failed as missed."""
    return now - max_lateness


def decide(
    scheduled_at: datetime,
    now: datetime,
    *,
    next_attempt: datetime | None = None,
    max_lateness: timedelta = DEFAULT_MAX_LATENESS,
    window: timedelta = DUE_WINDOW,
) -> DueDecision:
    """What a run at ``now`` does with a ``scheduled`` post."""
    if scheduled_at < missed_cutoff(now, max_lateness):
        return DueDecision.MISSED
    if scheduled_at > due_horizon(now, window):
        return DueDecision.NOT_YET
    if next_attempt is not None and next_attempt > now:
        return DueDecision.NOT_YET
    return DueDecision.PUBLISH


def missed_reason(scheduled_at: datetime, now: datetime, max_lateness: timedelta) -> str:
    late = now - scheduled_at
    hours = late.total_seconds() / 3600
    return (
        f"missed: due at {scheduled_at.isoformat(timespec='seconds')}, {hours:.1f}h late "
        f"when the publisher reached it (maximum lateness {max_lateness.total_seconds() / 3600:g}h)"
    )


def lateness_seconds(scheduled_at: datetime, published_at: datetime) -> float:
    """How late a post went out (negative: early, inside the due window)."""
    return (published_at - scheduled_at).total_seconds()


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or now is None:
        return None
    return max(0.0, (when - now).total_seconds())


def parse_max_lateness(text: str) -> timedelta:
    """``"24h"``, ``"90m"``, ``"2d"`` or seconds as a number."""
    try:
        return parse_duration(text)
    except ValueError:
        try:
            parse_duration(str(text).lstrip("-"))
        except ValueError:
            raise ValueError(f"invalid maximum lateness {text!r}: use e.g. 24h, 90m, 2d") from None
        raise ValueError(f"maximum lateness must be positive, got {text!r}") from None


# ------------------------------------------------------------- what each platform accepts

# Caption / text limits (characters): Facebook Page post message 63,206; Instagram caption
# 2,200 (and 30 hashtags); X 280 weighted characters (``x_weighted_length``); Google
# Business Profile local post summary 1,500.
MAX_CHARS = {"facebook": 63_206, "instagram": 2_200, "x": 280, "google_business": 1_500}
INSTAGRAM_MAX_HASHTAGS = 30
# What the publisher can send per platform and format: (fewest, most) media URLs. A format
# not listed for a platform is refused, never sent as something else (as text).
FORMATS: dict[str, dict[str, tuple[int, int]]] = {
    "facebook": {"text": (0, 0), "link": (0, 0), "image": (1, 1)},
    "instagram": {"image": (1, 1), "carousel": (2, 10), "video": (1, 1), "reel": (1, 1)},
    "x": {"text": (0, 0), "link": (0, 0), "image": (1, 4), "video": (1, 1)},
    "google_business": {"text": (0, 0), "link": (0, 0), "image": (1, 1)},
}
# Formats whose text may be empty (the media carries the post).
CAPTION_OPTIONAL = {"instagram"}

# X counts text as twitter-text v3 does: NFC-normalised code points in these ranges weigh
# 1, every other code point (CJK, emoji, ...) 2, and every URL 23 (its t.co length). An
# emoji sequence joined by ZWJ counts each code point, so the count errs on the long side.
X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
X_URL_LENGTH = 23
_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w&])#\w+")
_PRIVATE_NAMES = ("localhost", ".localhost", ".local", ".internal", ".home.arpa")


@dataclass(frozen=True)
class Violation:
    """A rule a post breaks: ``rule`` names it (``x.length``), ``detail`` says how."""

    rule: str
    detail: str

    def reason(self) -> str:
        return f"invalid post ({self.rule}): {self.detail}"


def x_weighted_length(text: str) -> int:
    """The length X counts against its 280 (twitter-text v3 weighting, URLs as 23)."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    pos = 0
    for m in _URL.finditer(text):
        total += _weigh(text[pos : m.start()]) + X_URL_LENGTH
        pos = m.end()
    return total + _weigh(text[pos:])


def _weigh(text: str) -> int:
    return sum(1 if any(lo <= ord(c) <= hi for lo, hi in X_LIGHT_RANGES) else 2 for c in text)


def hashtag_count(text: str) -> int:
    return len(_HASHTAG.findall(text))


def media_url_problem(
    url: object, allowed_hosts: frozenset[tuple[str, int]] = frozenset()
) -> str | None:
    """Why a media URL cannot be handed to a platform (None if it can): https only, a host
    that is a public name or address. ``allowed_hosts`` ((host, port) pairs) are exempt
    (a local media server for the sandbox and the demo)."""
    if not isinstance(url, str) or not url.strip():
        return f"{url!r} is not a URL"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return f"{_short(url)} is not a valid URL"
    host = (parts.hostname or "").rstrip(".").lower()
    scheme = parts.scheme.lower()
    default_port = 443 if scheme == "https" else 80
    if scheme in ("http", "https") and (host, port or default_port) in allowed_hosts:
        return None
    if scheme != "https":
        return f"{_short(url)}: only https media URLs are accepted, not {scheme or 'no'} scheme"
    if not host:
        return f"{_short(url)} has no host"
    if parts.username or parts.password:
        return f"{_short(url)}: credentials in a media URL are refused"
    if host == "localhost" or host.endswith(_PRIVATE_NAMES):
        return f"{_short(url)}: a local host name is refused"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not ip.is_global or ip.is_multicast:
        return f"{_short(url)}: a private or reserved address is refused"
    return None


def _short(url: object) -> str:
    text = str(url)
    return text if len(text) <= 120 else text[:117] + "..."


def validate_post(
    platform: str,
    body: object,
    media_urls: object,
    fmt: object,
    *,
    options: object = None,
    allowed_media_hosts: frozenset[tuple[str, int]] = frozenset(),
) -> list[Violation]:
    """Every rule the post breaks before anything is sent (empty: it can go out).
    ``options``: ``publish_options`` (Google Business post type, event, offer, CTA)."""
    formats = FORMATS.get(platform)
    if formats is None:
        return [Violation("platform", f"publishing to {platform!r} is not supported")]
    out: list[Violation] = []
    if not isinstance(media_urls, (list, tuple)):
        out.append(Violation("media.shape", "media_urls must be a list of URLs"))
        media: list = []
    else:
        media = list(media_urls)
    if platform == "instagram" and not media:
        out.append(
            Violation(
                "instagram.media",
                "Instagram posts need an image or a video (media_urls is empty)",
            )
        )
    elif fmt not in formats:
        out.append(
            Violation(
                f"{platform}.format",
                f"format {fmt!r} cannot be published to {platform} "
                f"(supported: {', '.join(sorted(formats))})",
            )
        )
    else:
        lo, hi = formats[fmt]
        if not lo <= len(media) <= hi:
            want = f"{lo}" if lo == hi else f"{lo} to {hi}"
            out.append(
                Violation(
                    f"{platform}.media_count",
                    f"a {platform} {fmt} post takes {want} media URL(s), got {len(media)}",
                )
            )
    for url in media:
        problem = media_url_problem(url, allowed_media_hosts)
        if problem:
            out.append(Violation("media.url", problem))
    if not isinstance(body, str):
        return out + [Violation("body.shape", "the post text is not a string")]
    limit = MAX_CHARS[platform]
    length = x_weighted_length(body) if platform == "x" else len(body)
    if length > limit:
        unit = "weighted characters" if platform == "x" else "characters"
        out.append(
            Violation(
                f"{platform}.length",
                f"the text is {length:,} {unit}, {platform} allows {limit:,}",
            )
        )
    topic = options.get("topic_type", "STANDARD") if isinstance(options, dict) else "STANDARD"
    needs_text = (
        platform not in CAPTION_OPTIONAL
        and (platform != "google_business" or topic == "STANDARD")
        and (platform != "x" or not media)  # an X post may be media alone
    )
    if not body.strip() and needs_text:
        out.append(Violation(f"{platform}.text", f"a {platform} post needs text"))
    if platform == "google_business":
        out += gbp_post_problems(options, allowed_media_hosts)
    if platform == "instagram" and hashtag_count(body) > INSTAGRAM_MAX_HASHTAGS:
        out.append(
            Violation(
                "instagram.hashtags",
                f"{hashtag_count(body)} hashtags, Instagram allows {INSTAGRAM_MAX_HASHTAGS}",
            )
        )
    return out


# ------------------------------------------------------------------ publishing limits

# Per account (a Page, an Instagram account, an X user, a Business Profile location):
# Instagram's content publishing limit is 100 API-published posts per account in a moving
# 24 hours (GET /{ig-user-id}/content_publishing_limit reports it); X limits POST /2/tweets
# per user per 15 minutes (100 here, as on its paid tiers; the free tier allows far less);
# Facebook Pages: 200 posts an hour, the Graph platform limit of 200 calls per user per hour
# (Page calls are otherwise metered by the Business Use Case headers, honoured as they come);
# Google Business Profile: 100 local posts per location per day (a guard; the API's quota is
# per project, honoured through 429).
DEFAULT_ACCOUNT_LIMITS = "instagram=100/24h; x=100/15m; facebook=200/1h; google_business=100/24h"
# Per app (every account of the platform together): X's per-app POST /2/tweets limit
# (10,000 per 24 hours on the Pro tier). Graph and Google meter their apps themselves: their
# usage headers and 429s are honoured.
DEFAULT_APP_LIMITS = "x=10000/24h"
# Graph's X-App-Usage reaching 100% gives no reset time: Meta meters it over a rolling hour.
APP_USAGE_COOLDOWN_SECONDS = 600.0
# A 429 or a Graph throttling code with no wait given: wait this long before that account
# (or app) is tried again.
DEFAULT_THROTTLE_SECONDS = 60.0


@dataclass(frozen=True)
class Window:
    """At most ``posts`` sends in any ``seconds``."""

    posts: int
    seconds: float

    def label(self) -> str:
        s = self.seconds
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if s >= size and s % size == 0:
                return f"{self.posts}/{int(s // size)}{unit}"
        return f"{self.posts}/{s:g}s"


def parse_limits(text: str, platforms: Sequence[str]) -> dict[str, tuple[Window, ...]]:
    """``"instagram=100/24h; x=100/15m,300/3h; facebook=none"`` -> windows per platform
    (``none`` or an empty value: no limit). Every platform must be one of ``platforms``."""
    out: dict[str, tuple[Window, ...]] = {}
    for raw in (text or "").split(";"):
        item = raw.strip()
        if not item:
            continue
        name, sep, spec = item.partition("=")
        name, spec = name.strip().lower(), spec.strip().lower()
        if not sep or name not in platforms:
            raise ValueError(
                f"{item!r}: expected platform=N/period with a platform among {', '.join(platforms)}"
            )
        windows = []
        for part in spec.split(","):
            part = part.strip()
            if part in ("", "none"):
                continue
            count, slash, period = part.partition("/")
            try:
                posts = int(count)
                seconds = parse_duration(period).total_seconds() if slash else -1
            except ValueError:
                posts, seconds = -1, -1
            if posts < 1 or seconds <= 0:
                raise ValueError(f"{part!r} for {name}: expected N/period, e.g. 100/24h, 50/15m")
            windows.append(Window(posts, seconds))
        out[name] = tuple(windows)
    return out


def limit_until(nth_newest_send: datetime | None, window: Window) -> datetime | None:
    """When a window frees a place: ``nth_newest_send`` is the ``window.posts``-th newest
    send inside the window (None: fewer sends than the limit, a send may go now)."""
    if nth_newest_send is None:
        return None
    return nth_newest_send + timedelta(seconds=window.seconds)


@dataclass(frozen=True)
class RateState:
    """What a platform's answer headers say about sending more: the account (or the whole
    app) must wait until the given instant; None when nothing is exhausted."""

    account_until: datetime | None = None
    app_until: datetime | None = None
    why: str = ""


def _epoch(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC) if value else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _usage_json(value: str | None) -> object:
    try:
        return json.loads(value) if value else None
    except ValueError:
        return None


def _percent(entry: object) -> float:
    if not isinstance(entry, dict):
        return 0.0
    vals = [entry.get(k) for k in ("call_count", "total_cputime", "total_time")]
    return max([float(v) for v in vals if isinstance(v, (int, float))] or [0.0])


def rate_state(platform: str, headers: Mapping[str, str], now: datetime) -> RateState:
    """Rate-limit headers of a platform's answer (lower-case names), success or error.

    X: ``x-rate-limit-remaining: 0`` with ``x-rate-limit-reset`` (epoch seconds) exhausts
    the user's window; ``x-app-limit-24hour-remaining: 0`` with its reset the app's.
    Graph: ``x-business-use-case-usage`` (per business object: ``call_count``,
    ``total_cputime``, ``total_time`` in percent and ``estimated_time_to_regain_access`` in
    minutes) at 100% or with a wait blocks the account; ``x-app-usage`` at 100% the app.
    """
    h = {k.lower(): v for k, v in headers.items()}
    account = app = None
    why = []
    if platform == "x":
        if h.get("x-rate-limit-remaining", "").strip() == "0":
            account = _epoch(h.get("x-rate-limit-reset"))
            if account:
                why.append("X user limit exhausted (x-rate-limit-remaining: 0)")
        if h.get("x-app-limit-24hour-remaining", "").strip() == "0":
            app = _epoch(h.get("x-app-limit-24hour-reset"))
            if app:
                why.append("X app 24-hour limit exhausted")
    elif platform in GRAPH_PLATFORMS:
        buc = _usage_json(h.get("x-business-use-case-usage"))
        if isinstance(buc, dict):
            for entries in buc.values():
                for e in entries if isinstance(entries, list) else [entries]:
                    wait = e.get("estimated_time_to_regain_access") if isinstance(e, dict) else 0
                    wait = float(wait) if isinstance(wait, (int, float)) else 0.0
                    if wait > 0 or _percent(e) >= 100:
                        until = now + timedelta(minutes=max(wait, 1.0))
                        account = max(account, until) if account else until
            if account:
                why.append("Graph business use case limit reached (X-Business-Use-Case-Usage)")
        if _percent(_usage_json(h.get("x-app-usage"))) >= 100:
            app = now + timedelta(seconds=APP_USAGE_COOLDOWN_SECONDS)
            why.append("Graph app limit reached (X-App-Usage)")
    return RateState(account, app, "; ".join(why))


# ------------------------------------------------------- Google Business Profile posts

# ``scheduled_content.publish_options`` of a ``google_business`` post (JSON object):
#   topic_type      STANDARD (default), EVENT or OFFER
#   event           {"title", "start", "end"}: EVENT and OFFER; ISO dates ("2026-12-24") or
#                   date-times ("2026-12-24T18:00"), in the location's local time
#   offer           {"coupon_code", "redeem_url", "terms"}: OFFER, each optional
#   call_to_action  {"action_type": BOOK|ORDER|SHOP|LEARN_MORE|SIGN_UP|CALL, "url"}: the
#                   url (public https) for every type but CALL
#   language_code   e.g. "en" (default "en")
GBP_TOPIC_TYPES = ("STANDARD", "EVENT", "OFFER")
GBP_ACTION_TYPES = ("BOOK", "ORDER", "SHOP", "LEARN_MORE", "SIGN_UP", "CALL")
GBP_EVENT_TITLE_CHARS = 58


def _gbp_when(value: object) -> tuple[dict, dict | None] | None:
    """ "2026-12-24" or "2026-12-24T18:00[:00]" -> (Date, TimeOfDay or None); None if not."""
    if not isinstance(value, str):
        return None
    try:
        if "T" in value:
            dt = datetime.fromisoformat(value)
            if dt.tzinfo is not None:
                return None  # local time of the location, as Google takes it
            return (
                {"year": dt.year, "month": dt.month, "day": dt.day},
                {"hours": dt.hour, "minutes": dt.minute, "seconds": dt.second, "nanos": 0},
            )
        d = datetime.fromisoformat(value).date()
    except ValueError:
        return None
    return {"year": d.year, "month": d.month, "day": d.day}, None


def _moment(value: str, *, end_of_day: bool = False) -> datetime:
    """A checked event bound as a naive datetime (a date: its first or last second)."""
    if "T" in value:
        return datetime.fromisoformat(value)
    day = datetime.fromisoformat(value)
    return day + timedelta(hours=23, minutes=59, seconds=59) if end_of_day else day


def gbp_post_problems(
    options: object, allowed_hosts: frozenset[tuple[str, int]] = frozenset()
) -> list[Violation]:
    """What is wrong with a Google Business post's ``publish_options`` (empty: nothing)."""
    if options is None:
        return []
    if not isinstance(options, dict):
        return [Violation("google_business.options", "publish_options must be a JSON object")]
    out: list[Violation] = []
    topic = options.get("topic_type", "STANDARD")
    if topic not in GBP_TOPIC_TYPES:
        out.append(
            Violation(
                "google_business.topic_type",
                f"topic_type {topic!r} is not one of {', '.join(GBP_TOPIC_TYPES)}",
            )
        )
    if topic in ("EVENT", "OFFER"):
        event = options.get("event")
        if not isinstance(event, dict):
            out.append(Violation("google_business.event", f"an {topic} post needs an event"))
        else:
            title = event.get("title")
            if not isinstance(title, str) or not title.strip():
                out.append(Violation("google_business.event", "the event needs a title"))
            elif len(title) > GBP_EVENT_TITLE_CHARS:
                out.append(
                    Violation(
                        "google_business.event",
                        f"the event title is {len(title)} characters, Google allows "
                        f"{GBP_EVENT_TITLE_CHARS}",
                    )
                )
            start, end = _gbp_when(event.get("start")), _gbp_when(event.get("end"))
            if start is None or end is None:
                out.append(
                    Violation(
                        "google_business.event",
                        "the event needs start and end as ISO dates or local date-times",
                    )
                )
            elif _moment(event["end"], end_of_day=True) < _moment(event["start"]):
                out.append(Violation("google_business.event", "the event ends before it starts"))
    offer = options.get("offer")
    if topic == "OFFER" and offer is not None:
        if not isinstance(offer, dict):
            out.append(Violation("google_business.offer", "offer must be a JSON object"))
        elif offer.get("redeem_url") is not None:
            problem = media_url_problem(offer["redeem_url"], allowed_hosts)
            if problem:
                out.append(Violation("google_business.offer", f"redeem_url {problem}"))
    cta = options.get("call_to_action")
    if cta is not None:
        if not isinstance(cta, dict) or cta.get("action_type") not in GBP_ACTION_TYPES:
            out.append(
                Violation(
                    "google_business.call_to_action",
                    f"call_to_action needs action_type among {', '.join(GBP_ACTION_TYPES)}",
                )
            )
        elif cta["action_type"] != "CALL":
            problem = media_url_problem(cta.get("url"), allowed_hosts)
            if problem:
                out.append(Violation("google_business.call_to_action", f"url {problem}"))
    return out


def gbp_local_post(body: str, media_urls: Sequence[str], options: Mapping | None) -> dict:
    """The ``LocalPost`` (Business Profile API v4) for a checked post."""
    options = options or {}
    topic = options.get("topic_type", "STANDARD")
    post: dict = {"languageCode": options.get("language_code") or "en", "topicType": topic}
    if body.strip():
        post["summary"] = body
    if media_urls:
        post["media"] = [{"mediaFormat": "PHOTO", "sourceUrl": u} for u in media_urls]
    if topic in ("EVENT", "OFFER"):
        event = options["event"]
        start_date, start_time = _gbp_when(event["start"])
        end_date, end_time = _gbp_when(event["end"])
        schedule: dict = {"startDate": start_date, "endDate": end_date}
        if start_time:
            schedule["startTime"] = start_time
        if end_time:
            schedule["endTime"] = end_time
        post["event"] = {"title": event["title"], "schedule": schedule}
    if topic == "OFFER" and isinstance(options.get("offer"), dict):
        offer = options["offer"]
        fields = {
            "couponCode": offer.get("coupon_code"),
            "redeemOnlineUrl": offer.get("redeem_url"),
            "termsConditions": offer.get("terms"),
        }
        post["offer"] = {k: v for k, v in fields.items() if v}
    cta = options.get("call_to_action")
    if isinstance(cta, dict):
        post["callToAction"] = {"actionType": cta["action_type"]}
        if cta.get("url") and cta["action_type"] != "CALL":
            post["callToAction"]["url"] = cta["url"]
    return post


# ---------------------------------------------------------------------------- X media

# What X takes (and this publisher downloads, then uploads in chunks): media types by
# category, and the largest file it handles (X: images 5 MB, GIFs 15 MB, video 512 MB; the
# publisher holds a file in memory, so video is capped lower).
X_MEDIA_TYPES = {
    "image/jpeg": "tweet_image",
    "image/png": "tweet_image",
    "image/webp": "tweet_image",
    "image/gif": "tweet_gif",
    "video/mp4": "tweet_video",
    "video/quicktime": "tweet_video",
}
X_MEDIA_MAX_BYTES = {"tweet_image": 5 * 2**20, "tweet_gif": 15 * 2**20, "tweet_video": 64 * 2**20}
_EXTENSION_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
}


def x_media_type(content_type: str | None, url: str) -> str | None:
    """The media type X is told (from the answer's Content-Type, else the URL's extension);
    None when X does not take it."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in X_MEDIA_TYPES:
        return declared
    path = urlsplit(url).path.lower()
    for ext, kind in _EXTENSION_TYPES.items():
        if path.endswith(ext):
            return (
                kind
                if declared in ("", "application/octet-stream", "binary/octet-stream")
                else None
            )
    return None


def chunks(size: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """(start, end) byte ranges of the APPEND segments of a ``size``-byte file."""
    if size <= 0:
        return []
    return [(i, min(size, i + chunk_bytes)) for i in range(0, size, chunk_bytes)]


def multipart(
    fields: Mapping[str, str], file: tuple[str, bytes, str] | None = None
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body (and its Content-Type) of text fields and one file
    ``(field name, bytes, content type)``."""
    boundary = "marba" + "".join(random.choices("0123456789abcdef", k=24))
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    if file is not None:
        name, content, ctype = file
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
