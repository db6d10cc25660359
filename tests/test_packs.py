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
