"""Freed heap memory goes back to the operating system (glibc, as on the deployment images)."""

from __future__ import annotations

from streams.heap import HeapTrimmer


def resident_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) * 1024


def test_a_trim_returns_heap_pages_that_live_blocks_keep_from_being_released():
    trimmer = HeapTrimmer()
    assert trimmer.available
    blocks = [bytes(2048) for _ in range(100_000)]  # ~200 MiB, each block malloc'd by glibc
    survivors = blocks[::50]  # one block in 50 stays alive: the heap cannot shrink from its top
    del blocks
    before = resident_bytes()
    took = trimmer.trim()
    assert before - resident_bytes() > 100 << 20
    assert took > 0
    assert len(survivors) == 2_000
