"""Small snapshots for tests: every figure comfortably passes unless a test overrides it."""

from __future__ import annotations

import copy
from typing import Any

from schemas.snapshot import Snapshot

PRIMARY = {
    "students": 1000, "class_sizes": [40] * 22,
    "teachers_above_required_degree": 50, "key_teachers": 20, "pe_arts_teachers": 10,
    "multimedia_classrooms": 30, "teaching_aux_area_m2": 5000.0, "sports_area_m2": 8000.0,
    "equipment_value_cny": 2_100_000.0,
}
JUNIOR = {
    "students": 1000, "class_sizes": [45] * 22,
    "teachers_above_required_degree": 60, "key_teachers": 20, "pe_arts_teachers": 10,
    "multimedia_classrooms": 30, "teaching_aux_area_m2": 6000.0, "sports_area_m2": 11000.0,
    "equipment_value_cny": 2_600_000.0,
}
DISTRICT = {
    "id": "320571", "name": "苏州工业园区",
    "migrant_children_eligible": 1000, "migrant_children_in_public": 977,
    "junior_cohort_entered": 1000, "junior_cohort_retained": 990,
    "disabled_children": 100, "disabled_children_enrolled": 100,
    "teacher_avg_pay_cny": 198000.0, "civil_servant_avg_pay_cny": 190000.0,
}


def school(ident: str = "320571-001", kind: str = "primary", levels: tuple[str, ...] | None = None,
           sections: dict[str, dict] | None = None, **fields: Any) -> dict:
    """A passing school of `kind`; `sections` entries are merged into the default sections."""
    levels = levels or {"primary": ("primary",), "junior": ("junior",), "nine_year": ("primary", "junior"),
                        "twelve_year": ("primary", "junior"), "teaching_point": ("primary",),
                        "special": ("primary",)}[kind]
    base = {"primary": PRIMARY, "junior": JUNIOR}
    made = {lvl: {**copy.deepcopy(base[lvl]), **(sections or {}).get(lvl, {})} for lvl in levels}
    doc = {
        "id": ident, "name": f"测试学校{ident[-3:]}", "district": "320571", "kind": kind,
        "location": "urban", "public": True, "boarding": False, "sections": made,
        "music_rooms_m2": [100.0] * 4, "art_rooms_m2": [95.0] * 4,
        "full_time_teachers": 100, "certified_teachers": 100, "training_360h_completed": 100,
        "rotation_eligible": 20, "rotated": 3, "rotated_key": 1,
        "public_funds_budget_cny": 1_000_000.0, "training_spend_cny": 60_000.0,
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def snapshot(*schools: dict, as_of: str = "2026-09-01", **district: Any) -> Snapshot:
    """A one-district snapshot of the given schools (one passing primary school by default)."""
    return Snapshot.model_validate({
        "as_of": as_of,
        "districts": [{k: v for k, v in {**DISTRICT, **district}.items() if v is not None}],
        "schools": list(schools) or [school()],
    })
