"""Content-Encoding decoding with a cap, for both HTTP paths (``ApiClient`` and ``SafeFetcher``).

A small compressed body can inflate enormously (a "zip bomb"), so bodies are never inflated
in one go: every piece of output is at most what the reader still has room for (``room()``,
asked before each piece) and at most :data:`STEP` bytes. A reader that stops at its size
cap therefore never holds much more than the cap, whatever the server sent.

* ``gzip`` / ``x-gzip``: RFC 1952.
* ``deflate``: RFC 9110 says the zlib format (RFC 1950: a two-byte header, deflate data, an
  Adler-32), but some servers send raw deflate data (RFC 1951). The first two bytes decide:
  a zlib header has compression method 8, a window of at most 32 KiB (CINFO <= 7) and a
  header check making ``CMF * 256 + FLG`` a multiple of 31. A raw stream almost never starts
  like that (it would need a non-final stored block with non-zero padding bits). The
  decision waits for two bytes, so it does not depend on how the body is chunked.
* Stacked codings (``Content-Encoding: gzip, deflate``) are undone in reverse order, each
  stage bounded the same way; ``identity`` is ignored.
* Anything else (``br``, ``zstd``, ``compress``, ...) raises :class:`UnsupportedEncoding`
  before a byte is read: both clients offer only ``gzip, deflate``.

Corrupt compressed data raises :class:`DecodingFailed`. Trailing bytes after the end of a
compressed stream are ignored, as httpx does.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator

__all__ = [
    "STEP",
    "BoundedDecoder",
    "DecodingFailed",
    "UnsupportedEncoding",
    "deflate_wbits",
]

# The largest piece inflated at once, whatever the reader's room.
STEP = 64 * 1024

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS


class UnsupportedEncoding(ValueError):
    """A Content-Encoding this decoder does not undo."""


class DecodingFailed(ValueError):
    """The compressed body is corrupt."""


def deflate_wbits(head: bytes) -> int:
    """The zlib ``wbits`` for a ``deflate`` body starting with ``head``: zlib-wrapped when the
    first two bytes are a valid RFC 1950 header, raw deflate otherwise."""
    if len(head) >= 2:
        cmf, flg = head[0], head[1]
        if cmf & 0x0F == 8 and cmf >> 4 <= 7 and ((cmf << 8) | flg) % 31 == 0:
            return _ZLIB_WBITS
    return _RAW_WBITS


class _Stage:
    """One coding: a zlib decompressor whose output is bounded per call."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._head = b""  # deflate: bytes held until the format is known
        self._z = zlib.decompressobj(_GZIP_WBITS) if coding != "deflate" else None

    def feed(self, data: bytes, limit: Callable[[], int]) -> Iterator[bytes]:
        if self._z is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._z = zlib.decompressobj(deflate_wbits(data))
        while data:
            try:
                out = self._z.decompress(data, max(1, min(STEP, limit())))
            except zlib.error as exc:
                raise DecodingFailed(f"{self.coding} body could not be decoded: {exc}") from None
            data = self._z.unconsumed_tail
            if out:
                yield out
            elif data:  # cannot happen with max_length >= 1; never loop forever on it
                raise DecodingFailed(f"{self.coding} body made no progress")

    def finish(self, limit: Callable[[], int]) -> Iterator[bytes]:
        if self._z is None:  # a deflate body shorter than two bytes
            if not self._head:
                return
            self._z = zlib.decompressobj(_RAW_WBITS)
            head, self._head = self._head, b""
            yield from self.feed(head, limit)
        try:
            # All input is consumed by now: only the little output zlib held back remains.
            rest = self._z.flush()
        except zlib.error as exc:
            raise DecodingFailed(f"{self.coding} body could not be decoded: {exc}") from None
        if rest:
            yield rest


def _codings(header: str) -> list[str]:
    codings = [c.strip().lower() for c in header.split(",")]
    return [c for c in codings if c and c != "identity"]


class BoundedDecoder:
    """Undo a response's ``Content-Encoding`` without ever inflating past the reader's room.

    ``BoundedDecoder(response.headers.get("content-encoding", ""))`` raises
    :class:`UnsupportedEncoding` for a coding it does not know. :meth:`decode` then turns the
    raw body chunks into decoded pieces; an uncompressed body passes through chunk by chunk.
    """

    SUPPORTED = frozenset({"gzip", "x-gzip", "deflate"})

    def __init__(self, content_encoding: str) -> None:
        codings = _codings(content_encoding or "")
        unknown = [c for c in codings if c not in self.SUPPORTED]
        if unknown:
            raise UnsupportedEncoding(f"unsupported Content-Encoding {unknown[0]!r}")
        self.codings = tuple(codings)
        # Codings are listed in the order they were applied: undo the last one first.
        self._stages = [_Stage(c) for c in reversed(codings)]
        self._room: Callable[[], int] = lambda: STEP

    @property
    def identity(self) -> bool:
        return not self._stages

    def decode(self, chunks: Iterable[bytes], room: Callable[[], int]) -> Iterator[bytes]:
        """The decoded body of ``chunks`` (the raw body), in pieces of at most
        ``max(1, min(STEP, room()))`` bytes each; ``room`` is asked before every piece, so the
        reader's buffer may grow between pieces and the output follows it. Stop iterating
        whenever enough has been read: nothing more is inflated."""
        self._room = room
        if self.identity:
            yield from chunks
            return
        for chunk in chunks:
            yield from self._through(0, chunk)
        for i, stage in enumerate(self._stages):
            for piece in stage.finish(self._limit(i)):
                yield from self._through(i + 1, piece)

    def _limit(self, i: int) -> Callable[[], int]:
        # The last stage produces what the reader gets; earlier ones feed the next stage.
        return self._room if i == len(self._stages) - 1 else (lambda: STEP)

    def _through(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self._stages):
            yield data
            return
        for piece in self._stages[i].feed(data, self._limit(i)):
            yield from self._through(i + 1, piece)
