"""Work left going on the event loop: a task a wait gave up on must not be reported by asyncio
as an error nobody retrieved, while whoever reads its result still meets the error."""

from __future__ import annotations

import asyncio
import gc

import pytest

from junheng.turns import left_going


async def _fails() -> None:
    raise ValueError("render failed")


def _unretrieved_reports(mark) -> list[str]:
    reports = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reports.append(context["message"]))
        task = mark(asyncio.ensure_future(_fails()))
        await asyncio.wait({task}, timeout=1)
        del task
        gc.collect()  # asyncio reports an unretrieved error when the task is collected

    asyncio.run(main())
    return reports


def test_an_error_left_going_is_not_reported_as_never_retrieved():
    assert _unretrieved_reports(left_going) == []
    assert _unretrieved_reports(lambda task: task) == ["Task exception was never retrieved"]


def test_its_reader_still_meets_the_error():
    async def main():
        task = left_going(asyncio.ensure_future(_fails()))
        await asyncio.wait({task}, timeout=1)
        task.result()

    with pytest.raises(ValueError, match="render failed"):
        asyncio.run(main())
