"""Ctrl-C held back while a child process is being started."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def held_interrupts() -> Iterator[None]:
    """Hold back Ctrl-C (and any signal whose handler raises KeyboardInterrupt, as dev makes
    SIGTERM's) until the block ends, then raise it. A child started with a session of its own
    (the embedded broker, dev's worker) gets no signal from the terminal: only its parent can
    stop it, and an interrupt raised inside `subprocess.Popen`, after the fork but before the
    Popen object was returned, left the parent nothing to stop it with."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers live there
        yield
        return
    received: list[int] = []
    held = {number: signal.signal(number, lambda got, frame: received.append(got))
            for number in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(number) is signal.default_int_handler}
    try:
        yield
    finally:
        for number, handler in held.items():
            signal.signal(number, handler)
    if received:
        raise KeyboardInterrupt
