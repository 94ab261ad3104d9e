"""Fetch user-given URLs (competitor sites and feeds) without letting them reach inside.

Competitor URLs are typed by users, so every fetch is treated as hostile:

* **Only http and https**, written plainly: no backslashes, no user-info (``a@b``), no
  control characters or spaces, no IPv6 zone ids.
* **Only public addresses.** A literal address, or every address a name resolves to, must
  be globally routable: loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
  link-local (169.254/16 with the cloud metadata service, fe80::/10), carrier-grade NAT
  (100.64/10), multicast, reserved and unspecified (0.0.0.0, ::) are refused, and so are
  IPv6 forms that wrap an IPv4 address (``::ffff:127.0.0.1``, 6to4, Teredo, NAT64,
  IPv4-compatible) when the wrapped address is not public; IPv4-mapped forms always.
  Hosts spelled as numbers other than a canonical dotted quad (``2130706433``,
  ``0177.0.0.1``, ``0x7f.1``, ``127.1``) are refused rather than guessed at.
* **Resolve once, connect to what was checked.** The name is resolved by the fetcher (the
  resolver is a parameter, so tests control it), the addresses are checked, and the
  connection goes to the checked address through a network backend that refuses any host it
  was not given; the URL, the Host header, TLS SNI and certificate verification keep the
  real name. A DNS answer that changes between check and connect cannot be used.
* **Every redirect hop is checked** the same way; loops and long chains are refused.
* **Bounded.** The body is cut at ``max_bytes`` *after* decompression (gzip and deflate are
  decoded by ``decoding.BoundedDecoder``, as for ApiClient, in small steps with a cap, so a
  gzip bomb never expands in memory), and the whole fetch, redirects included, has a
  deadline, enforced from outside the read by a watchdog that shuts the socket
  (``deadline.watching``): a server dripping its headers or body a byte at a time is cut
  off at the deadline like one that never answers. The limits are an :class:`HttpPolicy`,
  the API client's class (:class:`FetchPolicy` gives its defaults for fetching).
* **Text decoded correctly**: byte-order mark, then the Content-Type charset, then a
  ``<meta charset>``/``http-equiv`` or XML declaration, then detection (charset-normalizer).
* **Polite**: a global limit on concurrent fetches, a per-host limit and a minimum interval
  between requests to the same host. Politeness paces, it does not fail: the per-URL
  deadline covers the fetch itself, not the time a URL waits for a global slot, its host's
  slot or the host's interval (a competitor with hundreds of URLs on one host is fetched
  one turn after another, each with its whole deadline).

Loopback and private targets are reachable only through an explicit allow-list of
``host:port`` pairs (``MARBA_FETCH_ALLOWED_HOSTS``), which the sandbox and tests use.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from marba_dagster.connectors.deadline import GuardedBackend, deadline_fired, watching
from marba_dagster.connectors.decoding import BoundedDecoder, DecodingFailed, UnsupportedEncoding
from marba_dagster.connectors.errors import (
    ClientError,
    ConnectFailed,
    DeadlineExceeded,
    HttpError,
    MalformedResponse,
    ServerError,
)
from marba_dagster.connectors.policy import FetchPolicy, HttpPolicy
from marba_dagster.connectors.redaction import redact_url
from marba_dagster.settings import host_ports

__all__ = [
    "FetchPolicy",
    "FetchResult",
    "FetchRefused",
    "RedirectLoop",
    "SafeFetcher",
    "check_ip",
    "decode_body",
    "parse_allowed_hosts",
    "validate_url",
]

KiB = 1024

Resolver = Callable[[str, int], Sequence[str]]


class FetchRefused(HttpError):
    """The URL (or a redirect, or an address its name resolves to) breaks the safety rules.

    Nothing was sent to the refused destination.
    """


class RedirectLoop(HttpError):
    """Redirects went in a circle or past ``max_redirects``."""


def parse_allowed_hosts(value: str | Iterable[str] | None) -> frozenset[tuple[str, int]]:
    """``"127.0.0.1:8123, localhost:8123, [::1]:9000"`` -> {(host, port)}; bad entries raise.

    The one parser of ``MARBA_FETCH_ALLOWED_HOSTS`` (``settings.host_ports``)."""
    if value is None:
        return frozenset()
    text = value if isinstance(value, str) else ",".join(value)
    try:
        return host_ports(text)
    except ValueError as exc:
        raise ValueError(f"MARBA_FETCH_ALLOWED_HOSTS: {exc}") from None


# --------------------------------------------------------------------------------------
# URL and address checks

_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_CANONICAL_V4 = re.compile(
    r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$"
)
_HOST_CHARS = re.compile(r"^[a-z0-9.\-_]+$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


@dataclass(frozen=True)
class Target:
    """A checked URL: scheme, lower-case host (IDNA), port, and the literal IP if any."""

    url: str
    scheme: str
    host: str
    port: int
    literal_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None


def _refuse(url: str, why: str) -> FetchRefused:
    return FetchRefused(
        f"refused: {why}", url=_safe_display(url), method="GET", client="safe_fetch"
    )


def _safe_display(url: str) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in str(url))[:300]
    try:
        return redact_url(text)
    except Exception:  # noqa: BLE001 - display only
        return text


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    packed = ip.packed
    if packed[:12] == b"\x00" * 12 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(packed[12:])
    return None


def check_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | str) -> str | None:
    """Why ``ip`` may not be fetched, or None when it is a public unicast address."""
    if isinstance(ip, str):
        try:
            ip = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return f"{ip!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"IPv4-mapped IPv6 address {ip}"
        inner = _embedded_v4(ip)
        if inner is not None:
            why = check_ip(inner)
            if why:
                return f"IPv6 address {ip} wraps a non-public IPv4 address ({why})"
    if ip.is_loopback:
        return f"loopback address {ip}"
    if ip.is_unspecified:
        return f"unspecified address {ip}"
    if ip.is_link_local:
        return f"link-local address {ip}"
    if ip.is_multicast:
        return f"multicast address {ip}"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return f"carrier-grade NAT address {ip}"
    if ip.is_private:
        return f"private address {ip}"
    if ip.is_reserved:
        return f"reserved address {ip}"
    if not ip.is_global:
        return f"non-global address {ip}"
    return None


def validate_url(url: str) -> Target:
    """Parse and check the shape of ``url`` (not its addresses); FetchRefused if unsafe."""
    if not isinstance(url, str) or not url:
        raise _refuse(str(url), "empty URL")
    if len(url) > 4096:
        raise _refuse(url, "URL longer than 4096 characters")
    if "\\" in url:
        raise _refuse(url, "backslash in URL")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise _refuse(url, "whitespace or control character in URL")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _refuse(url, f"unparseable URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _refuse(url, f"scheme {scheme or '(none)'!r} is not http or https")
    if not url[len(parts.scheme) :].startswith("://"):
        raise _refuse(url, "URL must start with http:// or https://")
    netloc = parts.netloc
    if "@" in netloc:
        raise _refuse(url, "user-info in URL")
    if not netloc:
        raise _refuse(url, "URL has no host")
    # Host and port, parsed by hand so a malformed authority is refused, not reinterpreted.
    if netloc.startswith("["):
        end = netloc.find("]")
        if end == -1:
            raise _refuse(url, "unterminated IPv6 literal")
        host_text, rest = netloc[1:end], netloc[end + 1 :]
        if "%" in host_text:
            raise _refuse(url, "IPv6 zone id in URL")
        try:
            literal: Any = ipaddress.IPv6Address(host_text)
        except ValueError:
            raise _refuse(url, f"bad IPv6 literal {host_text!r}") from None
        host = str(literal)
    else:
        host_text, sep, port_text = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
        rest = f":{port_text}" if sep else ""
        host = host_text.lower().rstrip(".")
        literal = None
    port_part = rest
    if port_part:
        if not re.fullmatch(r":\d{1,5}", port_part):
            raise _refuse(url, "bad port")
        port = int(port_part[1:])
        if not 0 < port < 65536:
            raise _refuse(url, "port out of range")
    else:
        port = 443 if scheme == "https" else 80
    if literal is None:
        if not host:
            raise _refuse(url, "URL has no host")
        try:
            host = host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError:
            raise _refuse(url, "host is not a valid international domain name") from None
        if not _HOST_CHARS.match(host) or ".." in host:
            raise _refuse(url, f"invalid host name {host!r}")
        labels = host.split(".")
        if _NUMERIC_LABEL.match(labels[-1]):
            # WHATWG: a host ending in a number is an IPv4 address; only the canonical
            # dotted quad is accepted, never decimal, octal, hex or short forms.
            if not _CANONICAL_V4.match(host):
                raise _refuse(url, f"non-canonical IPv4 spelling {host!r}")
            literal = ipaddress.IPv4Address(host)
    return Target(url=url, scheme=scheme, host=host, port=port, literal_ip=literal)


def default_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for *_rest, sockaddr in infos:
        addr = str(sockaddr[0]).split("%", 1)[0]
        if addr not in seen:
            seen.append(addr)
    return seen


# --------------------------------------------------------------------------------------
# Pinned connections


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects only to addresses the fetcher checked: host name -> pinned IP."""

    def __init__(self) -> None:
        self._inner = GuardedBackend(httpcore.SyncBackend())
        self._pins: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()

    def pin(self, host: str, port: int, ip: str) -> None:
        with self._lock:
            self._pins[(host.lower(), port)] = ip

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        with self._lock:
            ip = self._pins.get((str(host).lower().strip("[]"), int(port)))
        if ip is None:  # never connect anywhere that was not checked
            raise httpcore.ConnectError(f"no checked address for {host}:{port}")
        return self._inner.connect_tcp(
            ip, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    def connect_unix_socket(self, *_args, **_kwargs):
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _PinnedTransport(httpx.HTTPTransport):
    def __init__(self, backend: _PinnedBackend, verify: bool, max_connections: int) -> None:
        super().__init__(verify=verify, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


# --------------------------------------------------------------------------------------
# Charset decoding

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE
)
_XML_DECL = re.compile(
    rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_\-.]+)["']""", re.IGNORECASE
)
_HTML_LANG = re.compile(rb"""<html[^>]*\slang\s*=\s*["']?([A-Za-z]{2,3})""", re.IGNORECASE)
_LANG_ENCODINGS = {
    "ja": ("cp932", "euc_jp", "iso2022_jp"),
    "ru": ("cp1251", "koi8_r"),
    "uk": ("cp1251", "koi8_u"),
    "bg": ("cp1251",),
    "be": ("cp1251",),
    "sr": ("cp1251",),
    "mk": ("cp1251",),
    "kk": ("cp1251",),
    "zh": ("gb18030", "big5"),
    "ko": ("cp949",),
    "el": ("cp1253",),
    "tr": ("cp1254",),
    "he": ("cp1255",),
    "ar": ("cp1256",),
    "th": ("cp874",),
    "vi": ("cp1258",),
    "pl": ("cp1250",),
    "cs": ("cp1250",),
    "hu": ("cp1250",),
}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# WHATWG Encoding: these labels mean windows-1252 on the web; a few other common aliases.
_LABEL_ALIASES = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "x-sjis": "shift_jis",
    "sjis": "shift_jis",
    "ms_kanji": "shift_jis",
    "x-cp1251": "cp1251",
    "windows-31j": "cp932",
    "unicode": "utf-16-le",
}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _LABEL_ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name == "shift_jis":
        return "cp932"  # the web's Shift_JIS is Microsoft's superset (WHATWG)
    return name


