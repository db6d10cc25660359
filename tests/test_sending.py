"""A worker's `/metrics` body is sent as the parts `MetricsText` keeps, in pieces, over real HTTP."""

import asyncio

import aiohttp
from aiohttp import web

import streams.app
from streams.broker import free_port


def test_parts_reach_the_client_whole_in_order_and_in_pieces(monkeypatch):
    parts = [b"# HELP a\n", b"a 1\n" * 5, b"", b"b 2\n" * 40, b"# HELP c\n", b"c 3\n"]
    monkeypatch.setattr(streams.app, "SEND_PIECE_BYTES", 64)
    written = []
    write = web.StreamResponse.write

    async def noted(self, data):
        written.append(len(data))
        await write(self, data)

    monkeypatch.setattr(web.StreamResponse, "write", noted)

    async def handler(request):
        return await streams.app._sent(request, parts, "text/plain; version=0.0.4")

    async def scrape():
        app = web.Application()
        app.router.add_get("/metrics", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                return resp.headers["Content-Length"], resp.headers["Content-Type"], await resp.read()
        finally:
            await runner.cleanup()

    length, content_type, body = asyncio.run(scrape())
    assert body == b"".join(parts) and int(length) == len(body) == 202
    assert content_type == "text/plain; version=0.0.4"
    # Parts are gathered until a piece reaches 64 bytes: the 160-byte part goes alone.
    assert written == [9 + 20 + 0 + 160, 9 + 4]
