"""The command line as a user meets it: exit codes, readable output, one-line errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from streams.broker import free_port

EXAMPLES = Path(__file__).parent.parent / "deploy" / "examples"


def junheng(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "junheng", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)


def test_assess_rural_county_table_and_exit_1():
    run = junheng("assess", str(EXAMPLES / "rural-county.json"))
    assert run.returncode == 1
    assert "青岚县（431299）" in run.stdout and "R5 生均体育运动场馆面积" in run.stdout
    assert "0.551" in run.stdout and "✗ 超标" in run.stdout
    assert "[严重] G5" in run.stdout and "最大班额 56 人" in run.stdout


def test_assess_json_follows_the_report_contract():
    run = junheng("assess", str(EXAMPLES / "rural-county.json"), "--format", "json")
    report = json.loads(run.stdout)
    assert report["rule_pack"] == "national-2017" and report["as_of"] == "2024-09-01"
    primary = report["districts"][0]["sections"]["primary"]
    mean, cv = _primary_mean_and_cv(EXAMPLES / "rural-county.json", "sports_area_m2")
    assert primary["indicators"]["R5"] == {"value": round(mean, 4), "cv": round(cv, 4), "cv_limit": 0.5, "ok": False}
    rules = {v["rule"] for v in report["violations"]}
    assert {"R5.cv", "G5", "Q4", "G6.small_school", "G14", "school_compliance"} <= rules
    q4 = next(v for v in report["violations"] if v["rule"] == "Q4")
    # Held to 2024's time progress on 2024-09-01: eight months gone, 5% × 8/12.
    assert q4["school"] == "431299-021" and q4["value"] == 0.03 and q4["limit"] == 0.033333 and q4["severity"] == "critical"


def _primary_mean_and_cv(path, figure):
    """A primary per-student indicator (R4–R6) by the two-pass textbook formula, splitting
    whole-school figures by students, over the sections that reported it."""
    snap = json.loads(path.read_text(encoding="utf-8"))
    pairs = []
    for school in snap["schools"]:
        students = sum(s["students"] for s in school["sections"].values())
        if school["kind"] == "special" or (school["kind"] == "teaching_point" and students < 50):
            continue
        section = school["sections"].get("primary")
        if not section or (figure not in section and figure not in school):
            continue
        area = section.get(figure, school.get(figure, 0) * section["students"] / students)
        pairs.append((section["students"], area / section["students"]))
    total = sum(p for p, _ in pairs)
    mean = sum(p * x for p, x in pairs) / total
    return mean, (sum(p * (x - mean) ** 2 for p, x in pairs) / total) ** 0.5 / mean


def test_assess_shows_a_cv_some_schools_did_not_report_as_undetermined():
    # 431299-013 did not report its equipment value: the primary R6 CV (0.082 ≤ 0.50) is over
    # the other 17 of the county's 18 primary schools, and the county is not balanced on R6
    # until the 18th reports. It was shown as passing (ok true, ✓).
    path = EXAMPLES / "rural-county.json"
    report = json.loads(junheng("assess", str(path), "--format", "json").stdout)
    mean, cv = _primary_mean_and_cv(path, "equipment_value_cny")
    r6 = report["districts"][0]["sections"]["primary"]["indicators"]["R6"]
    assert r6 == {"value": round(mean, 4), "cv": round(cv, 4), "cv_limit": 0.5, "ok": None, "schools_unreported": 1}
    assert [n for n in report["not_evaluated"] if n["rule"] == "R6.cv"] == [{
        "rule": "R6.cv", "district": "431299", "school": None, "section": "primary",
        "missing": ["equipment_value_cny"], "schools_unreported": 1,
        "message_zh": f"青岚县（431299）小学生均教学仪器设备值校际差异系数未能判定：18 所小学中 1 所未报送 "
                      f"equipment_value_cny，据已报送的 17 所计算为 {cv:.3f}（上限 0.5）",
        "message_en": f"青岚县 (431299), primary: Inter-school CV of equipment value per student undetermined: "
                      f"1 of 18 primary schools did not report equipment_value_cny; over the 17 that did it is "
                      f"{cv:.3f} (limit 0.5)",
    }]
    assert "R6.cv" not in {v["rule"] for v in report["violations"]}
    table = junheng("assess", str(path)).stdout
    primary_r6, junior_r6 = [line.split() for line in table.splitlines() if line.lstrip().startswith("R6 生均")]
    assert primary_r6[2:] == [f"{mean:,.2f}", f"{cv:.3f}", "0.50", "?", "未能判定"], table
    assert junior_r6[-1] == "✓"
    assert "  R6.cv                  青岚县（431299）小学生均教学仪器设备值校际差异系数未能判定：18 所小学中 1 所未报送" in table


def test_assess_sip_passes_all_but_g4():
    run = junheng("assess", str(EXAMPLES / "suzhou-sip.json"), "--format", "json")
    report = json.loads(run.stdout)
    assert run.returncode == 1
    assert {v["rule"] for v in report["violations"]} == {"G4"}
    assert report["districts"][0]["sections"]["primary"]["students"] == 98571
    assert report["districts"][0]["sections"]["junior"]["students"] == 36622


def test_assess_with_the_sip_overlay_at_a_date():
    run = junheng("assess", str(EXAMPLES / "suzhou-sip.json"), "--rules", "suzhou-sip-2023", "--as-of", "2025-06-01",
                  "--format", "json")
    report = json.loads(run.stdout)
    assert report["rule_pack"] == "suzhou-sip-2023"
    assert any(v["rule"] == "SIP.key_teachers.2025" for v in report["violations"])


def test_assess_passing_snapshot_exits_0(tmp_path):
    from make import snapshot

    path = tmp_path / "ok.json"
    path.write_text(snapshot().model_dump_json(), encoding="utf-8")
    run = junheng("assess", str(path))
    assert run.returncode == 0, run.stdout
    assert "违规 violations: 无 none ✓" in run.stdout
    assert "未能评估" not in run.stdout and run.stderr == ""  # every rule evaluated, and each holds


def _unreported_equipment(tmp_path, **primary) -> Path:
    """Three passing primary schools, the first without its equipment value: its R6 and
    compliance and the district's R6 CV (0 over the other two, within 0.50) are undetermined."""
    from make import school, snapshot

    first = school("320571-001", sections={"primary": primary})
    del first["sections"]["primary"]["equipment_value_cny"]
    path = tmp_path / "unreported.json"
    path.write_text(snapshot(first, school("320571-002"), school("320571-003")).model_dump_json(), encoding="utf-8")
    return path


