"""Giving the memory a worker has freed back to the operating system.

A worker folds records of up to tens of kilobytes and builds and drops reports and payloads all
the time; glibc keeps most of what Python frees in its heap, so the resident size stays at its
high-water mark. In a quick bench run a quarter of a worker's resident memory after the changes
was such free heap. `malloc_trim(0)` hands the free pages back (they stay mapped, so reusing them
later costs only a page fault).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

_LIBC = ctypes.util.find_library("c")
#: Seconds between a worker's trims by default (`JUNHENG_HEAP_TRIM_INTERVAL`): often enough that
#: its resident size follows its state rather than the last burst's high-water mark. A trim walks
#: the heap's free lists on the event loop; none took 0.1 s in the national bench runs (the
#: worker logs any that does).
TRIM_INTERVAL = 10.0


class HeapTrimmer:
    """Calls glibc's `malloc_trim(0)`; a no-op where the C library has no such function."""

    def __init__(self) -> None:
        trim = None
        if _LIBC:
            try:
                trim = ctypes.CDLL(_LIBC).malloc_trim
            except (OSError, AttributeError):  # musl, macOS: no malloc_trim
                trim = None
        if trim is not None:
            trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
        self._trim = trim

    @property
    def available(self) -> bool:
        return self._trim is not None

    def trim(self) -> float:
        """Return the heap's free pages to the OS; the seconds it took (0 where unavailable)."""
        if self._trim is None:
            return 0.0
        started = time.perf_counter()
        self._trim(0)
        return time.perf_counter() - started
