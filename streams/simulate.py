"""A steady, realistic stream of changes for example districts, with the snapshot they lead to.

The simulator keeps its own copy of the truth — the snapshot as each change leaves it — mutated
directly, without going through the event fold. Tests use that copy as the batch side: folding
the simulator's events (in any order, with duplicates) must give the same assessment.

The truth keeps the snapshot's `as_of`, and its figures mean what a folded school's do
(streams/state.py `school_record`): money of the school's current period, the newest fiscal year
with a budget (the snapshot's year at least), rotations of the snapshot's year only.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from schemas import events as ev
from schemas.snapshot import Snapshot

KEY_LEVELS = ("county", "city", "province")
WEIGHTS = {
    "hire": 18, "leave": 14, "update": 10, "rotate": 8, "open_class": 8, "resize_class": 10,
    "close_class": 6, "enrolment": 7, "facilities": 7, "budget": 4, "training": 8, "teacher_pay": 1,
}
# Cumulative weights, given once: `random.choices` would add the weights up at every draw (a
# fifth of the simulator's time), and draws the same values either way.
_KINDS = list(WEIGHTS)
_KIND_CUM_WEIGHTS = list(itertools.accumulate(WEIGHTS.values()))
_SUBJECTS, _SUBJECT_CUM_WEIGHTS = ("other", "pe", "music", "art"), list(itertools.accumulate((85, 7, 4, 4)))
_KEY_LEVELS_ANY, _KEY_LEVEL_CUM_WEIGHTS = ("none",) + KEY_LEVELS, list(itertools.accumulate((75, 15, 7, 3)))


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Simulator:
    """Generates change events for a snapshot's schools and keeps the snapshot they lead to.

    The events are dated from `start` (by default 08:00 the day after the snapshot's as_of) on,
    `step_seconds` apart, but never later than `now()`, the wall clock: a worker refuses events
    dated ahead of its clock (streams/future.py). A bench's 500,000 events span 214 days of 37 s
    steps, and `junheng simulate`, which starts at the clock, would run ahead of it at any rate
    above one event per 37 s. Once a step would pass the clock, the event is dated at the clock
    instead, so that the simulated time goes on with the real one; until then the events do not
    depend on the clock (nor do the rotation and budget years, taken from the event's date)."""

    def __init__(self, snapshot: Snapshot, seed: int = 1, start: dt.datetime | None = None,
                 source: str = "junheng-simulator", step_seconds: float = 37.0,
                 now: Callable[[], dt.datetime] = wall_clock):
        self.rng = random.Random(seed)
        self.truth = snapshot.model_dump(mode="json", exclude_none=True)
        self.schools = {s["id"]: s for s in self.truth["schools"] if s.get("kind") != "special" and s["sections"]}
        self.school_ids = sorted(self.schools)
        self.districts = {d["id"]: d for d in self.truth["districts"]}
        self.district_schools: dict[str, list[dict]] = {}
        for school_id in self.school_ids:
            school = self.schools[school_id]
            self.district_schools.setdefault(school["district"], []).append(school)
        start = start or dt.datetime.combine(snapshot.as_of + dt.timedelta(days=1), dt.time(8),
                                             tzinfo=dt.timezone(dt.timedelta(hours=8)))
        if start.tzinfo is None:  # as the events read it
            start = start.replace(tzinfo=ev.CHINA_STANDARD_TIME)
        self.now = now
        self._passed = now()  # a moment the wall clock has passed: read again only when reached
        self.clock = min(start, self._passed.astimezone(start.tzinfo))
        self.step = dt.timedelta(seconds=step_seconds)
        self.source = source
        self.versions: Counter = Counter()
        self.teachers: dict[str, tuple[str, dict]] = {}
        self.teachers_at: dict[str, set[str]] = {}
        self.baseline = {s["id"]: s for s in snapshot.model_dump(mode="json", exclude_none=True)["schools"]}
        self.unnamed_teachers: dict[str, dict] = {}
        self.classes: dict[str, tuple[str, dict]] = {}
        self.classes_at: dict[str, set[str]] = {}
        # Classes counted in the snapshot that no event has named yet, by school and level: a
        # change to one of them names its size before, which must be one of these.
        self.unnamed_classes = {(s["id"], lvl): list(sec.get("class_sizes") or [])
                                for s in self.schools.values() for lvl, sec in s["sections"].items()}
        self.ids = itertools.count(1)
        self.seed = seed
        # Money by year, so that the truth's budget and spend follow the school's current period
        # across a new year: budgets by fiscal year, training spend by the year of its postings.
        self.year = snapshot.as_of.year
        self.budgets = {s["id"]: ({self.year: s["public_funds_budget_cny"]} if "public_funds_budget_cny" in s else {})
                        for s in self.schools.values()}
        self.spent = {s["id"]: ({self.year: s["training_spend_cny"]} if "training_spend_cny" in s else {})
                      for s in self.schools.values()}
        # Whether each teacher the events rotated out of a school in the snapshot's year was a key
        # teacher at her latest rotation: `rotated` counts a teacher once a year (README).
        self.rotated: dict[tuple[str, str], bool] = {}

    def snapshot(self) -> Snapshot:
        """The snapshot the events so far lead to."""
        return Snapshot.model_validate(self.truth)

    def events(self, count: int) -> list[ev.Event]:
        """The next `count` events."""
        return [self.next_event() for _ in range(count)]

    def next_event(self, district: str | None = None) -> ev.Event:
        """One more change (in `district`, when given), applied to the truth and returned as an event."""
        while True:
            kind = self.rng.choices(_KINDS, cum_weights=_KIND_CUM_WEIGHTS)[0]
            if district is None:
                school = self.schools[self.rng.choice(self.school_ids)]
            else:
                school = self.rng.choice(self.district_schools[district])
            event = getattr(self, f"_{kind}")(school)
            if event is not None:
                self._advance()
                return event

    def _advance(self) -> None:
        """The next event's time: a step later, but no later than the wall clock."""
        clock = self.clock + self.step
        if clock > self._passed:
            self._passed = self.now()
            if clock > self._passed:
                clock = self._passed.astimezone(self.clock.tzinfo)
        self.clock = clock

    # --- teachers ---------------------------------------------------------------------------------

    def _hire(self, school):
        image = self._new_image(school)
        teacher = f"T{self.seed}-{next(self.ids)}"
        self._count_teacher(school, image, +1)
        self._place("teacher", teacher, school["id"], image)
        return self._event(ev.TeacherChanged, school, f"teacher:{teacher}", type="teacher.hired",
                           teacher=teacher, after=image)

    def _leave(self, school):
        teacher, image = self._some_teacher(school)
        if image is None:
            return None
        self._name(school, teacher, image)
        self._count_teacher(school, image, -1)
        self._place("teacher", teacher, school["id"], None)
        return self._event(ev.TeacherChanged, school, f"teacher:{teacher}", type="teacher.left",
                           teacher=teacher, before=image)

    def _update(self, school):
        teacher, image = self._some_teacher(school)
        if image is None:
            return None
        after = {**image, "training_360h_completed": True,
                 "key_level": self.rng.choice(("none",) + KEY_LEVELS)}
        self._name(school, teacher, image)
        self._count_teacher(school, image, -1)
        self._count_teacher(school, after, +1)
        self._place("teacher", teacher, school["id"], after)
        return self._event(ev.TeacherChanged, school, f"teacher:{teacher}", type="teacher.updated",
                           teacher=teacher, before=image, after=after)

    def _rotate(self, school):
        teacher, image = self._some_teacher(school)
        # Rotation (交流轮岗) is between schools of one district.
        others = [s for s in self.district_schools[school["district"]]
                  if s["id"] != school["id"] and image and image["level"] in s["sections"]]
        if image is None or not others:
            return None
        target = self.rng.choice(others)
        self._name(school, teacher, image)
        self._count_teacher(school, image, -1)
        self._count_teacher(target, image, +1)
        year = self._year()
        if year == self.year:  # the snapshot's rotation figures are of its year only
            self._count_rotation(school, teacher, image["key_level"] in KEY_LEVELS)
        self._place("teacher", teacher, target["id"], image)
        return self._event(ev.TeacherRotated, school, f"teacher:{teacher}", teacher=teacher,
                           to_school=target["id"], year=year, image=image)

    def _count_rotation(self, school, teacher: str, key: bool) -> None:
        """A teacher leaving a school again in the year is counted once, as a key teacher or not
        as her latest rotation says (the fold keeps the newest rotation of her year)."""
        before = self.rotated.get((school["id"], teacher))
        self.rotated[(school["id"], teacher)] = key
        school["rotated"] = school.get("rotated", 0) + int(before is None)
        school["rotated_key"] = school.get("rotated_key", 0) + int(key) - int(bool(before))

    def _year(self) -> int:
        """The year of the next event's date, China Standard Time (fiscal and rotation years)."""
        return self.clock.astimezone(ev.CHINA_STANDARD_TIME).year

    def _new_image(self, school) -> dict:
        level = self.rng.choice(sorted(school["sections"]))
        return {"level": level, "degree_above_required": self.rng.random() < 0.95,
                "subject": self.rng.choices(_SUBJECTS, cum_weights=_SUBJECT_CUM_WEIGHTS)[0],
                "key_level": self.rng.choices(_KEY_LEVELS_ANY, cum_weights=_KEY_LEVEL_CUM_WEIGHTS)[0],
                "certified": True, "training_360h_completed": self.rng.random() < 0.5}

    def _some_teacher(self, school) -> tuple[str, dict | None]:
        """A teacher of the school: one the simulator hired, or one counted in the snapshot but
        not yet named by any event, described from the snapshot's counts not yet taken by other
        such teachers, so that the truth never clamps a count at zero. Call `_name` once the
        event is sent, which takes the teacher out of those counts."""
        mine = self.teachers_at.get(school["id"])
        if mine and self.rng.random() < 0.5:
            teacher = self.rng.choice(sorted(mine))
            return teacher, self.teachers[teacher][1]
        unnamed = self._unnamed(school)
        level = self.rng.choice(sorted(school["sections"]))
        if unnamed["full_time_teachers"] <= 0:
            return "", None
        image = {"level": level,
                 "degree_above_required": unnamed[(level, "teachers_above_required_degree")] > 0,
                 "subject": "pe" if unnamed[(level, "pe_arts_teachers")] > 0 and self.rng.random() < 0.1 else "other",
                 "key_level": "county" if unnamed[(level, "key_teachers")] > 0 and self.rng.random() < 0.3 else "none",
                 "certified": unnamed["certified_teachers"] > 0,
                 "training_360h_completed": unnamed["training_360h_completed"] > 0}
        return f"B-{school['id']}-{next(self.ids)}", image

    def _unnamed(self, school) -> dict:
        """Counts of the snapshot's teachers of a school that no event has named yet."""
        pool = self.unnamed_teachers.get(school["id"])
        if pool is None:
            base = self.baseline[school["id"]]
            pool = {field: base.get(field) or 0 for field in ("full_time_teachers", "certified_teachers", "training_360h_completed")}
            for level, section in base["sections"].items():
                for field in ("teachers_above_required_degree", "key_teachers", "pe_arts_teachers"):
                    pool[(level, field)] = section.get(field) or 0
            self.unnamed_teachers[school["id"]] = pool
        return pool

    def _name(self, school, teacher: str, image: dict) -> None:
        """A snapshot teacher named by an event leaves the unnamed counts for good."""
        if teacher in self.teachers:
            return
        pool = self._unnamed(school)
        pool["full_time_teachers"] -= 1
        pool["certified_teachers"] -= int(image["certified"])
        pool["training_360h_completed"] -= int(image["training_360h_completed"])
        pool[(image["level"], "teachers_above_required_degree")] -= int(image["degree_above_required"])
        pool[(image["level"], "key_teachers")] -= int(image["key_level"] in KEY_LEVELS)
        pool[(image["level"], "pe_arts_teachers")] -= int(image["subject"] in ("pe", "music", "art"))

    def _count_teacher(self, school, image, sign: int) -> None:
        def add(target, field, flag):
            if flag and target.get(field) is not None:
                target[field] = max(0, target[field] + sign)
        add(school, "full_time_teachers", True)
        add(school, "certified_teachers", image["certified"])
        add(school, "training_360h_completed", image["training_360h_completed"])
        section = school["sections"].get(image["level"])
        if section is not None:
            add(section, "teachers_above_required_degree", image["degree_above_required"])
            add(section, "key_teachers", image["key_level"] in KEY_LEVELS)
            add(section, "pe_arts_teachers", image["subject"] in ("pe", "music", "art"))

    # --- classes ----------------------------------------------------------------------------------

    def _open_class(self, school):
        level = self.rng.choice(sorted(school["sections"]))
        cap = 45 if level == "primary" else 50
        image = {"level": level, "students": self.rng.randint(30, cap + 3)}
        class_id = f"C{self.seed}-{next(self.ids)}"
        self._sizes(school, level).append(image["students"])
        self._place("class", class_id, school["id"], image)
        return self._event(ev.ClassChanged, school, f"class:{class_id}", type="class.opened",
                           class_id=class_id, after=image)

    def _resize_class(self, school):
        class_id, image = self._some_class(school)
        if image is None:
            return None
        cap = 45 if image["level"] == "primary" else 50
        after = {**image, "students": max(1, min(cap + 6, image["students"] + self.rng.randint(-3, 4)))}
        sizes = self._sizes(school, image["level"])
        sizes.remove(image["students"])
        sizes.append(after["students"])
        self._place("class", class_id, school["id"], after)
        return self._event(ev.ClassChanged, school, f"class:{class_id}", type="class.resized",
                           class_id=class_id, before=image, after=after)

    def _close_class(self, school):
        class_id, image = self._some_class(school)
        if image is None or len(self._sizes(school, image["level"])) <= 1:
            return None
        self._sizes(school, image["level"]).remove(image["students"])
        self._place("class", class_id, school["id"], None)
        return self._event(ev.ClassChanged, school, f"class:{class_id}", type="class.closed",
                           class_id=class_id, before=image)

    def _some_class(self, school) -> tuple[str, dict | None]:
        mine = self.classes_at.get(school["id"])
        if mine and self.rng.random() < 0.6:
            class_id = self.rng.choice(sorted(mine))
            return class_id, self.classes[class_id][1]
        level = self.rng.choice(sorted(school["sections"]))
        unnamed = self.unnamed_classes.get((school["id"], level))
        if not unnamed:
            return "", None
        size = unnamed.pop(self.rng.randrange(len(unnamed)))
        return f"B-{school['id']}-{next(self.ids)}", {"level": level, "students": size}

    def _sizes(self, school, level) -> list[int]:
        return school["sections"][level].setdefault("class_sizes", [])

    # --- enrolment, facilities, money --------------------------------------------------------------

    def _enrolment(self, school):
        level = self.rng.choice(sorted(school["sections"]))
        section = school["sections"][level]
        section["students"] = max(1, round(section["students"] * self.rng.uniform(0.97, 1.03)))
        return self._event(ev.EnrolmentReported, school, f"enrolment:{level}", level=level,
                           students=section["students"])

    def _facilities(self, school):
        figure = self.rng.choice(("sports_area_m2", "teaching_aux_area_m2", "equipment_value_cny"))
        level = next((lvl for lvl, sec in sorted(school["sections"].items()) if figure in sec), None)
        target = school["sections"][level] if level else school
        if figure not in target:
            return None
        target[figure] = float(round(target[figure] * self.rng.uniform(0.9, 1.12)))
        return self._event(ev.FacilitiesUpdated, school, f"facilities:{level or 'school'}", level=level,
                           **{figure: target[figure]})

    def _budget(self, school):
        if "public_funds_budget_cny" not in school:
            return None
        budget = float(round(school["public_funds_budget_cny"] * self.rng.uniform(0.97, 1.08), -2))
        year = self._year()
        self.budgets[school["id"]][year] = budget
        self._settle(school)
        return self._event(ev.BudgetSet, school, "budget", fiscal_year=year, public_funds_budget_cny=budget)

    def _training(self, school):
        amount = float(self.rng.randint(5, 60) * 100)
        spent = self.spent[school["id"]]
        year = self._year()
        spent[year] = spent.get(year, 0.0) + amount
        self._settle(school)
        posting = f"P{self.seed}-{next(self.ids)}"
        return self._event(ev.TrainingSpent, school, f"spend:{posting}", posting=posting, amount_cny=amount)

    def _settle(self, school) -> None:
        """The truth's budget and spend: those of the school's current period."""
        budgets, spent = self.budgets[school["id"]], self.spent[school["id"]]
        period = max((*budgets, self.year))
        if period in budgets:
            school["public_funds_budget_cny"] = budgets[period]
        else:
            school.pop("public_funds_budget_cny", None)
        if period in spent:
            school["training_spend_cny"] = spent[period]
        elif "training_spend_cny" in self.baseline[school["id"]]:
            school["training_spend_cny"] = 0.0  # reported, and nothing posted yet this year
        else:
            school.pop("training_spend_cny", None)

    def _teacher_pay(self, school):
        # A district-wide figure, so that the stream carries district.updated events too: it
        # carried none, and a fault that made every one of them fail to fold went unnoticed.
        district = self.districts[school["district"]]
        if "teacher_avg_pay_cny" not in district:
            return None
        district["teacher_avg_pay_cny"] = float(round(district["teacher_avg_pay_cny"] * self.rng.uniform(0.97, 1.05), -2))
        key = (district["id"], "teacher_avg_pay_cny")
        self.versions[key] += 1
        return ev.DistrictUpdated(event_id=f"{self.source}-{self.seed}-{next(self.ids)}", source=self.source,
                                  district=district["id"], occurred_at=self.clock, version=self.versions[key],
                                  teacher_avg_pay_cny=district["teacher_avg_pay_cny"])

    def _place(self, kind: str, entity: str, school_id: str, image: dict | None) -> None:
        """Where a teacher or class the simulator named is now (image None: gone)."""
        known, at = (self.teachers, self.teachers_at) if kind == "teacher" else (self.classes, self.classes_at)
        previous = known.get(entity)
        if previous is not None:
            at.get(previous[0], set()).discard(entity)
        known[entity] = (school_id, image)
        if image is not None:
            at.setdefault(school_id, set()).add(entity)

    def _event(self, model, school, entity: str, **fields: Any) -> ev.Event:
        # Teachers move between schools, so their versions run per teacher, not per school.
        key = entity if entity.startswith("teacher:") else (school["id"], entity)
        self.versions[key] += 1
        return model(event_id=f"{self.source}-{self.seed}-{next(self.ids)}", source=self.source,
                     district=school["district"], school=school["id"], occurred_at=self.clock,
                     version=self.versions[key], **fields)