def _header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = re.search(r"charset\s*=\s*\"?([^\s;\"]+)", content_type, re.IGNORECASE)
    return _codec(m.group(1)) if m else None


def decode_body(content: bytes, content_type: str | None = None) -> tuple[str, str, str]:
    """Decode a fetched body: (text, codec name, how it was chosen).

    Order: byte-order mark, Content-Type charset, ``<meta>``/XML declaration in the first
    4 KiB, then statistical detection. A declared charset that does not decode cleanly is
    checked against detection before anything is replaced.
    """
    for bom, name in _BOMS:
        if content.startswith(bom):
            return content[len(bom) :].decode(name, errors="replace"), name, "bom"
    candidates: list[tuple[str, str]] = []
    header = _header_charset(content_type)
    if header:
        candidates.append((header, "header"))
    head = content[:4096]
    m = _META_CHARSET.search(head) or _XML_DECL.search(head)
    if m:
        declared = _codec(m.group(1).decode("ascii", "ignore"))
        if declared and declared not in ("utf-16-le", "utf-16-be", "utf-16"):
            candidates.append((declared, "meta"))
    for name, how in candidates:
        try:
            return content.decode(name), name, how
        except UnicodeDecodeError:
            continue
    try:
        return (
            content.decode("utf-8"),
            "utf-8",
            "utf-8" if not candidates else "utf-8 (declared charset did not decode)",
        )
    except UnicodeDecodeError:
        pass
    # The page's language narrows the guess the way a browser's locale does: the first
    # legacy encoding of that language that decodes the whole body cleanly wins.
    lang = _HTML_LANG.search(head)
    for name in _LANG_ENCODINGS.get(lang.group(1).decode("ascii").lower() if lang else "", ()):
        try:
            return content.decode(name), name, "language"
        except UnicodeDecodeError:
            continue
    detected = None
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(content[: 256 * KiB]).best()
        detected = _codec(best.encoding) if best is not None else None
    except Exception:  # noqa: BLE001 - detection is best effort
        detected = None
    name = detected or (candidates[0][0] if candidates else "cp1252")
    return content.decode(name, errors="replace"), name, "detected" if detected else "fallback"


