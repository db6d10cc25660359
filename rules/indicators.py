"""The seven resource indicators (R1–R7) of a school section, from its counts and areas."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Indicator:
    """An indicator is a section figure per student, or per 100 students."""

    id: str
    figure: str
    per: int
    name_zh: str
    name_en: str


INDICATORS: tuple[Indicator, ...] = (
    Indicator("R1", "teachers_above_required_degree", 100, "每百名学生拥有高于规定学历教师数",
              "teachers above the required degree per 100 students"),
    Indicator("R2", "key_teachers", 100, "每百名学生拥有县级及以上骨干教师数",
              "county-level-or-above key teachers per 100 students"),
    Indicator("R3", "pe_arts_teachers", 100, "每百名学生拥有体育、艺术专任教师数",
              "PE and arts teachers per 100 students"),
    Indicator("R4", "teaching_aux_area_m2", 1, "生均教学及辅助用房面积",
              "teaching and auxiliary area per student (m²)"),
    Indicator("R5", "sports_area_m2", 1, "生均体育运动场馆面积", "sports ground area per student (m²)"),
    Indicator("R6", "equipment_value_cny", 1, "生均教学仪器设备值",
              "teaching equipment value per student (CNY)"),
    Indicator("R7", "multimedia_classrooms", 100, "每百名学生拥有网络多媒体教室数",
              "networked multimedia classrooms per 100 students"),
)

BY_ID = {i.id: i for i in INDICATORS}
IDS = tuple(BY_ID)


def indicator_value(indicator: Indicator, figure: float | None, students: int) -> float | None:
    """The indicator for a section with `students` students, or None when the figure is missing."""
    if figure is None or students <= 0:
        return None
    return figure * indicator.per / students
