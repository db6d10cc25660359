"""A real worker's web server: the pages it serves, and clients that leave early or send a
request aiohttp cannot parse."""

from __future__ import annotations

import logging
import socket
import struct
import sys
import urllib.error
import urllib.request

import pytest

from junheng.examples import suzhou_sip
from kafka_env import Worker, county_fleet, module_broker, publish, wait_until, worker_settings  # noqa: F401 (module_broker: the broker fixture)
from streams.load import snapshot_events

SIP = suzhou_sip()
FAUST_PAGE_VARIABLES = ["APP_WEB_TABLES_ENABLED", "APP_WEB_ROUTER_ENABLED", "APP_WEB_STATS_ENABLED",
                        "APP_WEB_GRAPH_ENABLED", "APP_WEB_METRICS_ENABLED"]


@pytest.fixture(scope="module")
def worker(broker, tmp_path_factory):
    settings = worker_settings(broker, tmp_path_factory.mktemp("worker"), SIP.as_of)
    with pytest.MonkeyPatch.context() as env:
        # Faust's settings yield to these, and a worker inherits its environment.
        for name in FAUST_PAGE_VARIABLES:
            env.setenv(name, "true")
        running = Worker(settings, settings.data_dir.parent / "worker.log").ready()
    loaded = snapshot_events(SIP)
    publish(settings, loaded)
    running.wait_handled(len(loaded))
    yield running
    running.stop()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def log_since(worker: Worker, offset: int) -> str:
    return worker.log.read_bytes()[offset:].decode(errors="replace")


def test_only_junhengs_own_pages_are_served(worker):
    school, district = SIP.schools[0].id, SIP.districts[0].id
    # Faust's: its index, a table's keys and values (a school's whole state), which worker holds
    # a key (the cluster's layout), statistics, the service graph, its performance page.
    faust_pages = ["/", "/table/", "/table/schools/", f"/table/schools/{school}/", "/table/positions/2/",
                   "/router/", f"/router/schools/{school}/", "/stats/", "/assignment/", "/graph/",
                   "/performance/"]
    assert {page: status_of(worker.url + page) for page in faust_pages} == {page: 404 for page in faust_pages}
    assert status_of(f"{worker.url}/metrics") == 200
    assert status_of(f"{worker.url}/report?district={district}") == 200
    assert status_of(f"{worker.url}/ready") == 200


def test_a_client_that_leaves_during_metrics_is_not_logged_as_an_error(worker):
    # A body larger than what the kernel's send buffer takes at once (up to 4 MiB on loopback):
    # a smaller one is written whole before the client leaves, and nothing fails.
    fleet = [event for county in county_fleet(180) for event in snapshot_events(county)]
    handled = worker.events_handled()
    publish(worker.settings, fleet)
    worker.wait_handled(handled + len(fleet), timeout=120)
    assert len(worker.metrics()) > 6_000_000
    start = worker.log.stat().st_size
    for _ in range(3):
        # Prometheus at its scrape timeout: no gzip, a little read, then gone (RST on close).
        client = socket.create_connection(("127.0.0.1", worker.settings.web_port), timeout=10)
        client.sendall(b"GET /metrics HTTP/1.1\r\nHost: worker\r\n\r\n")
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
    wait_until(lambda: log_since(worker, start).count("left before the end of /metrics") == 3
               or "Traceback" in log_since(worker, start), timeout=30, what="the worker noting the clients gone")
    log = log_since(worker, start)
    assert "Traceback" not in log and "[ERROR]" not in log, log[:3000]
    assert log.count("127.0.0.1 left before the end of /metrics") == 3
    assert status_of(f"{worker.url}/metrics") == 200


def test_a_request_line_too_long_is_answered_400_in_one_line_of_log(worker):
    start = worker.log.stat().st_size
    client = socket.create_connection(("127.0.0.1", worker.settings.web_port), timeout=10)
    client.sendall(b"GET /report?district=" + b"4" * 9000 + b" HTTP/1.1\r\nHost: worker\r\n\r\n")
    answer = b""
    while chunk := client.recv(4096):
        answer += chunk
    client.close()
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    wait_until(lambda: "malformed request" in log_since(worker, start) or "Traceback" in log_since(worker, start),
               timeout=30, what="the worker noting the request")
    log = log_since(worker, start)
    assert "Traceback" not in log and "[ERROR]" not in log, log[:3000]
    assert "[INFO] a malformed request from 127.0.0.1 was answered 400: Got more than 8190 bytes" in log


def test_a_handler_that_fails_is_still_an_error_with_its_traceback():
    from aiohttp.log import server_logger

    from streams.app import _MALFORMED_QUIETLY

    try:
        raise RuntimeError("a bug in a page")
    except RuntimeError:
        record = server_logger.makeRecord(server_logger.name, logging.ERROR, __file__, 0,
                                          "Error handling request from %s", ("127.0.0.1",), sys.exc_info())
    assert _MALFORMED_QUIETLY.filter(record)
    assert record.levelno == logging.ERROR and record.exc_info[0] is RuntimeError
