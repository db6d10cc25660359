"""A real worker's web server: the pages it serves, and clients that leave early or send a
request aiohttp cannot parse."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import struct
import sys
import time
import urllib.error
import urllib.request

import pytest

from junheng.examples import suzhou_sip
from kafka_env import Worker, county_fleet, module_broker, publish, wait_until, worker_settings  # noqa: F401 (module_broker: the broker fixture)
from streams.broker import free_port
from streams.load import snapshot_events

SIP = suzhou_sip()
FAUST_PAGE_VARIABLES = ["APP_WEB_TABLES_ENABLED", "APP_WEB_ROUTER_ENABLED", "APP_WEB_STATS_ENABLED",
                        "APP_WEB_GRAPH_ENABLED", "APP_WEB_METRICS_ENABLED"]
#: Where Faust's own environment variables, which overrode what junheng gave it, would send the
#: module's worker: filled in by the fixture.
FAUST_ELSEWHERE: dict[str, str] = {}


@pytest.fixture(scope="module")
def worker(broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("worker")
    settings = worker_settings(broker, tmp, SIP.as_of)
    # Names an operator's environment may hold for something else, all pointing away from the
    # worker's settings: another port on every interface, a broker nobody runs, a socket file.
    FAUST_ELSEWHERE.update({
        "WEB_PORT": str(free_port()), "WEB_BIND": "0.0.0.0", "WEB_HOST": "elsewhere.invalid",
        "BROKER_URL": f"kafka://127.0.0.1:{free_port()}", "FAUST_WEB_TRANSPORT": f"unix://{tmp / 'web.sock'}",
        "APP_WEB_ENABLED": "false", "FAUST_DEBUG": "1",
    })
    with pytest.MonkeyPatch.context() as env:
        # Faust's settings yielded to all of these (streams/app.py), and a worker inherits its environment.
        for name in FAUST_PAGE_VARIABLES:
            env.setenv(name, "true")
        for name, value in FAUST_ELSEWHERE.items():
            env.setenv(name, value)
        running = Worker(settings, settings.data_dir.parent / "worker.log").ready()
    loaded = snapshot_events(SIP)
    publish(settings, loaded)
    running.wait_handled(len(loaded))
    yield running
    running.stop()


def answer(url: str) -> tuple[int | None, dict]:
    """A page's status and JSON body; None while the worker does not listen yet."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
    except (urllib.error.URLError, OSError):
        return None, {}


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


def test_a_district_the_worker_does_not_hold_is_answered_404_naming_it(worker):
    # It was a 200 with an empty report, which reads as "no violations".
    held = SIP.districts[0].id
    status, body = answer(f"{worker.url}/report?district=999999")
    assert status == 404 and body["districts"] == ["999999"]
    assert body["error"] == "district 999999 is not held by this worker / 该工作进程未持有区县 999999"
    # One held and one not: no partial report that leaves the other out.
    status, body = answer(f"{worker.url}/report?district={held}&district=999999&district=999999")
    assert status == 404 and body["districts"] == ["999999"]
    status, body = answer(f"{worker.url}/report?district={held}")
    assert status == 200 and [d["id"] for d in body["districts"]] == [held]


def test_the_bench_still_reads_a_district_no_worker_holds_as_an_empty_report(worker):
    # `junheng bench` asks every worker for district "none" to make each evaluate what it folded.
    from streams.bench import _Worker, _Workers

    member = object.__new__(_Worker)  # the running worker, not one the bench starts
    member.url = worker.url
    workers = object.__new__(_Workers)
    workers.members = [member]
    nobodys = workers.report("none")
    assert nobodys["districts"] == [] and nobodys["schools"] == []
    assert [d["id"] for d in workers.report(SIP.districts[0].id)["districts"]] == [SIP.districts[0].id]


def test_a_district_asked_for_while_the_worker_takes_over_its_partitions_is_answered_503(broker, tmp_path):
    # Its own consumer group, so that the module's worker keeps its partitions.
    settings = worker_settings(broker, tmp_path, SIP.as_of, app_id="junheng-early", topic="early.events",
                               dead_letter_topic="early.dead-letter")
    early = Worker(settings, tmp_path / "early.log")
    try:
        seen = []  # every answer until the first that is not a 503
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and early.process.poll() is None and (not seen or seen[-1][0] == 503):
            status, body = answer(f"{early.url}/report?district=320571")
            if status is not None:
                seen.append((status, body))
            time.sleep(0.02)
        # Between its start and the end of Faust's recovery of its (empty) tables it cannot tell
        # whether it will hold the district; then it can, and does not.
        assert seen[0][0] == 503 and seen[-1][0] == 404, [status for status, _ in seen]
        assert seen[0][1]["districts"] == ["320571"]
        assert seen[0][1]["error"].startswith("this worker is taking over its partitions and cannot tell yet "
                                              "whether it holds district 320571: ask again shortly / ")
    finally:
        early.stop()


