"""Two small districts (苏州工业园区, 姑苏区) of passing primary schools, for metrics and alerting tests."""

from __future__ import annotations

from rules.evaluate import assess
from rules.pack import load_packs
from schemas.snapshot import Snapshot

PACK = load_packs(["national-2017"])


def school(sid: str, district: str, name: str, class_sizes=(40, 42, 44)) -> dict:
    """A primary school that meets every national rule unless its classes say otherwise."""
    return {"id": sid, "name": name, "district": district, "kind": "primary", "location": "urban",
            "sections": {"primary": {"students": sum(class_sizes), "class_sizes": list(class_sizes),
                                     "teachers_above_required_degree": 8, "key_teachers": 2,
                                     "pe_arts_teachers": 2, "multimedia_classrooms": 4}},
            "teaching_aux_area_m2": 700, "sports_area_m2": 1200, "equipment_value_cny": 400000,
            "music_rooms_m2": [100], "art_rooms_m2": [95], "full_time_teachers": 10,
            "certified_teachers": 10, "training_360h_completed": 10,
            "rotation_eligible": 5, "rotated": 1, "rotated_key": 1,
            "public_funds_budget_cny": 200000, "training_spend_cny": 12000}


def without(doc: dict, *figures: str) -> dict:
    """A school of `school` that did not report `figures` (whole-school ones, as `school` gives them)."""
    return {k: v for k, v in doc.items() if k not in figures}


def district(did: str, name: str, teacher_pay: int = 200000) -> dict:
    return {"id": did, "name": name, "migrant_children_eligible": 100, "migrant_children_in_public": 99,
            "junior_cohort_entered": 100, "junior_cohort_retained": 99, "disabled_children": 10,
            "disabled_children_enrolled": 10, "teacher_avg_pay_cny": teacher_pay,
            "civil_servant_avg_pay_cny": 190000}


def report(districts: list[dict], schools: list[dict]):
    return assess(Snapshot.model_validate({"as_of": "2026-09-01", "districts": districts, "schools": schools}), PACK)


SIP = district("320571", "苏州工业园区")
GUSU = district("320508", "姑苏区", teacher_pay=150000)  # below civil servants: G7, a district rule
SIP_SCHOOLS = [school("320571-001", "320571", "星海实验小学", (40, 46)), school("320571-002", "320571", "星洲小学")]
GUSU_SCHOOLS = [school("320508-001", "320508", "平江实验学校")]
