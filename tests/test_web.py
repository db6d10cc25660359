"""A real worker's web server: the pages it serves."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from junheng.examples import suzhou_sip
from kafka_env import EmbeddedBroker, Worker, publish, worker_settings
from streams.load import snapshot_events

SIP = suzhou_sip()
FAUST_PAGE_VARIABLES = ["APP_WEB_TABLES_ENABLED", "APP_WEB_ROUTER_ENABLED", "APP_WEB_STATS_ENABLED",
                        "APP_WEB_GRAPH_ENABLED", "APP_WEB_METRICS_ENABLED"]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log") as running:
        yield running


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
