"""`junheng status` reading workers' reports over HTTP, here from a stand-in that answers as a
newer worker would."""

from __future__ import annotations

import copy
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from streams.status import fetch_reports

#: A report as a worker newer than the reader might send it: fields this version does not know,
#: at the top, in a district's indicator, a school and a violation.
NEWER_REPORT = {
    "as_of": "2026-09-01", "rule_pack": "national-2017", "generated_by": "junheng 99",
    "districts": [{"id": "320571", "name": "苏州工业园区", "sections": {"primary": {
        "students": 98571, "schools": 34, "schools_compliant": 34,
        "indicators": {"R1": {"value": 6.07, "cv": 0.21, "cv_limit": 0.5, "ok": True, "trend": "falling"}}}}}],
    "schools": [{"id": "320571-001", "district": "320571", "name": "星海实验小学", "inspected": "2026-05-01",
                 "sections": {"primary": {"compliant": True,
                                          "indicators": {"R1": {"value": 6.24, "standard": 4.2, "ok": True}}}}}],
    "violations": [{"rule": "G5", "district": "320571", "school": "320571-001", "section": "primary",
                    "value": 46, "limit": 45, "severity": "critical", "message_zh": "班额 46", "message_en": "46",
                    "escalated": True}],
}


@pytest.fixture
def newer_worker():
    with answering(NEWER_REPORT) as url:
        yield url


@contextmanager
def answering(report: dict):
    """The address of a stand-in worker answering every request with `report`."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            body = json.dumps(report, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_newer_workers_report_with_fields_this_version_lacks_is_read(newer_worker):
    [report] = fetch_reports([newer_worker], ["320571"])
    assert report.districts[0].sections["primary"].indicators["R1"].cv == 0.21
    assert report.schools[0].sections["primary"].compliant is True
    assert [(v.rule, v.value, v.limit) for v in report.violations] == [("G5", 46, 45)]
    # What this version does not know is left out, not passed on as if it were its own.
    assert "trend" not in report.model_dump_json() and "escalated" not in report.model_dump_json()


#: The R6 CV a worker could not decide: one of the 34 primary schools has not reported its equipment.
UNDETERMINED = {"rule": "R6.cv", "district": "320571", "school": None, "section": "primary",
                "missing": ["equipment_value_cny"], "schools_unreported": 1}


def _live(violations: bool, undetermined: bool) -> dict:
    report = copy.deepcopy(NEWER_REPORT)
    if not violations:
        report["violations"] = []
    if undetermined:
        report["not_evaluated"] = [UNDETERMINED]
    return report


@pytest.mark.parametrize(("violations", "undetermined", "code"), [(False, True, 3), (True, True, 1), (False, False, 0)])
def test_status_exits_as_assess_does(capsys, violations, undetermined, code):
    # Nothing violated but the R6 CV undetermined exited 0, "all well", to a bureau's script.
    from junheng import cli

    with answering(_live(violations, undetermined)) as url:
        assert cli.main(["status", "--url", url, "--format", "json"]) == code
    out, err = capsys.readouterr()
    assert len(json.loads(out)["not_evaluated"]) == undetermined  # the report as before
    if code == 3:
        assert err.startswith("junheng: nothing found violated, but the assessment is incomplete: 1 rule could not "
                              "be evaluated for want of data") and "1 项规则因数据未报送未能评估" in err
        assert err.count("\n") == 1, err
    else:
        assert err == ""


def test_status_refuses_a_verdict_written_as_text_and_says_where(capsys):
    # `"ok": "no"` was read as false, a verdict the worker never wrote in the contract's terms.
    from junheng import cli
    from schemas.booleans import NOT_TRUE_OR_FALSE_MESSAGE

    report = copy.deepcopy(NEWER_REPORT)
    report["districts"][0]["sections"]["primary"]["indicators"]["R1"]["ok"] = "no"
    with answering(report) as url:
        assert cli.main(["status", "--url", url]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"junheng: {url}: did not answer with a junheng report (districts.0.sections.primary."
                                 f"indicators.R1.ok: {NOT_TRUE_OR_FALSE_MESSAGE}) / 返回的不是 junheng 评估报告\n"), err