INCOMPLETE_NOTE = ('junheng: nothing found violated, but the assessment is incomplete: 3 rules could not be evaluated '
                   'for want of data (see "not evaluated" in the report) / 未发现违规，但评估不完整：3 项规则因数据未报送'
                   '未能评估（见报告中的“未能评估”）\n')


def test_assess_with_nothing_violated_but_a_cv_undetermined_exits_3(tmp_path):
    # It exited 0, "all well", though whether the district is balanced on R6 is not known.
    path = _unreported_equipment(tmp_path)
    run = junheng("assess", str(path), "--format", "json")
    assert run.returncode == 3 and run.stderr == INCOMPLETE_NOTE, run.stderr
    report = json.loads(run.stdout)  # stdout is the report alone, as before
    assert report["violations"] == [] and report["districts"][0]["sections"]["primary"]["indicators"]["R6"]["ok"] is None
    assert [(n["rule"], n["school"]) for n in report["not_evaluated"]] == [
        ("R6.cv", None), ("R6", "320571-001"), ("school_compliance", "320571-001")]
    table = junheng("assess", str(path))
    assert table.returncode == 3 and table.stderr == INCOMPLETE_NOTE
    assert "违规 violations: 无 none ✓" in table.stdout and "未能评估 not evaluated (data not reported / 数据未报送): 3" in table.stdout


