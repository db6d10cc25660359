"""A quantity's value alone (`Quantity.value`, the check of a rule that holds) agrees with its measure.

`Assessor._check` takes a rule as held on the value alone when it passes the rule's threshold,
and asks the measure only otherwise: wherever the value is given, the measure must observe that
very value and nothing more, or a rule would hold in the stream that the measure would break.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from make import school
from rules.places import SchoolPlace, Standards
from rules.quantities import QUANTITIES, Scope
from rules.sections import school_sections
from schemas.snapshot import School

WITH_VALUE = {name: q for name, q in QUANTITIES.items() if q.value is not None}
STANDARDS = Standards({})

# Figures a school or section may leave unreported, or report as zero (a ratio's denominator).
SCHOOL_FIGURES = ("full_time_teachers", "certified_teachers", "training_360h_completed", "public_funds_budget_cny",
                  "training_spend_cny", "teaching_aux_area_m2", "sports_area_m2", "equipment_value_cny")
SECTION_FIGURES = ("teachers_above_required_degree", "key_teachers", "pe_arts_teachers", "multimedia_classrooms",
                   "teaching_aux_area_m2", "sports_area_m2", "equipment_value_cny")
figure = st.one_of(st.none(), st.just(0), st.integers(min_value=1, max_value=5000))


@st.composite
def schools(draw) -> School:
    kind = draw(st.sampled_from(["primary", "junior", "nine_year", "teaching_point"]))
    doc = school(kind=kind, **{name: draw(figure) for name in SCHOOL_FIGURES})
    for section in doc["sections"].values():
        section["students"] = draw(st.integers(min_value=0, max_value=3000))
        for name in SECTION_FIGURES:
            section[name] = draw(figure)
    # Shared figures a section reports itself may not add up past the school's own (a snapshot
    # rule): leave the school's out in that case.
    for name in ("teaching_aux_area_m2", "sports_area_m2", "equipment_value_cny"):
        own = [s.get(name) for s in doc["sections"].values()]
        if doc.get(name) is not None and any(v is not None for v in own):
            doc[name] = None
    return School.model_validate({k: v for k, v in doc.items() if v is not None}
                                 | {"sections": {lvl: {k: v for k, v in s.items() if v is not None}
                                                 for lvl, s in doc["sections"].items()}})


def places(record: School, scope: Scope) -> list:
    sections = school_sections(record)
    if scope is Scope.section:
        return sections
    return [SchoolPlace(record, tuple(sections), record.students, record.classes)]


def test_the_quantities_with_a_value_are_those_of_the_plain_rules():
    # Indicators and school ratios: every other quantity carries its own limit, or is a district's.
    assert sorted(WITH_VALUE) == sorted(["R1", "R2", "R3", "R4", "R5", "R6", "R7", "certified_share",
                                         "training_360h_share", "training_budget_share"])


@settings(max_examples=300, deadline=None)
@given(schools())
def test_a_value_is_what_the_measure_observes_and_all_it_observes(record):
    for quantity in WITH_VALUE.values():
        for place in places(record, quantity.scope):
            value = quantity.value(place, {}, STANDARDS)
            observation = quantity.measure(place, {}, STANDARDS)
            if value is None:
                # The measure has more to say here: a missing figure, or nothing to observe.
                assert observation is None or observation.value is None
                continue
            assert (observation.value, observation.limit, observation.unreported) == (value, None, 0)


def test_a_school_reporting_everything_has_every_value():
    record = School.model_validate(school(kind="nine_year"))
    for name, quantity in WITH_VALUE.items():
        for place in places(record, quantity.scope):
            value = quantity.value(place, {}, STANDARDS)
            assert value is not None and quantity.measure(place, {}, STANDARDS).value == value, name
