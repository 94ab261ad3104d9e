"""The safe fetcher: SSRF refusals (with a loopback listener that must see no connection),
redirect re-checks, size caps on plain and gzip bodies, charset decoding, politeness."""

from __future__ import annotations

import ipaddress
import socket
import threading
import tracemalloc

import pytest

from marba_dagster.connectors.http import ClientError, ConnectFailed, HttpPolicy
from marba_dagster.connectors.safe_fetch import (
    FetchPolicy,
    FetchRefused,
    RedirectLoop,
    SafeFetcher,
    check_ip,
    decode_body,
    parse_allowed_hosts,
    validate_url,
)


class Listener:
    """A real TCP listener on loopback that records every connection it accepts."""

    def __init__(self, family=socket.AF_INET, host="127.0.0.1") -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            try:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecret"
                )
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture
def listener6():
    try:
        lst = Listener(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    yield lst
    lst.close()


def _fetcher(sandbox=None, resolver=None, **kw) -> SafeFetcher:
    allowed = (
        parse_allowed_hosts(sandbox.env()["MARBA_FETCH_ALLOWED_HOSTS"]) if sandbox else frozenset()
    )
    kw.setdefault("per_host_interval", 0)
    return SafeFetcher(FetchPolicy(allowed_hosts=allowed, **kw), resolver=resolver)


def test_listener_is_reachable_when_allowed(listener):
    """Control: the listener does accept connections, so 'no connection' below means refused."""
    with SafeFetcher(
        FetchPolicy(allowed_hosts=frozenset({("127.0.0.1", listener.port)}), per_host_interval=0)
    ) as f:
        assert f.fetch(f"http://127.0.0.1:{listener.port}/").content == b"secret"
    assert listener.connections == 1


SSRF_CASES = [
    "http://127.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://LOCALHOST.:{port}/",
    "http://foo.localhost:{port}/",
    "http://[::1]:{port}/",
    "http://0.0.0.0:{port}/",
    "http://10.0.0.1:{port}/",
    "http://10.255.255.254:{port}/",
    "http://172.16.0.1:{port}/",
    "http://172.31.255.1:{port}/",
    "http://192.168.1.1:{port}/",
    "http://169.254.169.254:{port}/latest/meta-data/",
    "http://100.64.0.1:{port}/",
    "http://224.0.0.1:{port}/",
    "http://240.0.0.1:{port}/",
    "http://255.255.255.255:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://[::127.0.0.1]:{port}/",
    "http://[64:ff9b::7f00:1]:{port}/",
    "http://[2002:7f00:1::]:{port}/",
    "http://[fc00::1]:{port}/",
    "http://[fd12:3456::1]:{port}/",
    "http://[fe80::1]:{port}/",
    "http://[ff02::1]:{port}/",
    "http://[::]:{port}/",
    "http://2130706433:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://0x7f.0.0.1:{port}/",
    "http://0x7f000001:{port}/",
    "http://127.1:{port}/",
    "http://127.000.000.001:{port}/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_GET",
    "ftp://127.0.0.1:{port}/",
    "http:\\\\127.0.0.1:{port}\\",
    "http://example.com\\@127.0.0.1:{port}/",
    "http://user:pw@127.0.0.1:{port}/",
    "http://example.com@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}#@example.com/",
    "http://127.0.0.1%2f:{port}/",
    "http://[::1%25lo]:{port}/",
    "//127.0.0.1:{port}/",
    "http:/127.0.0.1:{port}/",
    "http://127.0.0.1:{port}/ spaces",
]


@pytest.mark.parametrize("template", SSRF_CASES)
def test_ssrf_refused_without_connecting(template, listener):
    url = template.format(port=listener.port)
    with _fetcher() as f, pytest.raises(FetchRefused) as info:
        f.fetch(url)
    assert "refused" in str(info.value)
    assert listener.connections == 0
    assert f.metrics()["refused"] == 1


def test_ipv6_loopback_listener_gets_nothing(listener6):
    with _fetcher() as f, pytest.raises(FetchRefused):
        f.fetch(f"http://[::1]:{listener6.port}/")
    assert listener6.connections == 0


def test_name_resolving_to_private_address_is_refused(listener):
    """The resolver is the fetcher's own (injected here): a public-looking name that resolves
    to loopback, or to a mix of public and private addresses, is refused before connecting."""
    answers = {
        "evil.example": ["127.0.0.1"],
        "mixed.example": ["93.184.216.34", "127.0.0.1"],
        "meta.example": ["169.254.169.254"],
        "v6.example": ["::ffff:127.0.0.1"],
    }
    asked: list[str] = []

    def resolver(host, port):
        asked.append(host)
        return answers[host]

    with _fetcher(resolver=resolver) as f:
        for host in answers:
            with pytest.raises(FetchRefused, match=host):
                f.fetch(f"http://{host}:{listener.port}/")
    assert asked == list(answers)  # resolved once each
    assert listener.connections == 0


def test_connects_to_the_checked_address_not_a_second_lookup(listener):
    """Resolve once: the connection goes to the address that was checked (a second lookup
    answering differently - DNS rebinding - is never made)."""
    calls = []

    def resolver(host, port):
        calls.append(host)
        return ["127.0.0.1"]

    policy = FetchPolicy(
        allowed_hosts=frozenset({("rebind.example", listener.port)}), per_host_interval=0
    )
    with SafeFetcher(policy, resolver=resolver) as f:
        res = f.fetch(f"http://rebind.example:{listener.port}/")
    assert res.content == b"secret"
    assert calls == ["rebind.example"]
    assert listener.connections == 1


def test_redirect_to_private_address_refused(sandbox, listener):
    target = f"http://127.0.0.1:{listener.port}/internal"
    with _fetcher(sandbox) as f:
        with pytest.raises(FetchRefused, match="loopback"):
            f.fetch(sandbox.url(f"/sites/_special/redirect?to={target}"))
        with pytest.raises(FetchRefused, match="scheme"):
            f.fetch(sandbox.url("/sites/_special/redirect?to=file:///etc/passwd"))
        with pytest.raises(FetchRefused):
            f.fetch(
                sandbox.url("/sites/_special/redirect?to=http://169.254.169.254/latest/meta-data/")
            )
    assert listener.connections == 0
    assert sandbox.request_count("sites.special") == 3


def test_redirect_within_allowed_host_is_followed(sandbox):
    with _fetcher(sandbox) as f:
        res = f.fetch(sandbox.url("/sites/_special/redirect?to=/sites/comp-r/pricing"))
    assert res.status == 200 and "Pricing" in res.text
    assert res.redirects and res.redirects[0].endswith("/sites/comp-r/pricing")


def test_fetcher_takes_the_api_clients_policy_class(sandbox):
    allowed = parse_allowed_hosts(sandbox.env()["MARBA_FETCH_ALLOWED_HOSTS"])
    policy = HttpPolicy(allowed_hosts=allowed, per_host_interval=0, max_redirects=0)
    with SafeFetcher(policy) as f:
        assert f.fetch(sandbox.url("/sites/comp-r/pricing")).status == 200
        with pytest.raises(RedirectLoop, match="more than 0 redirects"):
            f.fetch(sandbox.url("/sites/_special/redirect?to=/sites/comp-r/pricing"))


def test_redirect_loop_404_410(sandbox):
    with _fetcher(sandbox) as f:
        with pytest.raises(RedirectLoop):
            f.fetch(sandbox.url("/sites/_special/loop"))
        with pytest.raises(ClientError) as e404:
            f.fetch(sandbox.url("/sites/_special/missing"))
        with pytest.raises(ClientError) as e410:
            f.fetch(sandbox.url("/sites/_special/gone"))
    assert (e404.value.status, e410.value.status) == (404, 410)


def test_allow_list_is_exact_host_and_port(sandbox, listener):
    port = int(sandbox.base_url.rsplit(":", 1)[1])
    with _fetcher(sandbox) as f:
        assert f.fetch(f"http://localhost:{port}/sites/comp-a/").status == 200
        with pytest.raises(FetchRefused):  # same host, another port
            f.fetch(f"http://127.0.0.1:{listener.port}/")
    assert listener.connections == 0


def test_parse_allowed_hosts_rejects_bad_entries():
    assert parse_allowed_hosts("127.0.0.1:8123, localhost:9,[::1]:80") == {
        ("127.0.0.1", 8123),
        ("localhost", 9),
        ("::1", 80),
    }
    assert parse_allowed_hosts("") == frozenset()
    for bad in ("127.0.0.1", "http://x:80", "a:99999", "user@h:80"):
        with pytest.raises(ValueError):
            parse_allowed_hosts(bad)


def test_public_addresses_pass_the_address_check():
    for ip in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2002:5db8:d822::"):
        assert check_ip(ipaddress.ip_address(ip)) is None, ip
    t = validate_url("https://Example.COM./a?b=1")
    assert (t.host, t.port, t.scheme) == ("example.com", 443, "https")
    assert validate_url("http://bücher.example/").host == "xn--bcher-kva.example"


def test_50mb_body_cut_at_cap_with_bounded_memory(sandbox):
    cap = 2 * 1024 * 1024
    tracemalloc.start()
    try:
        with _fetcher(sandbox, max_bytes=cap) as f:
            res = f.fetch(sandbox.url("/sites/_special/big?mb=50"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.truncated and len(res.content) == cap
    assert peak < 6 * cap  # the body, its text and a chunk: never the 50 MB


@pytest.mark.parametrize(
    "query",
    ["", "&encoding=deflate", "&encoding=deflate&raw=1", "&encoding=gzip,gzip"],
    ids=["gzip", "deflate", "raw-deflate", "gzip-gzip"],
)
def test_gzip_bomb_cut_at_cap_with_bounded_memory(sandbox, query):
    cap = 1024 * 1024
    tracemalloc.start()
    try:
        with _fetcher(sandbox, max_bytes=cap) as f:
            res = f.fetch(sandbox.url(f"/sites/_special/gzip-bomb?mb=256{query}"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.truncated and len(res.content) == cap and set(res.content) == {0}
    assert peak < 8 * cap  # decompressed in capped steps, never to 256 MB


@pytest.mark.parametrize(
    "query", ["", "&encoding=deflate", "&encoding=deflate&raw=1", "&encoding=deflate,gzip"]
)
def test_compressed_page_within_the_cap_decodes_whole(sandbox, query):
    with _fetcher(sandbox, max_bytes=3 * 1024 * 1024) as f:
        res = f.fetch(sandbox.url(f"/sites/_special/gzip-bomb?mb=2{query}"))
    assert not res.truncated and res.content == b"\0" * (2 * 1024 * 1024)


@pytest.mark.parametrize("declare", ["header", "meta", "none"])
def test_shift_jis_and_cp1251_pages_decode(sandbox, declare):
    with _fetcher(sandbox) as f:
        ja = f.fetch(sandbox.url(f"/sites/_special/shift_jis?declare={declare}"))
        ru = f.fetch(sandbox.url(f"/sites/_special/cp1251?declare={declare}"))
        ru_bare = f.fetch(sandbox.url(f"/sites/_special/cp1251?declare={declare}&lang=none"))
    assert "和菓子の店" in ja.text and "抹茶" in ja.text
    assert "Пекарня у дома" in ru.text and "Московская" in ru.text
    assert "Московская пекарня" in ru_bare.text  # statistical detection alone
    if declare != "none":
        assert ja.encoding_source == declare


def test_decode_body_bom_wins_and_bad_header_falls_back():
    text = "Ünïcödé ✓"
    assert decode_body(b"\xef\xbb\xbf" + text.encode(), "text/html; charset=iso-8859-1")[0] == text
    assert decode_body("\ufeffhé".encode("utf-16-le"), None)[0] == "hé"
    # a declared charset that cannot decode the bytes falls back to UTF-8, then detection
    assert decode_body(text.encode(), "text/html; charset=shift_jis")[0] == text
    assert decode_body("<meta charset='windows-1251'>Привет".encode("cp1251"))[0].endswith("Привет")


def test_per_host_interval_spaces_requests(sandbox):
    with _fetcher(sandbox, per_host_interval=0.2, per_host_concurrency=4) as f:
        f.fetch_many([sandbox.url(f"/sites/comp-p{i}/") for i in range(3)], max_workers=3)
    starts = sorted(r["started_at"] for r in sandbox.requests("sites.page"))
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 3 and min(gaps) >= 0.15


def test_global_concurrency_limit(sandbox):
    """Server side: with max_concurrency=2, never more than two requests overlap."""
    sandbox.faults.add(route="sites.page", kind="latency", ms=150)
    with _fetcher(sandbox, max_concurrency=2, per_host_concurrency=8) as f:
        out = f.fetch_many([sandbox.url(f"/sites/comp-g{i}/") for i in range(6)], max_workers=6)
    assert all(r.status == 200 for r in out)
    spans = [
        (r["started_at"], r["started_at"] + r["duration_ms"] / 1000)
        for r in sandbox.requests("sites.page")
    ]
    overlap = max(sum(1 for a, b in spans if a <= t < b) for t, _ in spans)
    assert len(spans) == 6 and overlap == 2


def test_unresolvable_name_is_a_connect_failure():
    def resolver(host, port):
        raise socket.gaierror("Name or service not known")

    with _fetcher(resolver=resolver) as f, pytest.raises(ConnectFailed):
        f.fetch("http://does-not-exist.example/")