def test_violations_take_precedence_over_rules_not_evaluated(tmp_path):
    # A class of 50 (G5) beside the undetermined CV: violations are found, whatever is unknown.
    run = junheng("assess", str(_unreported_equipment(tmp_path, class_sizes=[40] * 21 + [50])), "--format", "json")
    report = json.loads(run.stdout)
    assert run.returncode == 1 and run.stderr == "", run.stderr
    assert [v["rule"] for v in report["violations"]] == ["G5"] and len(report["not_evaluated"]) == 3
    # The rural county: violations, and nine rules not evaluated (its primary R6 CV among them).
    run = junheng("assess", str(EXAMPLES / "rural-county.json"), "--format", "json")
    assert run.returncode == 1 and run.stderr == "" and json.loads(run.stdout)["not_evaluated"], run.stderr


def _not_evaluated(*rules: str) -> list:
    from schemas.report import NotEvaluated

    return [NotEvaluated(rule=rule, district="320571", school=None, section="primary", missing=["x"])
            for rule in rules]


def test_the_incomplete_note_counts_one_rule_as_one():
    from junheng.cli import incomplete_note

    note = incomplete_note(_not_evaluated("R6.cv"))
    assert note.startswith("junheng: nothing found violated, but the assessment is incomplete: "
                           "1 rule could not be evaluated for want of data")
    assert "1 项规则因数据未报送未能评估" in note


def test_the_incomplete_note_counts_checks_apart_from_rules():
    # One figure missing at two schools: each school's R6 and compliance, and the district's CV.
    # The note said "5 rules" of what are three.
    from junheng.cli import incomplete_note

    note = incomplete_note(_not_evaluated("R6.cv", "R6", "R6", "school_compliance", "school_compliance"))
    assert "incomplete: 5 checks of 3 rules could not be evaluated" in note
    assert "3 项规则的 5 处检查因数据未报送未能评估" in note


