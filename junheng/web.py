"""Web addresses given on the command line (a worker's, Grafana's)."""

from __future__ import annotations

import urllib.parse

from junheng.errors import UserError


def check_web_address(url: str, example: str, named_zh: str) -> None:
    """Refuse `url` unless it is http or https with a host and, if any, a valid port; `example`
    and `named_zh` (what the address should name) make up the message."""
    try:
        parts = urllib.parse.urlsplit(url)
        # An HTTP client refuses spaces and control characters in a URL, with a traceback.
        usable = (parts.scheme in ("http", "https") and bool(parts.hostname)
                  and all(ch.isprintable() and not ch.isspace() for ch in url))
        parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError:  # e.g. an unclosed IPv6 bracket
        usable = False
    if not usable:
        raise UserError(f"--url {url!r}: not a web address like {example} / 不是{named_zh}的网址（例如 {example}）")
