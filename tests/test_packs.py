"""Rule packs a bureau writes: how they extend one another, and the mistakes in them that must be
refused when the pack loads (one line naming the rule and the field), not found at evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from make import school, snapshot
from rules.evaluate import assess
from rules.pack import PackError, load_packs
from schemas.numbers import BOOLEAN_MESSAGE

HEADER = "pack: local\ntitle_zh: 本地\ntitle_en: local\nextends: national-2017\nrules:\n"


def write_pack(folder: Path, rules: str, name: str = "local.yaml", header: str = HEADER) -> Path:
    path = folder / name
    path.write_text(header + rules, encoding="utf-8")
    return path


def refusal(path: Path | str) -> str:
    """The message a pack is refused with."""
    with pytest.raises(PackError) as caught:
        load_packs([str(path)])
    message = str(caught.value)
    assert "\n" not in message
    return message


def _small_village_school(budget: float):
    return snapshot(school(location="village", sections={"primary": {"students": 50, "class_sizes": [50]}},
                           public_funds_budget_cny=budget, training_spend_cny=budget * 0.06,
                           music_rooms_m2=[100.0], art_rooms_m2=[95.0]))


# --- extending a pack --------------------------------------------------------------------------

def test_an_override_of_one_param_keeps_the_others(tmp_path):
    # National: funded as for 100 pupils × 650 CNY. Funding as for 200 keeps the 650 CNY.
    pack = load_packs([str(write_pack(tmp_path, "  - id: G6.small_school\n    params: {funded_students: 200}\n"))])
    assert pack.by_id("G6.small_school").params == {"funded_students": 200, "per_student_cny": 650}
    found = {(v.rule, v.value, v.limit) for v in assess(_small_village_school(100_000.0), pack).violations}
    assert ("G6.small_school", 100_000.0, 130_000.0) in found


def test_a_threshold_by_level_given_for_one_level_keeps_the_others(tmp_path):
    # Replaced whole, G5 with {primary: 40} silently stopped checking junior classes.
    pack = load_packs([str(write_pack(tmp_path, "  - id: G5\n    threshold: {primary: 40}\n"))])
    assert pack.by_id("G5").threshold == {"primary": 40, "junior": 50}


def test_a_base_two_packs_extend_is_merged_once_so_later_packs_do_not_undo_earlier_ones(tmp_path):
    # Both extend national-2017; merged again for the second pack, the base brought national
    # G5 (45/50) back over the first pack's 40/45.
    tight = write_pack(tmp_path, "  - id: G5\n    threshold: {primary: 40, junior: 45}\n")
    for names in ([str(tight), "suzhou-sip-2023"], ["suzhou-sip-2023", str(tight)]):
        pack = load_packs(names)
        assert pack.by_id("G5").threshold == {"primary": 40, "junior": 45}, names
        assert pack.by_id("SIP.key_teachers.2025") is not None  # the park's own rules are there
    assert load_packs(["national-2017", "national-2017"]).rules == load_packs(["national-2017"]).rules


# --- params, checked against what each quantity reads ------------------------------------------

@pytest.mark.parametrize("rule,expected", [
    # Each loaded, then crashed every evaluation (KeyError, ZeroDivisionError, ValueError).
    ("  - {id: X1, scope: school, quantity: small_school_funds, op: '>=', severity: info, title_zh: a,"
     " title_en: b, message_zh: a, message_en: b, params: {funded_students: 1000}}",
     "rule X1: params: per_student_cny is required / 缺少参数 per_student_cny"),
    ("  - {id: G3.music, params: {classes_per_room: 0}}",
     "rule G3.music: params.classes_per_room: 0.0 must be greater than 0 / 应大于 0"),
    ("  - {id: G3.art, params: {classes_per_room: .nan}}",
     "rule G3.art: params.classes_per_room: nan must be a finite number / 应为有限数值"),
    ("  - {id: school_compliance, params: {min_reached: .nan}}",
     "rule school_compliance: params.min_reached: nan must be a finite number"),
    # Loaded, and made every school non-compliant or compliant whatever its figures.
    ("  - {id: school_compliance, params: {min_reached: 1e300}}", "params.min_reached: 1e+300 must be at most 7"),
    ("  - {id: school_compliance, params: {min_reached: 5.5}}", "params.min_reached: 5.5 must be a whole number"),
    ("  - {id: school_compliance, params: {floor_ratio: -0.1}}", "params.floor_ratio: -0.1 must be at least 0"),
    ("  - {id: G6.small_school, params: {per_student_cny: .inf}}", "params.per_student_cny: inf must be a finite"),
    ("  - {id: G6.small_school, params: {funded_students: 0}}", "params.funded_students: 0.0 must be greater than 0"),
    # A misspelt param was ignored, and the rule ran on the default.
    ("  - {id: G3.music, params: {classes_per_rom: 10}}",
     "rule G3.music: params: unknown param 'classes_per_rom' (known: classes_per_room, min_area_m2)"),
    ("  - {id: G4, params: {x: 1}}", "rule G4: params: unknown param 'x' (its quantity takes none)"),
])
def test_params_a_quantity_cannot_use_are_refused_at_load(tmp_path, rule, expected):
    assert expected in refusal(write_pack(tmp_path, rule + "\n"))


@pytest.mark.parametrize("rule,expected", [
    # YAML reads yes, no, on, off, true and false as booleans, and pydantic took them for 1 and 0:
    # each loaded, G5 limiting classes to one pupil, G3.music asking a room per class.
    ("  - {id: G4, threshold: yes}", "rule G4: threshold.float True: "),
    ("  - {id: G5, threshold: {primary: on}}", "rule G5: threshold.dict[str,float].primary True: "),
    ("  - {id: G3.music, params: {classes_per_room: true}}", "rule G3.music: params.classes_per_room True: "),
    ("  - {id: school_compliance, params: {floor_ratio: off}}", "rule school_compliance: params.floor_ratio False: "),
])
def test_a_boolean_for_a_number_is_refused_at_load(tmp_path, rule, expected):
    assert refusal(write_pack(tmp_path, rule + "\n")) == f"{expected}{BOOLEAN_MESSAGE} / 规则定义有误"


def test_a_threshold_that_is_not_a_number_is_refused_naming_its_place(tmp_path):
    # A mapping's bad value was reported as "threshold.float: Input should be a valid number",
    # naming neither its key nor what was wrong; the shapes are now told apart before reading.
    assert refusal(write_pack(tmp_path, "  - {id: G4, threshold: many}\n")) == (
        "rule G4: threshold.float 'many': Input should be a valid number, unable to parse string as a number / 规则定义有误")
    assert refusal(write_pack(tmp_path, "  - {id: G5, threshold: {primary: many}}\n")) == (
        "rule G5: threshold.dict[str,float].primary 'many': Input should be a valid number, unable to parse string as a"
        " number / 规则定义有误")


def test_params_at_their_limits_load(tmp_path):
    pack = load_packs([str(write_pack(tmp_path, "  - {id: school_compliance, params: {min_reached: 7, floor_ratio: 1}}\n"
                                                "  - {id: G3.music, params: {classes_per_room: 0.5, min_area_m2: 0}}\n"))])
    assert pack.by_id("school_compliance").params == {"min_reached": 7, "floor_ratio": 1}


# --- thresholds, `when`, and packs with no rules -----------------------------------------------

@pytest.mark.parametrize("rule,expected", [
    # NaN compares false with everything: every school was flagged, its value against "nan".
    ("  - {id: G4, threshold: {primary: .nan}}", "rule G4: threshold.primary: nan is not a finite number / 阈值应为有限数值"),
    ("  - {id: G4, threshold: .inf}", "rule G4: threshold: inf is not a finite number"),
    ("  - {id: G5, threshold: {primary: 45, junior: -.inf}}", "rule G5: threshold.junior: -inf is not a finite number"),
    # Each value names no place, and the rule silently never applied.
    ("  - {id: G4, when: {kinds: [nonsense]}}",
     "rule G4: when.kinds.0 'nonsense': Input should be 'primary', 'junior', 'nine_year', 'twelve_year', 'special' or"
     " 'teaching_point'"),
    ("  - {id: G6.small_school, when: {locations: [village, rural]}}",
     "rule G6.small_school: when.locations.1 'rural': Input should be 'urban', 'town' or 'village'"),
    ("  - {id: G5, when: {levels: [senior]}}", "rule G5: when.levels.0 'senior': Input should be 'primary' or 'junior'"),
    # A field the scope's places are not matched on was ignored, and the rule applied everywhere.
    ("  - {id: G4, when: {levels: [junior]}}",
     "rule G4: when.levels does not apply to a school rule (only kinds, locations apply)"),
    ("  - {id: G7, when: {kinds: [primary]}}", "rule G7: when.kinds does not apply to a district rule (none applies)"),
    ("  - {id: R1.cv, when: {locations: [urban]}}",
     "rule R1.cv: when.locations does not apply to a district_section rule (only levels apply)"),
])
def test_thresholds_and_places_that_cannot_match_are_refused_at_load(tmp_path, rule, expected):
    assert expected in refusal(write_pack(tmp_path, rule + "\n"))


def test_a_rule_limited_to_places_it_can_match_loads(tmp_path):
    pack = load_packs([str(write_pack(tmp_path, "  - {id: G5, when: {kinds: [primary], locations: [town], levels: [primary]}}\n"
                                                "  - {id: R1.cv, when: {levels: [junior]}}\n"))])
    assert pack.by_id("G5").when.levels == ("primary",) and pack.by_id("R1.cv").when.levels == ("junior",)


@pytest.mark.parametrize("rule,expected", [
    ("  - {id: G5, prorate: year}",
     "rule G5: prorate: class_size_max is not a figure of the year so far (those are: training_budget_share) / "
     "该观测量不是年度累计数，不能按时间进度折算"),
    ("  - {id: Q4, op: '<='}", "rule Q4: prorate: a prorated limit is a floor, compared with >= / 按时间进度折算的阈值须用 >= 比较"),
    ("  - {id: Q4, prorate: month}", "rule Q4: prorate 'month': Input should be 'year'"),
])
def test_a_prorated_limit_that_means_nothing_is_refused_at_load(tmp_path, rule, expected):
    assert expected in refusal(write_pack(tmp_path, rule + "\n"))


def test_a_pack_may_judge_q4_on_the_whole_year_from_its_first_day(tmp_path):
    pack = load_packs([str(write_pack(tmp_path, "  - {id: Q4, prorate: null}\n"))])
    # 2026-09-01, 3.4% spent: on pace (3.33% due), yet short of the whole 5%.
    report = assess(snapshot(school(training_spend_cny=34_000.0)), pack)
    assert [(v.rule, v.limit) for v in report.violations] == [("Q4", 0.05)]
    assert assess(snapshot(school(training_spend_cny=34_000.0)), load_packs(["national-2017"])).violations == []


def test_no_pack_or_a_pack_without_rules_is_refused(tmp_path):
    with pytest.raises(PackError, match="no rule pack given"):
        load_packs([])
    empty = write_pack(tmp_path, "", header="pack: empty\ntitle_zh: 空\ntitle_en: empty\nrules: []\n")
    assert refusal(empty).endswith(": no rules / 规则包中没有规则")


def test_an_empty_rules_variable_is_refused_naming_it(monkeypatch):
    from junheng.errors import UserError
    from streams.settings import load_settings

    monkeypatch.setenv("JUNHENG_RULES", "[]")
    with pytest.raises(UserError, match=r"^JUNHENG_RULES=\[\]: List should have at least 1 item"):
        load_settings()


@pytest.mark.parametrize("rule,expected", [
    # Keys no place has: the rule silently never applied (a misspelt level, a district mapping).
    ("  - {id: G5, threshold: {primry: 40, junior: 45}}", "rule G5: threshold by level: 'primry' is not one of primary, junior"),
    ("  - {id: G4, threshold: {primary: 2000, village: 500}}",
     "rule G4: threshold by school kind: 'village' is not one of primary, junior, nine_year"),
    ("  - {id: G7, threshold: {primary: 1}}", "rule G7: a district rule's threshold is one number, not a mapping"),
    ("  - {id: G5, threshold: {}}", "rule G5: threshold: an empty mapping; give a number or one by level"),
])
def test_threshold_mappings_must_name_levels_or_kinds(tmp_path, rule, expected):
    assert expected in refusal(write_pack(tmp_path, rule + "\n"))


# --- message templates -------------------------------------------------------------------------

@pytest.mark.parametrize("template,expected", [
    # Each passed the load-time check and raised when a violation's message was rendered (in a
    # worker, on every /report and /metrics request): AttributeError, IndexError, MemoryError.
    ("{foo.bar}", "{foo.bar}: a field is a plain name like {value}, without attributes, indexes or positions"),
    ("{place_en[999]}", "{place_en[999]}: a field is a plain name like {value}"),
    ("{value:{foo.bar}}", "{value:{foo.bar}}: a format spec cannot contain a field"),
    ("{value:99999999999f}", "{value:99999999999f}: a width or precision is at most 100"),
    # Each rendered as the bare template, whatever the violation.
    ("{0} students", "{0}: a field is a plain name"),
    ("{value!x}", "{value!x}: the only conversions are !r, !s and !a"),
])
def test_templates_that_could_fail_to_render_are_refused_at_load(tmp_path, template, expected):
    message = refusal(write_pack(tmp_path, f"  - id: G4\n    message_en: '{template}'\n"))
    assert message.startswith(f"rule G4: message_en is not a valid template ({expected}")
    assert message.endswith(") / 消息模板无效")


def test_templates_with_plain_fields_conversions_and_formats_load(tmp_path):
    template = "{place_en}: {value!r} {limit:>10.2f} {students:,} {value:.0%}"
    pack = load_packs([str(write_pack(tmp_path, f"  - id: G4\n    message_en: '{template}'\n"))])
    assert pack.by_id("G4").message_en == template


# --- pack files that cannot be read --------------------------------------------------------------

def test_a_pack_not_in_utf8_is_refused_in_one_line(tmp_path):
    # Each was a UnicodeDecodeError traceback.
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes((HEADER + "  - {id: G4, title_zh: 学校规模}\n").encode("gbk"))
    offset = HEADER.index("本")  # 本 is b1 be in GBK
    assert refusal(gbk) == (f"rule pack {gbk}: not UTF-8 text (byte 0xb1 at offset {offset}); "
                            "save it as UTF-8 / 规则包不是 UTF-8 文本，请以 UTF-8 保存")
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_bytes(HEADER.encode("utf-16"))
    assert "not UTF-8 text (byte 0xff at offset 0)" in refusal(utf16)


def test_a_pack_that_cannot_be_read_is_refused_in_one_line(tmp_path, monkeypatch):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()  # was "not found", which it is not
    assert refusal(folder) == f"rule pack {folder}: is a directory, not a pack file / 这是目录，不是规则包文件"
    pack = write_pack(tmp_path, "  - {id: G4, threshold: 1000}\n")

    def denied(self, *args, **kwargs):  # as root, chmod cannot make a file unreadable
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    assert refusal(pack) == f"rule pack {pack}: cannot be read (Permission denied) / 无法读取规则包"


def test_a_pack_nested_too_deeply_is_refused_in_one_line(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5000, encoding="utf-8")  # was a RecursionError traceback
    assert refusal(deep) == f"rule pack {deep}: nested too deeply / 规则包嵌套层级过深"


def test_a_pack_naming_a_key_twice_is_refused(tmp_path):
    # The second threshold was taken without a word: a district that wrote its own limit above a
    # copied one had the copy checked.
    pack = write_pack(tmp_path, "  - id: G4\n    threshold: 1800\n    threshold: 2000\n")
    assert refusal(pack) == (f"rule pack {pack}: key 'threshold' at line 8 appears twice (first at line 7) "
                             "/ 规则包中键 'threshold' 出现了两次（第 8 行，首次在第 7 行）")


def test_bad_yaml_is_one_line_with_its_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n  b: c\n\tx: 1\n", encoding="utf-8")  # was six lines of PyYAML's text
    assert refusal(bad) == (f"rule pack {bad}: not valid YAML at line 3, column 1: found character '\\t' that cannot "
                            "start any token / 规则包不是有效的 YAML（第 3 行第 1 列）")


def test_an_unreadable_pack_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes(HEADER.encode("gbk"))
    snapshot_file = Path(__file__).parent.parent / "deploy" / "examples" / "rural-county.json"
    run = subprocess.run([sys.executable, "-m", "junheng", "assess", str(snapshot_file), "--rules", str(gbk)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.startswith(f"junheng: rule pack {gbk}: not UTF-8 text"), run.stderr
    assert len(run.stderr.splitlines()) == 1


# --- where `extends` looks ---------------------------------------------------------------------

def _bureau_packs(folder: Path, extends: str) -> Path:
    (folder / "common").mkdir(parents=True)
    write_pack(folder / "common", "  - {id: G5, threshold: {primary: 40, junior: 45}}\n", name="city.yaml",
               header="pack: city\ntitle_zh: 市\ntitle_en: city\nextends: national-2017\nrules:\n")
    return write_pack(folder, "  - {id: G4, threshold: 1500}\n", name="district.yaml",
                      header=f"pack: district\ntitle_zh: 区\ntitle_en: district\nextends: {extends}\nrules:\n")


def test_extends_is_found_beside_the_extending_pack_whatever_the_current_directory(tmp_path, monkeypatch):
    district = _bureau_packs(tmp_path / "bureau", "common/city.yaml")
    monkeypatch.chdir(tmp_path)  # was looked for here: "rule pack 'common/city.yaml' not found"
    pack = load_packs([str(district)])
    assert pack.by_id("G5").threshold == {"primary": 40, "junior": 45} and pack.by_id("G4").threshold == 1500


def test_extends_is_still_found_from_the_current_directory_and_built_in_names_still_work(tmp_path, monkeypatch):
    district = _bureau_packs(tmp_path, "bureau-common/city.yaml")
    (tmp_path / "common").rename(tmp_path / "bureau-common")
    monkeypatch.chdir(tmp_path)
    assert load_packs([str(district)]).by_id("G5").threshold == {"primary": 40, "junior": 45}
    assert load_packs(["suzhou-sip-2023"]).by_id("G6.special").threshold == 9600


def test_an_extends_not_found_names_the_pack_extending_it(tmp_path):
    district = _bureau_packs(tmp_path, "common/town.yaml")
    assert refusal(district).startswith(f"rule pack 'common/town.yaml' not found (extended by {district}; built-in:")


# --- the built-in packs say what they check ----------------------------------------------------

def test_an_overlay_that_changes_a_limit_its_title_states_restates_the_title():
    # An overlay that changes a rule's threshold inherits its titles. The SIP pack raised
    # G6.special to 9600 CNY (sip-self-assessment.txt: 特殊教育学校生均公用经费9600元) and its alerts
    # went on reading "特殊教育学校生均公用经费不低于 6000 元" above a limit of 9600.
    national = {r.id: r for r in load_packs(["national-2017"]).rules}
    for rule in load_packs(["suzhou-sip-2023"]).rules:
        base = national.get(rule.id)
        if base is None or base.threshold == rule.threshold or not isinstance(rule.threshold, float | int):
            continue
        for field in ("title_zh", "title_en"):
            if f"{base.threshold:g}" in getattr(base, field):
                assert f"{rule.threshold:g}" in getattr(rule, field), (rule.id, field, getattr(rule, field))


def test_rule_ids_an_alert_name_cannot_tell_apart_are_refused(tmp_path):
    # Both became the alert JunhengRule_R1_cv: each fired as the other, and their generated
    # promtool tests contradicted each other.
    pack = write_pack(tmp_path, "  - {id: R1_cv, scope: district_section, quantity: R1.cv, op: '<=', threshold: 0.5,"
                                " severity: warning, title_zh: 变异系数, title_en: CV, message_zh: '{value}',"
                                " message_en: '{value}'}\n")
    assert refusal(pack) == ("rules R1.cv and R1_cv differ only in '.', '-' or '_', which alert names cannot tell "
                             "apart: rename one / 规则 R1.cv 与 R1_cv 仅在 '.'、'-'、'_' 上不同，告警名称无法区分，请重命名其一")
