"""The bounded Content-Encoding decoder both HTTP paths use: gzip, deflate zlib-wrapped and
raw (told apart by the zlib header, however the body is chunked), stacked codings, refusals,
and output that never outruns the reader's room. Real zlib streams, no HTTP."""

from __future__ import annotations

import random
import zlib

import pytest

from marba_dagster.connectors.decoding import (
    STEP,
    BoundedDecoder,
    DecodingFailed,
    UnsupportedEncoding,
    deflate_wbits,
)
from marba_dagster.sandbox.compression import compress, parse_encoding

rng = random.Random(7)
BODY = bytes(rng.getrandbits(8) for _ in range(3000)) + b'{"hourly": [1, 2, 3]} ' * 20_000


def _zip(data: bytes, wbits: int, level: int = 6) -> bytes:
    comp = zlib.compressobj(level, zlib.DEFLATED, wbits)
    return comp.compress(data) + comp.flush()


def _decode(encoding: str, body: bytes, chunk: int, room=lambda: 1 << 30) -> bytes:
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    return b"".join(BoundedDecoder(encoding).decode(chunks, room))


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000, 1 << 30])
@pytest.mark.parametrize(
    "encoding, wbits",
    [
        ("gzip", 16 + zlib.MAX_WBITS),
        ("x-gzip", 16 + zlib.MAX_WBITS),
        ("deflate", zlib.MAX_WBITS),  # RFC 9110: zlib-wrapped
        ("deflate", -zlib.MAX_WBITS),  # what some servers send: raw deflate
    ],
)
def test_each_coding_decodes_whatever_the_chunking(encoding, wbits, chunk):
    assert _decode(encoding, _zip(BODY, wbits), chunk) == BODY


@pytest.mark.parametrize("level", range(10))
@pytest.mark.parametrize("window", range(9, 16))
def test_deflate_format_is_told_by_the_zlib_header(level, window):
    sample = BODY[:4000]
    wrapped, raw = _zip(sample, window, level), _zip(sample, -window, level)
    assert deflate_wbits(wrapped) == zlib.MAX_WBITS
    assert deflate_wbits(raw) == -zlib.MAX_WBITS
    # One byte at a time: the first chunk alone cannot tell, the decoder waits for two.
    assert _decode("deflate", wrapped, 1) == sample
    assert _decode("deflate", raw, 1) == sample


def test_stacked_codings_are_undone_in_reverse_order():
    for header in ("gzip, deflate", "deflate, gzip", "gzip,gzip", "identity, gzip"):
        codings = parse_encoding(header.replace("identity, ", ""))
        body = b"".join(compress([BODY], codings))
        assert _decode(header, body, 777) == BODY, header
    assert _decode("identity", BODY, 500) == BODY
    assert _decode("", BODY, 500) == BODY


def _read_capped(encoding: str, data: bytes, cap: int) -> tuple[bytearray, list[int]]:
    """Read the way both clients do: ask for one byte over the cap, stop once past it."""
    buf = bytearray()
    sizes: list[int] = []

    def room() -> int:
        return cap + 1 - len(buf)

    for piece in BoundedDecoder(encoding).decode([data], room):
        sizes.append(len(piece))
        buf += piece
        if len(buf) > cap:
            break
    return buf, sizes


def test_output_follows_the_readers_room():
    cap = 100_000
    body = _zip(b"\0" * (50 << 20), 16 + zlib.MAX_WBITS, 9)
    for encoding, data in (("gzip", body), ("gzip, gzip", _zip(body, 16 + zlib.MAX_WBITS, 9))):
        buf, sizes = _read_capped(encoding, data, cap)
        assert len(buf) == cap + 1, encoding  # never a byte past what was asked for
        assert max(sizes) <= STEP


def test_unknown_codings_are_refused_before_reading():
    for header in ("br", "gzip, zstd", "compress"):
        with pytest.raises(UnsupportedEncoding) as info:
            BoundedDecoder(header)
        assert "unsupported Content-Encoding" in str(info.value)


def test_corrupt_bodies_fail_clearly():
    with pytest.raises(DecodingFailed) as info:
        _decode("gzip", b"this is not gzip at all", 4)
    assert "gzip body could not be decoded" in str(info.value)
    broken = bytearray(_zip(BODY, zlib.MAX_WBITS))
    broken[40:60] = b"\xff" * 20
    with pytest.raises(DecodingFailed):
        _decode("deflate", bytes(broken), 1000)
    # Empty compressed bodies are empty, not errors (HEAD-like answers, 204s).
    assert _decode("gzip", b"", 10) == b"" and _decode("deflate", b"", 10) == b""


def test_sandbox_encodings_are_checked():
    assert parse_encoding("GZIP, deflate") == ("gzip", "deflate")
    for bad in ("", "br", "gzip,,deflate"):
        with pytest.raises(ValueError):
            parse_encoding(bad)