def _classify(err: Callable[..., HttpError], exc: Exception) -> HttpError:
    """The fetcher's error for a transport failure that was not the deadline's doing."""
    if isinstance(exc, httpx.TimeoutException):
        return err(DeadlineExceeded, f"timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError | httpcore.ConnectError):
        return err(ConnectFailed, f"connection failed: {exc}")
    return err(ServerError, f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------------------
# Results


@dataclass
class FetchResult:
    url: str  # as asked (redacted)
    final_url: str  # after redirects (redacted)
    status: int
    content: bytes
    content_type: str
    encoding: str
    encoding_source: str
    truncated: bool
    elapsed: float
    redirects: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    _text: str | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        return self._text or ""


@dataclass
class _HostSlot:
    sem: threading.Semaphore
    next_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Deadline:
    """A URL's deadline, pushed back by the time spent waiting for a turn (queueing for a
    global or per-host slot and the host's interval is pacing, not the fetch taking long)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    @contextmanager
    def paused(self) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.at += time.monotonic() - began


class SafeFetcher:
    """Thread-safe fetcher applying an :class:`HttpPolicy` (by default :class:`FetchPolicy`'s
    limits). Close it when done."""

    def __init__(self, policy: HttpPolicy | None = None, resolver: Resolver | None = None) -> None:
        self.policy = policy or FetchPolicy()
        self.resolver: Resolver = resolver or default_resolver
        self._backend = _PinnedBackend()
        self._client = httpx.Client(
            transport=_PinnedTransport(
                self._backend, self.policy.verify_tls, self.policy.max_concurrency
            ),
            follow_redirects=False,
            trust_env=False,
            headers={
                "User-Agent": self.policy.user_agent,
                "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                "Accept-Encoding": "gzip, deflate",
            },
        )
        self._global = threading.BoundedSemaphore(self.policy.max_concurrency)
        self._hosts: dict[tuple[str, int], _HostSlot] = {}
        self._hosts_lock = threading.Lock()
        self._counters = {
            "fetches": 0,
            "refused": 0,
            "failures": 0,
            "bytes": 0,
            "truncated": 0,
            "redirects": 0,
        }
        self._counter_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SafeFetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def metrics(self) -> dict[str, int]:
        with self._counter_lock:
            return dict(self._counters)

    def _count(self, key: str, n: int = 1) -> None:
        with self._counter_lock:
            self._counters[key] += n

    # -- checks ------------------------------------------------------------------------

    def is_allowed(self, target: Target) -> bool:
        return (target.host, target.port) in self.policy.allowed_hosts

    def check(self, url: str) -> tuple[Target, str]:
        """Validate ``url`` and resolve its host: (target, the checked IP to connect to)."""
        target = validate_url(url)
        allowed = self.is_allowed(target)
        if target.literal_ip is not None:
            ips = [str(target.literal_ip)]
        else:
            if not allowed and (target.host == "localhost" or target.host.endswith(".localhost")):
                raise _refuse(url, f"host {target.host!r} is loopback")
            try:
                ips = list(self.resolver(target.host, target.port))
            except (OSError, UnicodeError) as exc:
                raise ConnectFailed(
                    f"cannot resolve host {target.host!r}: {exc}",
                    url=_safe_display(url),
                    method="GET",
                    client="safe_fetch",
                ) from None
            if not ips:
                raise ConnectFailed(
                    f"host {target.host!r} has no address",
                    url=_safe_display(url),
                    method="GET",
                    client="safe_fetch",
                )
        if not allowed:
            for ip in ips:  # every answer must be public: no mixed public/private sets
                why = check_ip(ip)
                if why:
                    raise _refuse(
                        url, f"{target.host} -> {why}" if target.literal_ip is None else why
                    )
        chosen = ips[0]
        try:
            ipaddress.ip_address(chosen)
        except ValueError:
            raise _refuse(url, f"resolver returned {chosen!r}, not an IP address") from None
        return target, chosen

    # -- politeness --------------------------------------------------------------------

    def _slot(self, host: str, port: int) -> _HostSlot:
        with self._hosts_lock:
            slot = self._hosts.get((host, port))
            if slot is None:
                slot = self._hosts[(host, port)] = _HostSlot(
                    threading.Semaphore(self.policy.per_host_concurrency)
                )
            return slot

    def _wait_turn(self, slot: _HostSlot) -> None:
        """Sleep until the host's next turn (``per_host_interval`` after the previous one)."""
        if self.policy.per_host_interval <= 0:
            return
        with slot.lock:
            now = time.monotonic()
            start = max(now, slot.next_at)
            slot.next_at = start + self.policy.per_host_interval
        if start > now:
            time.sleep(start - now)

    # -- fetching ----------------------------------------------------------------------

    def fetch(self, url: str, *, headers: dict[str, str] | None = None) -> FetchResult:
        """GET ``url`` under the policy; raise a :class:`HttpError` subclass on failure.

        404/410 and other 4xx raise :class:`ClientError`, 5xx :class:`ServerError`, safety
        violations :class:`FetchRefused`, redirect loops :class:`RedirectLoop`. A body over
        ``max_bytes`` is cut at the cap (``truncated=True``).
        """
        started = time.monotonic()
        deadline = _Deadline(self.policy.deadline)
        current = url
        seen: list[str] = []
        try:
            with deadline.paused():  # waiting for a global slot is not the fetch
                self._global.acquire()
            try:
                for _hop in range(self.policy.max_redirects + 1):
                    if current in seen:
                        raise RedirectLoop(
                            f"redirect loop back to {_safe_display(current)}",
                            url=_safe_display(url),
                            method="GET",
                            client="safe_fetch",
                        )
                    seen.append(current)
                    target, ip = self.check(current)
                    result = self._one(target, ip, deadline, headers or {})
                    if isinstance(result, str):
                        self._count("redirects")
                        current = result
                        continue
                    result.url = _safe_display(url)
                    result.redirects = [_safe_display(u) for u in seen[1:]]
                    result.elapsed = time.monotonic() - started
                    self._count("fetches")
                    self._count("bytes", len(result.content))
                    if result.truncated:
                        self._count("truncated")
                    return result
                raise RedirectLoop(
                    f"more than {self.policy.max_redirects} redirects",
                    url=_safe_display(url),
                    method="GET",
                    client="safe_fetch",
                )
            finally:
                self._global.release()
        except FetchRefused:
            self._count("refused")
            raise
        except HttpError:
            self._count("failures")
            raise

    def _one(
        self, target: Target, ip: str, clock: _Deadline, extra_headers: dict[str, str]
    ) -> FetchResult | str:
        slot = self._slot(target.host, target.port)
        display = _safe_display(target.url)

        def err(cls, msg, **kw):
            return cls(msg, url=display, method="GET", client="safe_fetch", **kw)

        if clock.at - time.monotonic() <= 0:
            raise err(DeadlineExceeded, f"deadline of {self.policy.deadline:g}s passed")
        with clock.paused():  # the host's turn: a slot, then its interval
            slot.sem.acquire()
            try:
                self._wait_turn(slot)
            except BaseException:
                slot.sem.release()
                raise
        deadline = clock.at
        try:
            # The watchdog covers the exchange only: the wait for the turn is pacing.
            with watching(deadline):
                self._backend.pin(target.host, target.port, ip)
                remaining = max(0.05, deadline - time.monotonic())
                timeout = httpx.Timeout(
                    connect=min(self.policy.connect_timeout, remaining),
                    read=min(self.policy.read_timeout, remaining),
                    write=min(self.policy.effective_write_timeout, remaining),
                    pool=min(self.policy.connect_timeout, remaining),
                )
                try:
                    with self._client.stream(
                        "GET", target.url, headers=extra_headers, timeout=timeout
                    ) as resp:
                        status = resp.status_code
                        if status in (301, 302, 303, 307, 308):
                            location = resp.headers.get("location")
                            if not location:
                                raise err(
                                    MalformedResponse,
                                    f"HTTP {status} redirect without Location",
                                    status=status,
                                )
                            return urljoin(target.url, location.strip())
                        if 400 <= status < 500:
                            raise err(ClientError, f"HTTP {status}", status=status)
                        if status >= 500:
                            raise err(ServerError, f"HTTP {status}", status=status)
                        if status >= 300:
                            raise err(ClientError, f"unexpected HTTP {status}", status=status)
                        try:
                            decoder = BoundedDecoder(resp.headers.get("content-encoding", ""))
                        except UnsupportedEncoding as exc:
                            raise err(MalformedResponse, str(exc), status=status) from None
                        cap = self.policy.max_bytes
                        buf = bytearray()

                        def room() -> int:  # one byte over the cap tells the body is longer
                            return cap + 1 - len(buf)

                        truncated = False
                        for piece in decoder.decode(resp.iter_raw(16 * KiB), room):
                            buf += piece
                            if len(buf) > cap:
                                truncated = True
                                del buf[cap:]
                                break
                            if time.monotonic() > deadline:
                                raise err(
                                    DeadlineExceeded,
                                    f"deadline of {self.policy.deadline:g}s passed while reading "
                                    f"({len(buf)} bytes so far)",
                                    status=status,
                                )
                        ctype = resp.headers.get("content-type", "")
                        content = bytes(buf)
                        keep = {
                            k: v
                            for k, v in resp.headers.items()
                            if k.lower()
                            in ("content-type", "last-modified", "etag", "content-language")
                        }
                except HttpError:
                    raise
                except DecodingFailed as exc:
                    raise err(MalformedResponse, str(exc), status=status) from None
                except (httpx.HTTPError, httpcore.ConnectError) as exc:
                    if not deadline_fired() and time.monotonic() < deadline:
                        raise _classify(err, exc) from None
                    raise err(
                        DeadlineExceeded,
                        f"deadline of {self.policy.deadline:g}s passed ({type(exc).__name__})",
                    ) from None
        finally:
            slot.sem.release()
        text, encoding, how = decode_body(content, ctype)
        return FetchResult(
            url=display,
            final_url=display,
            status=status,
            content=content,
            content_type=ctype.split(";", 1)[0].strip().lower(),
            encoding=encoding,
            encoding_source=how,
            truncated=truncated,
            elapsed=0.0,
            headers=keep,
            _text=text,
        )

    def fetch_many(
        self, urls: Sequence[str], max_workers: int | None = None
    ) -> list[FetchResult | HttpError]:
        """Fetch concurrently (within the global limit); one result or error per URL, in order."""
        workers = max(1, min(max_workers or self.policy.max_concurrency, len(urls) or 1))

        def one(u: str) -> FetchResult | HttpError:
            try:
                return self.fetch(u)
            except HttpError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="safe-fetch") as pool:
            return list(pool.map(one, urls))