@pytest.mark.parametrize("args,expected", [
    (["assess", "/nonexistent.json"], "junheng: /nonexistent.json: no such file"),
    (["assess", str(EXAMPLES / "suzhou-sip.json"), "--rules", "nope"], "junheng: rule pack 'nope' not found"),
    (["load", str(EXAMPLES / "suzhou-sip.json"), "--broker", "localhost:9092"], "junheng: --broker 'localhost:9092': broker must look like kafka://host:port"),
    # Refused at once: each waited 30 s for the broker, then failed in the client.
    (["load", str(EXAMPLES / "suzhou-sip.json"), "--broker", "kafka://host:notaport"], "junheng: --broker 'kafka://host:notaport': broker must look like kafka://host:port"),
    (["simulate", "--broker", "kafka://[::1:9092"], "junheng: --broker 'kafka://[::1:9092': broker must look like kafka://host:port"),
    (["worker", "--data-dir", "/proc/none/state", "--broker", "kafka://127.0.0.1:9"],
     "junheng: --data-dir / JUNHENG_DATA_DIR /proc/none/state: cannot create (No such file or directory)"),
    (["status", "--url", "127.0.0.1:6066"], "junheng: --url '127.0.0.1:6066': not a web address like http://127.0.0.1:6066"),
    # A traceback, from the URL parser.
    (["status", "--url", "http://[::1"], "junheng: --url 'http://[::1': not a web address like http://127.0.0.1:6066"),
    (["status", "--url", "http://a b/"], "junheng: --url 'http://a b/': not a web address like http://127.0.0.1:6066"),
    # Refused before the run, not after twenty minutes of it.
    (["bench", "--json", "/nonexistent/figures.json"], "junheng: --json /nonexistent/figures.json: cannot write there"),
    (["bench", "--workdir", "/etc/hostname"], "junheng: --workdir /etc/hostname: a file, not a directory"),
])
def test_user_errors_are_one_line_and_exit_2(args, expected):
    run = junheng(*args)
    assert run.returncode == 2
    assert run.stderr.startswith(expected), run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,expected", [
    # Each was a traceback or, for --districts 0, a bench that never ended.
    (["bench", "--districts", "0"], "argument --districts: expected a whole number of at least 1: '0'"),
    (["bench", "--quick", "--events", "-5"], "argument --events: expected a whole number of at least 1: '-5'"),
    (["load", str(EXAMPLES / "suzhou-sip.json"), "--revision", "-1"], "argument --revision: expected a whole number of at least 0"),
    (["simulate", "--count", "-5"], "argument --count: expected a whole number of at least 0: '-5' / 应为不小于 0 的整数"),
    (["simulate", "--rate", "nan"], "junheng: --rate must be a number of events per second from 0.001 to 1,000,000"),
    # argparse's own errors were English only.
    (["bench", "--workers", "9"], "invalid choice: 9 (choose from 1, 2, 3, 4, 5, 6, 7, 8) / 参数有误，用 junheng bench -h 查看用法"),
    # OverflowError tracebacks: the pause after the first event, and the progress interval.
    (["simulate", "--rate", "1e-300"], "junheng: --rate must be a number of events per second from 0.001"),
    (["simulate", "--rate", "1e308"], "junheng: --rate must be a number of events per second from 0.001"),
    (["load", str(EXAMPLES / "suzhou-sip.json"), "--revision", "99999999999999999999"],
     "argument --revision: expected a whole number of at most 4611686018427387904"),
])
def test_numbers_out_of_range_are_refused_before_anything_runs(args, expected):
    run = junheng(*args)
    assert run.returncode == 2 and expected in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_bad_snapshot_and_bad_pack_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"as_of": "2026-09-01", "districts": [], "schools": [{"id": 1}]}', encoding="utf-8")
    run = junheng("assess", str(bad))
    assert run.returncode == 2 and "schools.0" in run.stderr and "Traceback" not in run.stderr
    pack = tmp_path / "pack.yaml"
    pack.write_text("pack: local\ntitle_zh: 本地\ntitle_en: local\nextends: national-2017\nrules:\n  - id: G5\n    op: '=>'\n", encoding="utf-8")
    run = junheng("assess", str(EXAMPLES / "suzhou-sip.json"), "--rules", str(pack))
    assert run.returncode == 2 and "rule G5: op" in run.stderr and "Traceback" not in run.stderr


def test_a_boolean_for_a_count_is_refused_in_one_line(tmp_path):
    # Read as 1, `"students": true` was assessed as a school of one student, and exit 0 or 1.
    from make import snapshot

    document = json.loads(snapshot().model_dump_json())
    document["schools"][0]["sections"]["primary"]["students"] = True
    path = tmp_path / "boolean.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    run = junheng("assess", str(path))
    assert run.returncode == 2 and "Traceback" not in run.stderr and len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"junheng: {path}: schools.0.sections.primary.students: Input should be a number, "
                                 "not true or false"), run.stderr
    assert "应为数值，不能是布尔值" in run.stderr and run.stdout == ""


@pytest.mark.parametrize("command", [["assess"], ["load", "--broker", "kafka://127.0.0.1:9"]])
def test_a_number_or_text_for_a_flag_is_refused_in_one_line(tmp_path, command):
    # `"boarding": "no"` was read as false and `1` as true: a meaning the snapshot's contract
    # (`boolean`) does not give them. `load` refuses before it looks for a broker (none answers).
    from make import snapshot

    document = json.loads(snapshot().model_dump_json())
    document["schools"][0]["boarding"] = "no"
    path = tmp_path / "flag.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    run = junheng(command[0], str(path), *command[1:])
    assert run.returncode == 2 and "Traceback" not in run.stderr and len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f'junheng: {path}: schools.0.boarding: Input should be true or false, not a number '
                                 'or text such as 1, 0, "yes" or "true"'), run.stderr
    assert "应为布尔值 true 或 false" in run.stderr and run.stdout == ""


