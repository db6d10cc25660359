"""Bilingual violation messages: a rule's templates filled with the place, value and limit."""

from __future__ import annotations

import re
import string
from typing import Any

LEVEL_ZH = {"primary": "小学", "junior": "初中"}
LEVEL_EN = {"primary": "primary", "junior": "junior"}


def place_names(district_id: str, district_name: str, school_id: str | None = None,
                school_name: str | None = None, level: str | None = None) -> dict[str, str]:
    """How a message names its place, in Chinese and English."""
    zh = f"{district_name}（{district_id}）"
    en = f"{district_name} ({district_id})"
    if school_id is not None:
        zh = f"{school_name}（{school_id}，{district_name}）"
        en = f"{school_name} ({school_id}), {district_name}"
    if level is not None:
        zh += f"{LEVEL_ZH.get(level, level)}{'部' if school_id else ''}"
        en += f", {LEVEL_EN.get(level, level)}{' section' if school_id else ''}"
    return {"place_zh": zh, "place_en": en}


#: Schools of a level, counted in a message ("34 所小学中 2 所…", "2 of 34 primary schools").
SCHOOLS_ZH = {"primary": "小学", "junior": "初中学校"}
SCHOOLS_EN = {"primary": "primary schools", "junior": "junior schools"}


def unreported_messages(title_zh: str, title_en: str, place: dict[str, str], level: str | None, figure: str,
                        unreported: int, reported: int, value: float | None, limit: float | None) -> dict[str, str]:
    """Why a district figure over some of its schools decides nothing: how many did not report,
    and what the figure is over the others (a lead sees how far the known part is from the line)."""
    zh_counted, en_counted = _unreported(level, figure, unreported, reported)
    zh = f"{place['place_zh']}{title_zh}未能判定：{zh_counted}"
    en = f"{place['place_en']}: {title_en} undetermined: {en_counted}"
    if value is not None:
        bound_zh = f"（上限 {limit:g}）" if limit is not None else ""
        bound_en = f" (limit {limit:g})" if limit is not None else ""
        zh += f"，据已报送的 {reported} 所计算为 {value:.3f}{bound_zh}"
        en += f"; over the {reported} that did it is {value:.3f}{bound_en}"
    return {"message_zh": zh, "message_en": en}


def unreported_note(level: str | None, figure: str, unreported: int, reported: int) -> tuple[str, str]:
    """What a violation over some of a district's schools adds to its messages (Chinese, English):
    it is over the limit on what is known, and the rest is still to be reported."""
    zh_counted, en_counted = _unreported(level, figure, unreported, reported)
    return (f"（{zh_counted}，仅据其余 {reported} 所计算）",
            f" ({en_counted}; computed over the other {reported} only)")


def _unreported(level: str | None, figure: str, unreported: int, reported: int) -> tuple[str, str]:
    of = unreported + reported
    return (f"{of} 所{SCHOOLS_ZH.get(level, '学校')}中 {unreported} 所未报送 {figure}",
            f"{unreported} of {of} {SCHOOLS_EN.get(level, 'schools')} did not report {figure}")


def render(template: str, fields: dict[str, Any]) -> str:
    """Fill a template; a field the place does not have is shown as '?' rather than failing,
    because a message must never stop an evaluation."""
    try:
        return template.format_map(_Lenient(fields))
    except (ValueError, TypeError):
        return template


def template_fields(template: str) -> set[str]:
    """The field names a template uses. Raises ValueError when the template does not parse or
    could fail when filled, which `render` cannot catch for every place and value: attribute
    access and indexing ({place_en[999]}), a field inside a format spec, a conversion other than
    !r, !s, !a, a width or precision above MAX_WIDTH (a string that large per message)."""
    names = set()
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        problem = _field_problem(name, spec or "", conversion)
        if problem:
            raise ValueError(f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}: {problem}")
        names.add(name)
    return names


MAX_WIDTH = 100


def _field_problem(name: str, spec: str, conversion: str | None) -> str | None:
    if not name.isidentifier():
        return "a field is a plain name like {value}, without attributes, indexes or positions"
    if conversion not in (None, "r", "s", "a"):
        return "the only conversions are !r, !s and !a"
    if "{" in spec:
        return "a format spec cannot contain a field"
    if any(int(digits) > MAX_WIDTH for digits in re.findall(r"\d+", spec)):
        return f"a width or precision is at most {MAX_WIDTH}"
    return None


class _Lenient(dict):
    def __missing__(self, key: str) -> Any:
        return _Unknown()


class _Unknown:
    def __format__(self, spec: str) -> str:
        return "?"
