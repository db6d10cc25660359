"""Wire contracts: what a snapshot may hold, what is rejected and where, and the exported schemas."""

from __future__ import annotations

import copy
import json

import pytest

from make import DISTRICT, school
from schemas.booleans import NOT_TRUE_OR_FALSE_MESSAGE, STRICT_BOOLEAN
from schemas.export import OUT, contracts, schema_text
from schemas.loading import SnapshotError, load_snapshot, parse_snapshot
from schemas.numbers import BOOLEAN_MESSAGE, GUARDED


def doc(**changes) -> dict:
    base = {"as_of": "2026-09-01", "districts": [dict(DISTRICT)], "schools": [school()]}
    base.update(changes)
    return copy.deepcopy(base)


def error_of(document) -> str:
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(json.dumps(document))
    return str(caught.value)


def test_a_valid_snapshot_parses():
    snapshot = parse_snapshot(json.dumps(doc()))
    assert snapshot.schools[0].sections["primary"].students == 1000


def test_unknown_field_is_rejected_with_its_path():
    bad = doc()
    bad["schools"][0]["sections"]["primary"]["studnets"] = 5
    assert error_of(bad).startswith("snapshot: schools.0.sections.primary.studnets: Extra inputs are not permitted")


def test_wrong_type_is_rejected_with_its_path():
    bad = doc()
    bad["schools"][0]["full_time_teachers"] = "many"
    assert error_of(bad).startswith("snapshot: schools.0.full_time_teachers: Input should be a valid integer")


def test_negative_count_is_rejected_with_its_path():
    bad = doc()
    bad["schools"][0]["sections"]["primary"]["key_teachers"] = -1
    assert error_of(bad).startswith("snapshot: schools.0.sections.primary.key_teachers: Input should be greater than or equal to 0")


def test_school_in_an_undeclared_district_is_rejected():
    bad = doc()
    bad["schools"][0]["district"] = "110101"
    message = error_of(bad)
    assert "schools.0.district" in message and "'110101'" in message and "not declared" in message


def test_two_schools_with_one_id_are_rejected():
    bad = doc(schools=[school("320571-001"), school("320571-001")])
    message = error_of(bad)
    assert "schools.1.id" in message and "used twice" in message and "schools.0" in message


def test_unknown_kind_and_section_are_rejected():
    bad = doc()
    bad["schools"][0]["kind"] = "kindergarten"
    assert "schools.0.kind" in error_of(bad)
    bad = doc()
    bad["schools"][0]["sections"]["senior"] = {"students": 10}
    assert "schools.0.sections.senior" in error_of(bad)


def test_not_json_is_a_clear_error():
    with pytest.raises(SnapshotError, match="not valid JSON"):
        parse_snapshot("{oops")


def test_missing_optional_fields_mean_not_reported():
    ok = doc()
    del ok["schools"][0]["training_spend_cny"]
    assert parse_snapshot(json.dumps(ok)).schools[0].training_spend_cny is None


@pytest.mark.parametrize("place, value", [
    (("schools", 0, "sections", "primary", "students"), True),
    (("schools", 0, "sections", "primary", "class_sizes", 3), False),
    (("schools", 0, "full_time_teachers"), False),
    (("schools", 0, "sports_area_m2"), True),
    (("schools", 0, "music_rooms_m2", 0), True),
    (("districts", 0, "disabled_children"), True),
    (("districts", 0, "teacher_avg_pay_cny"), False),
])
def test_a_boolean_for_a_number_is_refused_with_its_path(place, value):
    # pydantic read true as 1 and false as 0: a section of `"students": true` was assessed as
    # one of one student, without a word.
    bad = doc()
    target = bad
    for key in place[:-1]:
        target = target[key]
    target[place[-1]] = value
    assert error_of(bad) == f"snapshot: {'.'.join(map(str, place))}: {BOOLEAN_MESSAGE} / 快照校验失败"


def test_a_yaml_yes_for_a_number_is_refused_as_a_boolean():
    # YAML reads yes, no, on and off as booleans; the message says so, for whoever wrote `yes`.
    text = json.dumps(doc()).replace('"students": 1000', '"students": yes', 1)
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(text, yaml_ok=True)
    assert str(caught.value) == f"snapshot: schools.0.sections.primary.students: {BOOLEAN_MESSAGE} / 快照校验失败"
    assert "yes" in BOOLEAN_MESSAGE and "应为数值" in BOOLEAN_MESSAGE