def test_snapshot_files_as_editors_and_mistakes_make_them(tmp_path):
    # Notepad's byte-order mark was refused (English-only hint); a 5,000-digit number was a
    # ValueError traceback; YAML nested too deeply was called "not valid JSON".
    bom = tmp_path / "bom.json"
    bom.write_bytes("\ufeff".encode() + (EXAMPLES / "suzhou-sip.json").read_bytes())
    run = junheng("assess", str(bom))
    assert run.returncode == 1 and "苏州工业园区" in run.stdout, run.stderr
    cases = {"big.json": ('{"as_of": "2026-09-01", "districts": [], "schools": [], "x": ' + "9" * 5000 + "}",
                          "a number too long to read / 快照中有位数过多的数字"),
             "deep.yaml": ("a: " + "[" * 100_000, "not valid YAML (nested too deeply) / 快照不是有效的 YAML")}
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        run = junheng("assess", str(path))
        assert run.returncode == 2 and run.stderr == f"junheng: {path}: {expected}\n", run.stderr


def test_a_terminal_that_is_not_utf8_gets_the_report():
    # A zh_CN.GBK locale: the table's first ✓ was a UnicodeEncodeError traceback.
    import os

    run = subprocess.run([sys.executable, "-m", "junheng", "assess", str(EXAMPLES / "suzhou-sip.json")],
                         capture_output=True, timeout=120, env={**os.environ, "PYTHONIOENCODING": "gbk"})
    assert run.returncode == 1 and b"Traceback" not in run.stderr, run.stderr
    table = run.stdout.decode("gbk")
    assert "苏州工业园区" in table and "\\u2713" in table


def test_a_malformed_message_template_is_refused_at_load(tmp_path):
    pack = tmp_path / "pack.yaml"
    pack.write_text("pack: local\ntitle_zh: 本地\ntitle_en: local\nextends: national-2017\nrules:\n"
                    "  - id: G5\n    message_en: '{value:.0f students'\n", encoding="utf-8")
    run = junheng("assess", str(EXAMPLES / "suzhou-sip.json"), "--rules", str(pack))
    assert run.returncode == 2 and "rule G5: message_en is not a valid template" in run.stderr


def test_a_bureau_tightens_a_rule_without_code(tmp_path):
    pack = tmp_path / "tight.yaml"
    pack.write_text("pack: tight\ntitle_zh: 更严\ntitle_en: tighter\nextends: national-2017\nrules:\n"
                    "  - id: G5\n    threshold: {primary: 40, junior: 45}\n", encoding="utf-8")
    run = junheng("assess", str(EXAMPLES / "suzhou-sip.json"), "--rules", str(pack), "--format", "json")
    report = json.loads(run.stdout)
    g5 = [v for v in report["violations"] if v["rule"] == "G5"]
    assert g5 and all(v["limit"] in (40.0, 45.0) for v in g5)


@pytest.mark.parametrize("command", [["load", str(EXAMPLES / "suzhou-sip.json")], ["simulate", "--count", "1"]])
def test_unreachable_broker_is_a_clear_error(command):
    import os

    env = {**os.environ, "JUNHENG_BROKER_WAIT": "2"}
    run = junheng(*command, "--broker", "kafka://127.0.0.1:9", env=env)
    assert run.returncode == 2
    assert "no Kafka broker answers at 127.0.0.1:9 within 2 s" in run.stderr and "Traceback" not in run.stderr


