"""Compressed bodies for the sandbox's bomb answers (the ``gzip_bomb`` fault and the
``/sites/_special/gzip-bomb`` page): a stack of gzip and deflate codings, deflate either
zlib-wrapped (what RFC 9110 means by ``deflate``) or raw (what some servers send), produced
block by block so a gigabyte of zeros is never held uncompressed."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

CODINGS = ("gzip", "deflate")


def parse_encoding(value: str) -> tuple[str, ...]:
    """``"gzip, deflate"`` -> ("gzip", "deflate"): the codings in the order they are applied,
    as in a Content-Encoding header. ValueError for an empty or unknown coding."""
    codings = tuple(c.strip().lower() for c in str(value).split(","))
    if not codings or any(c not in CODINGS for c in codings):
        raise ValueError(f"encoding must be gzip and/or deflate, comma-separated: {value!r}")
    return codings


def compress(
    blocks: Iterable[bytes], codings: tuple[str, ...], *, raw_deflate: bool = False
) -> Iterator[bytes]:
    """``blocks`` encoded with each of ``codings`` in turn; compressed bytes as they come."""
    comps = [
        zlib.compressobj(
            9,
            zlib.DEFLATED,
            zlib.MAX_WBITS | 16
            if c == "gzip"
            else (-zlib.MAX_WBITS if raw_deflate else zlib.MAX_WBITS),
        )
        for c in codings
    ]
    for block in blocks:
        data = block
        for comp in comps:
            data = comp.compress(data)
        if data:
            yield data
    data = b""
    for comp in comps:
        data = comp.compress(data) + comp.flush()
    if data:
        yield data
