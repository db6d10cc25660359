"""`junheng dev`, the README's first command: broker, worker, example and simulator in one."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from streams.broker import free_port


def test_dev_serves_the_live_assessment_and_stops_everything_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "JUNHENG_DATA_DIR": str(tmp_path)}
    dev = subprocess.Popen([sys.executable, "-m", "junheng", "dev", "--web-port", str(port), "--rate", "20",
                            "--count", "40"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                           start_new_session=True, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("Ctrl-C" in line for line in lines):
            lines.append(dev.stdout.readline())
        assert any(f"http://127.0.0.1:{port}/metrics" in line for line in lines), lines
        deadline = time.monotonic() + 60
        applied = 0
        while time.monotonic() < deadline and applied < 44 + 40:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                applied = sum(float(line.rsplit(" ", 1)[1]) for line in resp.read().decode().splitlines()
                              if line.startswith("junheng_events_total{"))
            time.sleep(0.3)
        assert applied >= 44 + 40  # the SIP snapshot (1 district + 43 schools) and 40 changes
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/report", timeout=10) as resp:
            report = json.load(resp)
        assert len(report["schools"]) == 43 and report["districts"][0]["id"] == "320571"
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=60)
    broker_port = int(re.search(r"broker kafka://127\.0\.0\.1:(\d+)", "".join(lines)).group(1))
    for left in (port, broker_port):  # the worker's web port and the broker's: both closed
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", left)) != 0, f"something still listens on {left}"


def test_dev_interrupted_while_its_broker_starts_leaves_nothing_running(tmp_path):
    """Ctrl-C while the broker started left the broker running: it has a session of its own, so
    only dev can stop it, and dev's cleanup began after the worker's start."""
    env = {**os.environ, "JUNHENG_DATA_DIR": str(tmp_path)}
    dev = subprocess.Popen([sys.executable, "-m", "junheng", "dev", "--web-port", str(free_port())],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    log = tmp_path / "broker.log"
    deadline = time.monotonic() + 60
    while not (log.exists() and _holding(log)) and time.monotonic() < deadline:
        time.sleep(0.01)
    # dev opens the log before it starts the broker, so the Ctrl-C lands while the broker's
    # process is being started or while dev waits for it to answer (a user's Ctrl-C 0.45 s after
    # the start landed there): inside `subprocess.Popen` it left the broker running one run in
    # four or so, until held_interrupts.
    dev.send_signal(signal.SIGINT)
    dev.wait(timeout=60)
    left = _holding(log)
    for pid in left:  # not to leave it to the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert left == [], "a process still holds the broker's log: the broker was left running"


def _holding(path) -> list[int]:
    """The processes that have `path` open (the broker writes its log through its stdout)."""
    holders = []
    for fd_dir in os.listdir("/proc"):
        if not fd_dir.isdigit():
            continue
        try:
            links = [os.readlink(f"/proc/{fd_dir}/fd/{fd}") for fd in os.listdir(f"/proc/{fd_dir}/fd")]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if str(path) in links:
            holders.append(int(fd_dir))
    return holders


def test_an_interrupt_while_the_broker_process_is_being_started_still_stops_it(monkeypatch):
    # Raised inside subprocess.Popen, after the fork and before the Popen object came back, a
    # Ctrl-C left EmbeddedBroker nothing to stop its process with (it has a session of its own).
    import streams.broker

    started, real_popen = [], subprocess.Popen

    def popen_then_interrupted(args, **kwargs):
        child = real_popen(["sleep", "60"], start_new_session=True)
        started.append(child)
        os.kill(os.getpid(), signal.SIGINT)  # delivered before Popen returns
        return child

    monkeypatch.setattr(streams.broker.subprocess, "Popen", popen_then_interrupted)
    broker = streams.broker.EmbeddedBroker()
    try:
        with pytest.raises(KeyboardInterrupt):
            broker.start()
    finally:
        broker.stop()
        for child in started:
            alive = child.poll() is None
            child.kill()
            child.wait()
    assert started and not alive, "the process started when the interrupt came was left running"