def test_topics_with_another_partition_count_are_refused_in_one_line(tmp_path):
    from streams.broker import EmbeddedBroker

    sip = str(EXAMPLES / "suzhou-sip.json")
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        assert junheng("load", sip, "--broker", broker.url, "--partitions", "4").returncode == 0
        run = junheng("load", sip, "--broker", broker.url, "--partitions", "8")
    assert run.returncode == 2
    assert run.stderr.startswith("junheng: topics exist with other partition counts than the 8 configured "
                                 "(--partitions / JUNHENG_PARTITIONS): junheng-districts-changelog has 4, "), run.stderr
    assert "junheng.events has 4; use their count" in run.stderr
    assert "已有主题的分区数与配置不一致" in run.stderr and len(run.stderr.strip().splitlines()) == 1


@contextmanager
def port_in_use():
    """A loopback port something else listens on, while the block runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_web_port_in_use_is_refused_before_the_worker_starts():
    with port_in_use() as port:
        run = junheng("worker", "--web-port", str(port), "--broker", "kafka://127.0.0.1:9")
    assert run.returncode == 2
    assert run.stderr.startswith(f"junheng: cannot listen on 127.0.0.1:{port} (Address already in use)"), run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_dev_refuses_a_data_dir_it_cannot_create_and_a_port_in_use():
    import os

    run = junheng("dev", env={**os.environ, "JUNHENG_DATA_DIR": "/proc/none/dev"})
    assert run.returncode == 2 and run.stderr.startswith("junheng: JUNHENG_DATA_DIR /proc/none/dev: cannot create")
    with port_in_use() as port:
        run = junheng("dev", "--web-port", str(port))
    assert run.returncode == 2 and run.stderr.startswith(f"junheng: cannot listen on 127.0.0.1:{port}"), run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_a_broker_gone_while_events_are_sent_is_a_user_error_and_nothing_is_printed_at_exit(tmp_path):
    """`junheng load` and `junheng simulate` send through `producing`: a broker gone before its
    records are acknowledged is one UserError, and the producer left with them closes quietly
    (kafka-python's finalizer printed a traceback as the process exited)."""
    script = f"""
import sys
from pathlib import Path
from junheng.errors import UserError
from streams.broker import EmbeddedBroker
from streams.cli import producing
from streams.settings import Settings

broker = EmbeddedBroker(log_path=Path({str(tmp_path / "broker.log")!r}))
broker.start()
try:
    with producing(Settings(broker=broker.url), flush_timeout=2) as send:
        send(b"k", b"first")
        broker.stop()
        send(b"k", b"second")
except UserError as exc:
    print(exc, file=sys.stderr)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.stderr.startswith("the broker stopped taking events"), run.stderr
    assert "Kafka 代理不再接收事件" in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_record_too_large_to_send_is_not_blamed_on_the_broker(tmp_path):
    # It read "the broker stopped taking events (MessageSizeTooLargeError …)": the limit is the producer's.
    from junheng.errors import UserError
    from streams.broker import EmbeddedBroker
    from streams.cli import MAX_RECORD_BYTES, broker_ready, producing
    from streams.settings import Settings

    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        settings = Settings(broker=broker.url)
        broker_ready(settings)
        with pytest.raises(UserError) as refused:
            with producing(settings, flush_timeout=10) as send:
                send(b"320571", b"x" * (MAX_RECORD_BYTES + 1))
    assert str(refused.value).startswith("a record is larger than the 64 MiB one Kafka request carries")
    assert "单条记录超过 64 MiB 上限" in str(refused.value)


def test_simulate_ends_soon_after_its_broker_is_gone(tmp_path):
    """A broker killed under `junheng simulate`: it ends with one line and exit code 2 once a
    record's send timeout is up, and its progress lines count what the broker acknowledged.
    With kafka-python's default of two minutes it went on for 125 s, printing progress."""
    import os

    from streams.broker import EmbeddedBroker

    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        env = {**os.environ, "JUNHENG_BROKER": broker.url, "JUNHENG_SEND_TIMEOUT": "3"}
        run = subprocess.Popen([sys.executable, "-m", "junheng", "simulate", "--rate", "50"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            progress = run.stdout.readline()  # after 10 s of events
            broker.stop()
            out, err = run.communicate(timeout=30)
        finally:
            run.kill()
    assert progress.startswith("simulated 500 events, ") and "acknowledged by the broker" in progress, progress
    assert run.returncode == 2, (out, err)
    assert err.startswith("junheng: the broker stopped taking events") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_output_to_a_reader_that_leaves_or_a_full_disk(tmp_path):
    """`junheng assess … | head -1` was a BrokenPipeError traceback, and `> /dev/full` an OSError
    one: the first now ends quietly as SIGPIPE would end it, the second in one line."""
    from junheng.examples import country

    path = tmp_path / "country.json"
    path.write_text(country(20, seed=1).model_dump_json(), encoding="utf-8")  # far more than a pipe holds
    run = subprocess.Popen([sys.executable, "-m", "junheng", "assess", str(path)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    first = run.stdout.readline()
    run.stdout.close()
    err = run.stderr.read().decode()
    assert run.wait(timeout=60) == 141 and err == "", err
    assert "junheng" in first.decode()
    with open("/dev/full", "w") as full:
        run = subprocess.run([sys.executable, "-m", "junheng", "assess", str(path)], stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr == "junheng: cannot write the output (No space left on device) / 无法写出结果（磁盘空间不足）\n"


def test_dev_refuses_a_rule_pack_before_starting_its_worker(tmp_path):
    # The worker started and failed in its own log; dev said only that the worker exited.
    import os

    env = {**os.environ, "JUNHENG_DATA_DIR": str(tmp_path), "JUNHENG_RULES": '["no-such-pack"]'}
    run = junheng("dev", "--web-port", str(free_port()), env=env)
    assert run.returncode == 2 and run.stderr.startswith("junheng: rule pack 'no-such-pack' not found"), run.stderr
    assert not (tmp_path / "worker.log").exists()


def test_simulate_refuses_a_snapshot_with_no_school_to_change(tmp_path):
    # An IndexError traceback from the simulator's pick; under `dev`, after everything had started.
    path = tmp_path / "none.json"
    path.write_text('{"as_of": "2026-09-01", "districts": [{"id": "431299", "name": "青岚县"}], "schools": []}',
                    encoding="utf-8")
    run = junheng("simulate", "--snapshot", str(path), "--count", "1")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith(f"junheng: {path}: no school with a primary or junior section to simulate"), run.stderr


def test_example_command_writes_the_checked_in_example(tmp_path):
    out = tmp_path / "sip.json"
    run = junheng("example", "suzhou-sip", "--out", str(out))
    assert run.returncode == 0 and "43 schools" in run.stdout
    assert out.read_text(encoding="utf-8") == (EXAMPLES / "suzhou-sip.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(("env", "flags", "expected"), [
    ({"JUNHENG_HEAP_TRIM_INTERVAL": "0"}, [],
     "JUNHENG_HEAP_TRIM_INTERVAL='0': Input should be greater than 0 / 环境变量 JUNHENG_HEAP_TRIM_INTERVAL 应大于 0"),
    ({"JUNHENG_STORE": "disk"}, [], "JUNHENG_STORE='disk': Input should be 'memory' or 'rocksdb' / "
                                    "环境变量 JUNHENG_STORE 应为以下之一：'memory' 或 'rocksdb'"),
    # A list variable is JSON: pydantic-settings raised its own error here, as a traceback.
    ({"JUNHENG_RULES": "national-2017"}, [], 'JUNHENG_RULES=\'national-2017\': not valid JSON; a list is written '
                                             'like ["national-2017"] / 环境变量 JUNHENG_RULES 应为 JSON'),
    ({}, ["--partitions", "0"], "--partitions 0: Input should be greater than or equal to 1 / 参数 --partitions 应不小于 1"),
    # NaN passed `gt=0` and was then said to be above 10.
    ({"JUNHENG_EVALUATE_INTERVAL": "nan"}, [],
     "JUNHENG_EVALUATE_INTERVAL='nan': Input should be a finite number / 环境变量 JUNHENG_EVALUATE_INTERVAL 应为有限数值"),
    # The flag wins over the variable, and the message names the flag.
    ({"JUNHENG_AS_OF": "2023-09-01"}, ["--as-of", "2023-02-30"], "--as-of '2023-02-30': Input should be a valid date"),
    ({"JUNHENG_KAFKA_SECURITY_PROTOCOL": "SSL", "JUNHENG_KAFKA_SASL_PASSWORD": "hunter2"}, [],
     "JUNHENG_KAFKA_SASL_PASSWORD is set but JUNHENG_KAFKA_SECURITY_PROTOCOL is SSL"),
])
def test_a_bad_setting_names_its_flag_or_variable_in_both_languages(env, flags, expected):
    import os

    run = junheng("worker", *flags, env={**os.environ, **env})
    assert run.returncode == 2
    assert run.stderr.startswith(f"junheng: {expected}") and run.stderr.count("\n") == 1
    assert "hunter2" not in run.stderr


def test_a_log_level_in_upper_case_is_taken():
    # Logging's own spelling, DEBUG, was refused.
    from streams.settings import Settings

    assert Settings(log_level="DEBUG").log_level == "debug"


def test_a_bad_password_value_is_not_echoed():
    from junheng.errors import UserError
    from streams.settings import load_settings

    with pytest.raises(UserError) as caught:
        load_settings(kafka_sasl_password=["hunter2"])
    assert str(caught.value).startswith("JUNHENG_KAFKA_SASL_PASSWORD: ") and "hunter2" not in str(caught.value)


def test_the_table_tells_undetermined_compliance_from_failing():
    # Both schools reach six standards and did not report their equipment: whether each
    # complies is unknown, and the table read "compliant 0/2", as if both failed.
    from make import school, snapshot
    from junheng.table import render_table
    from rules.evaluate import assess
    from rules.pack import load_packs

    lacking = [school("320571-001"), school("320571-002")]
    for s in lacking:
        del s["sections"]["primary"]["equipment_value_cny"]
    table = render_table(assess(snapshot(*lacking, school("320571-003")), load_packs(["national-2017"])))
    assert "达标学校 compliant 1/3（2 所未能判定 undetermined）" in table, table
    table = render_table(assess(snapshot(), load_packs(["national-2017"])))
    assert "达标学校 compliant 1/1\n" in table, table


def test_the_snapshot_may_follow_the_rules():
    # --rules takes every name after it: the snapshot written last was taken for a pack, and the
    # command refused for want of a snapshot.
    run = junheng("assess", "--rules", "suzhou-sip-2023", str(EXAMPLES / "suzhou-sip.json"), "--format", "json")
    assert run.returncode == 1, run.stderr
    assert json.loads(run.stdout)["rule_pack"] == "suzhou-sip-2023"
    run = junheng("assess", "--rules", "suzhou-sip-2023")
    assert run.returncode == 2 and "required: snapshot" in run.stderr and "参数有误" in run.stderr


def test_a_name_with_a_line_break_or_a_bidi_override_stays_on_its_table_line():
    # A line break in a school name (Alt+Enter in a spreadsheet cell) split its violation over
    # two lines; a right-to-left override in a district name turned the rest of its lines around.
    from make import school, snapshot
    from junheng.table import render_table
    from rules.evaluate import assess
    from rules.pack import load_packs

    snap = snapshot(school(name="第一\n小学", sections={"primary": {"class_sizes": [50]}}), name="园\u202e区")
    table = render_table(assess(snap, load_packs(["national-2017"])))
    assert "■ 园\\u202e区（320571）" in table
    assert "[严重] G5                     第一\\n小学（320571-001，园\\u202e区）小学部最大班额 50 人" in table, table
    assert "\u202e" not in table and "第一\n" not in table
