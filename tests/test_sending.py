"""A worker's `/metrics` body is sent as the parts `MetricsText` keeps, in pieces, over real HTTP:
as they are, or gzip-encoded from each part's deflated chunk (alerts/gzipped.py), which curl's
`--compressed` reads whole (curl reads only the first member of a gzip body of several)."""

import asyncio
import contextlib
import gzip
import subprocess

import aiohttp
from aiohttp import web

import streams.app
from alerts.metrics import Body
from alerts.gzipped import deflated
from streams.broker import free_port

PARTS = [b"# HELP a\n", b"a 1\n" * 5, b"", b"b 2\n" * 40, b"# HELP c\n", b"c 3\n"]
BODY = Body(PARTS, [deflated(part) for part in PARTS])


@contextlib.asynccontextmanager
async def serving(handler):
    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        await runner.cleanup()


def test_parts_reach_the_client_whole_in_order_and_in_pieces(monkeypatch):
    monkeypatch.setattr(streams.app, "SEND_PIECE_BYTES", 64)
    written = []
    write = web.StreamResponse.write

    async def noted(self, data):
        written.append(len(data))
        await write(self, data)

    monkeypatch.setattr(web.StreamResponse, "write", noted)

    async def handler(request):
        return await streams.app._sent(request, BODY.parts, BODY.text_length(), "text/plain; version=0.0.4")

    async def scrape():
        async with serving(handler) as url, aiohttp.ClientSession() as session, session.get(url) as resp:
            return resp.headers["Content-Length"], resp.headers["Content-Type"], await resp.read()

    length, content_type, body = asyncio.run(scrape())
    assert body == b"".join(PARTS) and int(length) == len(body) == 202
    assert content_type == "text/plain; version=0.0.4"
    # Parts are gathered until a piece reaches 64 bytes: the 160-byte part goes alone.
    assert written == [9 + 20 + 0 + 160, 9 + 4]


def test_a_gzip_body_is_one_member_that_curl_and_python_read_whole(monkeypatch):
    monkeypatch.setattr(streams.app, "SEND_PIECE_BYTES", 16)

    async def handler(request):
        return await streams.app._sent(request, BODY.gzip_pieces(), BODY.gzip_length(), "text/plain; version=0.0.4",
                                       encoding="gzip")

    async def scrape():
        async with serving(handler) as url:
            async with aiohttp.ClientSession(auto_decompress=False) as session, session.get(url) as resp:
                raw = (resp.headers["Content-Encoding"], resp.headers["Vary"], int(resp.headers["Content-Length"]),
                       await resp.read())
            curl = await asyncio.create_subprocess_exec("curl", "--silent", "--show-error", "--fail", "--compressed",
                                                        url, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await curl.communicate()
            return raw, (curl.returncode, out, err)

    (encoding, vary, length, raw), (code, curled, err) = asyncio.run(scrape())
    assert encoding == "gzip" and length == len(raw) == BODY.gzip_length() and vary == "Accept-Encoding"
    assert gzip.decompress(raw) == b"".join(PARTS)
    assert (code, err) == (0, b"") and curled == b"".join(PARTS)
