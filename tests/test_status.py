"""`junheng status` reading workers' reports over HTTP, here from a stand-in that answers as a
newer worker would."""

from __future__ import annotations

import json
import threading
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
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            body = json.dumps(NEWER_REPORT, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_newer_workers_report_with_fields_this_version_lacks_is_read(newer_worker):
    [report] = fetch_reports([newer_worker], ["320571"])
    assert report.districts[0].sections["primary"].indicators["R1"].cv == 0.21
    assert report.schools[0].sections["primary"].compliant is True
    assert [(v.rule, v.value, v.limit) for v in report.violations] == [("G5", 46, 45)]
    # What this version does not know is left out, not passed on as if it were its own.
    assert "trend" not in report.model_dump_json() and "escalated" not in report.model_dump_json()
