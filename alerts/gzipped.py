"""A gzip body made of parts compressed one by one, each once.

Prometheus asks for `/metrics` gzip-encoded. A national worker's text is about 130 MiB, and
compressing all of it at every scrape would cost about half a second; but a scrape interval sees
few districts change, and the worker keeps each district's text until it does. So each part is
compressed on its own, when it is rendered, into a raw deflate chunk that ends on a byte boundary
and refers to nothing before it (a fresh compressor, flushed with Z_SYNC_FLUSH); such chunks
joined in any order are one valid deflate stream. A body is then a gzip header, the chunks of its
parts, a final empty block and the trailer (the CRC-32 and length of the whole text).

It is one gzip member, not several joined: curl, browsers and several HTTP libraries read only
the first member of a body of many.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence

#: Magic, deflate, no flags, no modification time, no extra flags, operating system unknown.
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: A final deflate block with fixed codes and nothing in it: ends the stream.
LAST_BLOCK = b"\x03\x00"
#: Fastest: about 300 MB/s and 11 times smaller on the worker's text here (level 6: 65 MB/s, 14 times).
LEVEL = 1


def deflated(part: bytes) -> bytes:
    """`part` as a raw deflate chunk that can stand anywhere in a stream of such chunks."""
    if not part:
        return b""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(part) + compressor.flush(zlib.Z_SYNC_FLUSH)


def gzip_length(chunks: Sequence[bytes]) -> int:
    """The length of the body `gzip_pieces` gives for these chunks."""
    return len(HEADER) + sum(map(len, chunks)) + len(LAST_BLOCK) + 8


def gzip_pieces(parts: Sequence[bytes], chunks: Sequence[bytes]) -> Iterator[bytes]:
    """The gzip body of the text `b"".join(parts)`, given each part's `deflated` chunk: the
    checksum is computed as the pieces are taken, so a sender that gives the loop back between
    pieces never holds it for the whole text."""
    if len(parts) != len(chunks):
        raise ValueError(f"{len(parts)} parts for {len(chunks)} chunks")
    yield HEADER
    crc, size = 0, 0
    for part, chunk in zip(parts, chunks):
        crc = zlib.crc32(part, crc)
        size += len(part)
        yield chunk
    yield LAST_BLOCK + struct.pack("<II", crc, size & 0xFFFFFFFF)