def test_fausts_environment_variables_do_not_move_the_worker(worker):
    # The fixture's worker is ready: it joined its consumer group on junheng's broker, not on
    # BROKER_URL's, and serves its pages on its own port (the worker with Faust's web disabled
    # by APP_WEB_ENABLED, or on a socket file, or on WEB_PORT, had none there).
    port = worker.settings.web_port
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    # Its web host only, not every interface as WEB_BIND says; and nothing on WEB_PORT.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=5).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(FAUST_ELSEWHERE["WEB_PORT"])), timeout=5).close()
    assert not (worker.settings.data_dir.parent / "web.sock").exists()


def test_fausts_debug_mode_stays_off(worker):
    # FAUST_DEBUG=1 turned it on: a blocking detector signalling the event loop, and a console
    # the worker tried to open on port 50101 (aiomonitor is not installed: it logged that).
    assert "Cannot start console" not in worker.log.read_text()
    assert "Worker ready" in worker.log.read_text()


def test_fausts_environment_variables_do_not_override_the_apps_settings(monkeypatch, tmp_path):
    from streams.app import faust_app
    from streams.settings import Settings

    settings = Settings(broker="kafka://127.0.0.1:9093", web_port=6067, partitions=3, store="rocksdb",
                        data_dir=tmp_path / "junheng")
    for name, value in {"BROKER_URL": "kafka://10.0.0.9:9092", "WEB_PORT": "8080", "WEB_BIND": "0.0.0.0",
                        "APP_DATADIR": str(tmp_path / "faust"), "APP_STORE": "memory://", "TOPIC_PARTITIONS": "64",
                        "APP_WEB_ENABLED": "false"}.items():
        monkeypatch.setenv(name, value)
    # FAUST_WEB_TRANSPORT is read once, when Faust is imported: the worker's test sets it.
    conf = faust_app(settings).conf
    assert ([str(url) for url in conf.broker], conf.web_port, conf.web_bind, conf.datadir, str(conf.store),
            conf.topic_partitions, conf.web_enabled, conf.web_transport.scheme) == (
        ["kafka://127.0.0.1:9093"], 6067, "127.0.0.1", tmp_path / "junheng", "rocksdb:", 3, True, "tcp")
    # APP_ENV_PREFIX renames every one of Faust's variables (FOO_WEB_PORT...).
    monkeypatch.setenv("APP_ENV_PREFIX", "FOO_")
    monkeypatch.setenv("FOO_WEB_PORT", "8081")
    assert faust_app(settings).conf.web_port == 6067


@pytest.mark.parametrize("header, gzipped", [
    ("gzip", True), ("GZIP", True), ("deflate, gzip;q=0.5, br", True), ("gzip; q=1.0", True), ("*", True),
    ("identity, *;q=0.1", True), ("gzip;q=0.001", True),
    ("", False), ("identity", False), ("deflate, br", False),
    # q=0: "not acceptable"; and gzip named outranks `*` either way.
    ("gzip;q=0", False), ("gzip; Q=0.000", False), ("*;q=0", False), ("gzip;q=0, *", False),
    ("gzip;q=0.5, *;q=0", True), ("gzip;q=not-a-number", False),
])
def test_gzip_is_sent_only_to_a_client_that_accepts_it(header, gzipped):
    from streams.app import accepts_gzip

    assert accepts_gzip(header) is gzipped


def test_metrics_in_gzip_only_when_accepted(worker):
    def encoding(accept: str) -> tuple[str | None, bytes]:
        request = urllib.request.Request(f"{worker.url}/metrics", headers={"Accept-Encoding": accept})
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.headers.get("Content-Encoding"), resp.read()

    coding, body = encoding("gzip;q=0, identity")
    assert coding is None and body.startswith(b"# HELP")
    coding, body = encoding("gzip;q=0.8")
    assert coding == "gzip" and gzip.decompress(body).startswith(b"# HELP")


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
