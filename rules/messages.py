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
