"""A plain, stateless Faust agent with the worker's settings: the ceiling `junheng bench`
measures single-event records against.

Faust's cost is per record, whatever the agent does with it; the issue's target for single-event
records is the rate of such an agent on the same machine. It reads its topic and counts the
records, and `/count` says how many it has seen and when it saw the first and the latest
(`time.monotonic()`, one clock for every process of the machine). Started by the bench as
`python -m streams.plain`, configured through the environment like a worker.
"""

from __future__ import annotations

import time

import faust
from faust.web import Request, Response, View

from streams.app import faust_app, faust_worker
from streams.settings import Settings, load_settings


def create_plain_app(settings: Settings) -> faust.App:
    """The agent's application: `settings.topic` read from the start, each record counted."""
    app = faust_app(settings)
    topic = app.topic(settings.topic, partitions=settings.partitions, key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")
    seen = {"count": 0, "first": None, "latest": None}

    @app.agent(topic)
    async def count(stream):
        async for _ in stream:
            seen["latest"] = time.monotonic()
            if seen["first"] is None:
                seen["first"] = seen["latest"]
            seen["count"] += 1

    @app.page("/count")
    class Count(View):
        async def get(self, request: Request) -> Response:
            return self.json(seen)

    return app


def main() -> None:
    from streams.cli import tune_runtime

    settings = load_settings()
    tune_runtime()  # uvloop and the collector's thresholds, as in a worker
    faust_worker(create_plain_app(settings), settings).execute_from_commandline()


if __name__ == "__main__":
    main()
