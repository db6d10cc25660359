"""Rule packs a bureau writes: how they extend one another, and the mistakes in them that must be
refused when the pack loads (one line naming the rule and the field), not found at evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from make import school, snapshot
from rules.evaluate import assess
from rules.pack import PackError, load_packs

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


def test_params_at_their_limits_load(tmp_path):
    pack = load_packs([str(write_pack(tmp_path, "  - {id: school_compliance, params: {min_reached: 7, floor_ratio: 1}}\n"
                                                "  - {id: G3.music, params: {classes_per_room: 0.5, min_area_m2: 0}}\n"))])
    assert pack.by_id("school_compliance").params == {"min_reached": 7, "floor_ratio": 1}