@pytest.mark.parametrize("place", [("schools", 0, "public"), ("schools", 0, "boarding")])
@pytest.mark.parametrize("value", [1, 0, "yes", "no", "true", "false", "on", "1", None])
def test_a_number_or_text_for_a_flag_is_refused_with_its_path(place, value):
    # pydantic read 1, "yes", "on" and "true" as true and 0, "no", "off" and "false" as false: a
    # school system's `"boarding": 1` was taken in a meaning the contract (`boolean`) does not give it.
    # null was refused before too, in pydantic's English only.
    bad = doc()
    bad[place[0]][place[1]][place[2]] = value
    assert error_of(bad) == f"snapshot: {'.'.join(map(str, place))}: {NOT_TRUE_OR_FALSE_MESSAGE} / 快照校验失败"


def test_a_flag_is_true_or_false_in_json_and_a_yaml_boolean_in_yaml():
    ok = doc()
    ok["schools"][0].update(public=False, boarding=True)
    school_read = parse_snapshot(json.dumps(ok)).schools[0]
    assert (school_read.public, school_read.boarding) == (False, True)
    # YAML 1.1 reads yes and no unquoted as booleans before pydantic sees them; quoted, they are
    # text, refused as in JSON.
    text = json.dumps(doc()).replace('"boarding": false', '"boarding": yes', 1)
    assert '"boarding": yes' in text and parse_snapshot(text, yaml_ok=True).schools[0].boarding is True
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(text.replace('"boarding": yes', '"boarding": "yes"'), yaml_ok=True)
    assert str(caught.value) == f"snapshot: schools.0.boarding: {NOT_TRUE_OR_FALSE_MESSAGE} / 快照校验失败"


def test_numbers_written_otherwise_are_read_as_before():
    # Kept on purpose when booleans were refused: JSON Schema's integer includes 1000.0, and a
    # number in quotes, which the published schema does not allow, was read before and may be
    # sent by producers today; refusing it would be a contract change of its own.
    lax = doc()
    section = lax["schools"][0]["sections"]["primary"]
    section.update(students=1000.0, class_sizes=[40.0, "41", 42], key_teachers="20", sports_area_m2=8000)
    lax["districts"][0]["teacher_avg_pay_cny"] = "198000.5"
    snapshot = parse_snapshot(json.dumps(lax))
    read = snapshot.schools[0].sections["primary"]
    assert (read.students, read.class_sizes, read.key_teachers, read.sports_area_m2) == (1000, [40, 41, 42], 20, 8000.0)
    assert type(read.students) is int and type(read.sports_area_m2) is float
    assert snapshot.districts[0].teacher_avg_pay_cny == 198000.5


def _unguarded(schema, kinds: tuple[str, ...], guard: str, path: tuple = ()) -> list[tuple]:
    """Where a pydantic core schema validates one of `kinds` ("int", "bool"…) outside a schema
    whose metadata holds `guard`."""
    if isinstance(schema, dict):
        if schema.get("metadata", {}).get(guard):
            return []
        found = [path] if schema.get("type") in kinds else []
        return found + [p for key, value in schema.items() for p in _unguarded(value, kinds, guard, path + (key,))]
    if isinstance(schema, list):
        return [p for i, value in enumerate(schema) for p in _unguarded(value, kinds, guard, path + (i,))]
    return []


@pytest.mark.parametrize("stem", ["snapshot", "events"])
def test_every_number_of_an_input_contract_refuses_booleans(stem):
    # A number field added without NotBoolean would take true for 1 again.
    assert _unguarded(contracts()[stem].core_schema, ("int", "float"), GUARDED) == []


@pytest.mark.parametrize("stem", ["snapshot", "events"])
def test_every_boolean_of_an_input_contract_is_true_or_false_only(stem):
    # A flag declared `bool` rather than `Boolean` would take 1 and "yes" for true again.
    assert _unguarded(contracts()[stem].core_schema, ("bool",), STRICT_BOOLEAN) == []


def test_every_verdict_of_the_report_is_true_or_false_only():
    # `ok` and `compliant` were lax bools: `junheng status` read a worker's `"ok": "no"` as false.
    assert _unguarded(contracts()["report"].core_schema, ("bool",), STRICT_BOOLEAN) == []


REPORT = {"as_of": "2026-09-01", "rule_pack": "national-2017", "violations": [],
          "districts": [{"id": "320571", "sections": {"primary": {
              "students": 1000, "schools": 1, "schools_compliant": 1,
              "indicators": {"R1": {"value": 5.0, "cv": 0.1, "cv_limit": 0.5, "ok": True}}}}}],
          "schools": [{"id": "320571-001", "district": "320571", "sections": {"primary": {
              "compliant": True, "indicators": {"R1": {"value": 5.0, "standard": 4.2, "ok": True}}}}}]}
