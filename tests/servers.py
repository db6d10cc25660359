"""Real Prometheus and Alertmanager processes for end-to-end tests, and a webhook sink.

Each server runs on a free loopback port in a temporary directory, with bounded readiness
waits, and is stopped (terminate, then kill) when its context ends. The metrics to scrape are
given as URLs, so the same helpers serve a test exporter today and a real worker later.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import yaml

READY_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str, every: float = 0.2):
    """Poll `condition` until it returns something truthy, and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@dataclass
class Server:
    """A started server: its base URL, process and log file."""

    url: str
    process: subprocess.Popen
    log: Path

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.load(response)

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def _process(name: str, argv: list[str], url: str, workdir: Path) -> Iterator[Server]:
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    server = Server(url, process, log)
    try:
        wait_until(lambda: process.poll() is not None or _ready(url), READY_TIMEOUT, f"{name} to be ready")
        if process.poll() is not None:
            raise AssertionError(f"{name} exited with {process.returncode}:\n{server.logs()[-3000:]}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextlib.contextmanager
def alertmanager(workdir: Path, config: Path) -> Iterator[Server]:
    """A real Alertmanager with `config`, clustering off, on a free loopback port."""
    port = free_port()
    data = workdir / "alertmanager-data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [shutil.which("prometheus-alertmanager") or "alertmanager", f"--config.file={config}",
            f"--storage.path={data}", f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
    with _process("alertmanager", argv, f"http://127.0.0.1:{port}", workdir) as server:
        yield server


def prometheus_config(metrics_urls: list[str], rule_files: list[Path], alertmanager_url: str | None,
                      interval: str = "1s") -> dict:
    """A Prometheus configuration scraping `metrics_urls` as job `junheng`, evaluating `rule_files`
    and sending alerts to `alertmanager_url`, every `interval`."""
    config: dict = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [],
    }
    by_path: dict[str, list[str]] = {}
    for url in metrics_urls:
        parts = urlsplit(url)
        by_path.setdefault(parts.path or "/metrics", []).append(parts.netloc)
    for i, (path, targets) in enumerate(sorted(by_path.items())):
        # The pipeline alerts watch job "junheng"; other paths only need distinct job names.
        job = "junheng" if i == 0 else f"junheng-{i}"
        config["scrape_configs"].append({"job_name": job, "metrics_path": path,
                                         "static_configs": [{"targets": targets}]})
    if alertmanager_url:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [urlsplit(alertmanager_url).netloc]}]}]}
    return config


@contextlib.contextmanager
def prometheus(workdir: Path, metrics_urls: list[str], rule_files: list[Path],
               alertmanager_url: str | None = None, interval: str = "1s") -> Iterator[Server]:
    """A real Prometheus scraping `metrics_urls` on a free loopback port."""
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(metrics_urls, rule_files, alertmanager_url, interval)))
    data = workdir / "prometheus-data"
    argv = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--rules.alert.resend-delay=1s"]
    with _process("prometheus", argv, f"http://127.0.0.1:{port}", workdir) as server:
        yield server


@dataclass
class Delivery:
    """One webhook notification as Alertmanager posted it."""

    path: str
    body: dict


@dataclass
class WebhookSink:
    """An HTTP server on loopback recording every POSTed JSON body, by path."""

    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, path: str | None = None) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if path is None or d.path == path]


@contextlib.contextmanager
def webhook_sink() -> Iterator[WebhookSink]:
    """Start a webhook sink; it answers 200 to every POST."""
    port = free_port()
    sink = WebhookSink(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with sink.lock:
                sink.deliveries.append(Delivery(self.path, json.loads(body or b"{}")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