VERDICTS = [("districts", 0, "sections", "primary", "indicators", "R1", "ok"),
            ("schools", 0, "sections", "primary", "compliant"),
            ("schools", 0, "sections", "primary", "indicators", "R1", "ok")]


def report_with(place: tuple, value) -> dict:
    """REPORT with `value` at `place`."""
    report = copy.deepcopy(REPORT)
    target = report
    for key in place[:-1]:
        target = target[key]
    target[place[-1]] = value
    return report


@pytest.mark.parametrize("place", VERDICTS)
@pytest.mark.parametrize("value", [1, 0, "yes", "no", "true", "false"])
def test_a_number_or_text_for_a_verdict_of_the_report_is_refused(place, value):
    from pydantic import ValidationError

    from schemas.report import Report

    with pytest.raises(ValidationError) as caught:
        Report.model_validate_json(json.dumps(report_with(place, value)))
    [error] = caught.value.errors()
    assert (error["loc"], error["msg"]) == (place, NOT_TRUE_OR_FALSE_MESSAGE)


@pytest.mark.parametrize("place", VERDICTS)
@pytest.mark.parametrize("value", [True, False, None])
def test_a_verdict_of_the_report_is_true_false_or_null(place, value):
    from schemas.report import Report

    report = Report.model_validate_json(json.dumps(report_with(place, value)))
    read = report.model_dump(mode="json")
    for key in place:
        read = read[key]
    assert read is value


@pytest.mark.parametrize("stem", sorted(contracts()))
def test_checked_in_json_schemas_match_the_models(stem):
    """Regenerate with `python -m schemas.export`."""
    assert (OUT / f"{stem}.schema.json").read_text(encoding="utf-8") == schema_text(contracts()[stem])


@pytest.mark.parametrize("suffix, text, says", [
    (".yaml", "as_of: 2024-09-01\ndistricts: []\nschools: []\nas_of: 2025-09-01\n",
     "key 'as_of' at line 4 appears twice (first at line 1) / 快照中键 'as_of' 出现了两次（第 4 行，首次在第 1 行）"),
    (".json", '{"as_of": "2024-09-01", "districts": [], "schools": [], "schools": []}',
     "key 'schools' appears twice in one object / 快照中键 'schools' 出现了两次（同一对象中）"),
])
def test_a_snapshot_naming_a_key_twice_is_refused(tmp_path, suffix, text, says):
    # Parsers keep the last: a school's figure written twice, or a second `schools` list, left
    # the first out without a word.
    path = tmp_path / f"snapshot{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SnapshotError) as refused:
        load_snapshot(path)
    assert str(refused.value) == f"{path}: {says}"


@pytest.mark.parametrize("as_of", ["20260901", 20260901, 1788220800])
def test_a_date_written_as_digits_is_refused_as_such(as_of):
    # 20260901 was refused as "Datetimes provided to dates should have zero time" (read as
    # seconds since 1970), and 1788220800 was taken for 2026-09-01 without a word.
    message = error_of(doc(as_of=as_of))
    assert message.startswith(f"snapshot: as_of: {as_of!r} is not a date written YYYY-MM-DD"), message
    assert "日期应写作 YYYY-MM-DD" in message


def test_a_district_code_written_bare_in_yaml_is_told_to_be_quoted():
    # `id: 320571` is a number to YAML; the error said only "Input should be a valid string".
    text = json.dumps(doc()).replace('"id": "320571"', '"id": 320571').replace('"district": "320571"', '"district": 320571')
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(text, yaml_ok=True)
    message = str(caught.value)
    assert message.startswith("snapshot: districts.0.id: Input should be a valid string (a number where text is expected: put it in quotes")
    assert "请给数字加引号" in message


@pytest.mark.parametrize("name, text", [("empty.yaml", ""), ("comment.yaml", "# nothing yet\n"), ("empty.json", ""),
                                        ("blank.json", " \n")])
def test_an_empty_snapshot_file_is_called_empty(tmp_path, name, text):
    # Was "Input should be a valid dictionary or instance of Snapshot" (YAML), or JSON's
    # "Expecting value: line 1 column 1".
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SnapshotError) as refused:
        load_snapshot(path)
    assert str(refused.value) == f"{path}: empty, no snapshot in it / 快照文件为空"
