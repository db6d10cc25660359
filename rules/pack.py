"""Rule packs: the assessment's rules as data (YAML), validated on load.

A rule is a record in the manner of DHIS2 validation rules: a quantity observed at a scope (left
side), a comparison, a threshold (right side), a severity and the dates it applies in. A pack may
extend another: an entry with a known id changes only the fields it names, and of its `params`
and a threshold by level or kind only the keys it names (that is how a bureau tightens a national
rule); an entry with a new id adds a rule.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from rules.messages import template_fields
from rules.quantities import QUANTITIES, Scope
from schemas.loading import DuplicateKey, load_yaml, printable, yaml_problem
from schemas.numbers import NotBoolean
from schemas.snapshot import Level, Location, SchoolKind

PACK_DIR = Path(__file__).parent / "packs"

Op = Literal[">=", "<=", ">", "<", "=="]


class Severity(str, Enum):
    critical = "critical"
    warning = "warning"
    info = "info"


LEVELS = tuple(level.value for level in Level)
KINDS = tuple(kind.value for kind in SchoolKind)
LOCATIONS = tuple(location.value for location in Location)

#: The `when` fields a scope's places are matched on (rules/evaluate.py); the others would be
#: ignored there, and the rule applied where its author meant it not to.
WHEN_FIELDS = {
    Scope.section: ("kinds", "locations", "levels"),
    Scope.school: ("kinds", "locations"),
    Scope.district_section: ("levels",),
    Scope.district: (),
}


#: A figure of a rule. YAML reads yes, no, on, off, true and false as booleans, which pydantic
#: took for 1 and 0: `threshold: yes` was a limit of 1.
Number = Annotated[float, NotBoolean()]


def _threshold_shape(value) -> str:
    return "dict[str,float]" if isinstance(value, Mapping) else "float"


#: One limit, or one by level or kind. Told apart by shape, so that the error is that of the shape
#: written: tried as both, a mapping holding a boolean was reported as "threshold.float: Input
#: should be a valid number", naming neither the key nor the boolean. The tags are the names
#: pydantic gave the two shapes in errors before.
Threshold = Annotated[Union[Annotated[Number, Tag("float")], Annotated[dict[str, Number], Tag("dict[str,float]")]],
                      Discriminator(_threshold_shape)]


class When(BaseModel):
    """Which places a rule looks at; an empty list means all. A value that names no kind,
    location or level is refused: the rule would silently never apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kinds: tuple[Literal[KINDS], ...] = ()
    locations: tuple[Literal[LOCATIONS], ...] = ()
    levels: tuple[Literal[LEVELS], ...] = ()


class Rule(BaseModel):
    """One rule. `threshold` is a number, or a mapping by level (section and district-section
    scopes) or by school kind (school scope); it may be omitted where the quantity carries its own
    limit (a room count against the classes, teacher pay against civil-servant pay)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]*$", max_length=64)]
    scope: Scope
    quantity: str
    op: Op
    threshold: Threshold | None = None
    params: dict[str, Number] = Field(default_factory=dict)
    when: When = When()
    applies_from: dt.date | None = None
    applies_until: dt.date | None = None
    #: `year`: the limit grows through the fiscal year with its months gone (time progress,
    #: rules/pace.py), and a year gone is judged on the whole limit; for a figure of the year so
    #: far, compared with >=.
    prorate: Literal["year"] | None = None
    severity: Severity
    title_zh: str
    title_en: str
    message_zh: str
    message_en: str
    unit: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        problem = (self._quantity_problem() or self._threshold_problem() or self._when_problem()
                   or self._dates_problem() or self._prorate_problem() or self._template_problem())
        if problem:
            raise ValueError(f"rule {self.id}: {problem}")
        return self

    def _quantity_problem(self) -> str | None:
        quantity = QUANTITIES.get(self.quantity)
        if quantity is None:
            return f"unknown quantity {self.quantity!r}; known: {', '.join(sorted(QUANTITIES))} / 未知的观测量"
        if quantity.scope is not self.scope:
            return (f"quantity {self.quantity} is observed at {quantity.scope.value}, not {self.scope.value}"
                    " / 观测量与规则范围不符")
        if self.threshold is None and not quantity.carries_limit:
            return f"quantity {self.quantity} needs a threshold / 缺少阈值"
        return quantity.params_problem(self.params)

    def _threshold_problem(self) -> str | None:
        if isinstance(self.threshold, dict):
            problem = _threshold_keys_problem(self.scope, self.threshold)
            if problem:
                return problem
        # A NaN or infinite limit makes every comparison fail: every place would be flagged.
        limits = self.threshold.items() if isinstance(self.threshold, dict) else [(None, self.threshold)]
        for key, limit in limits:
            if limit is not None and not math.isfinite(limit):
                where = f"threshold.{key}" if key is not None else "threshold"
                return f"{where}: {limit!r} is not a finite number / 阈值应为有限数值"
        return None

    def _when_problem(self) -> str | None:
        used = WHEN_FIELDS[self.scope]
        for name in ("kinds", "locations", "levels"):
            if getattr(self.when, name) and name not in used:
                fits = f"only {', '.join(used)} apply" if used else "none applies"
                return (f"when.{name} does not apply to a {self.scope.value} rule ({fits})"
                        f" / {self.scope.value} 规则不适用 when.{name}")
        return None

    def _dates_problem(self) -> str | None:
        if self.applies_from and self.applies_until and self.applies_until < self.applies_from:
            return "applies_until is before applies_from / 失效日期早于生效日期"
        return None

    def _prorate_problem(self) -> str | None:
        if self.prorate is None:
            return None
        if not QUANTITIES[self.quantity].of_year:
            of_year = ", ".join(sorted(name for name, q in QUANTITIES.items() if q.of_year))
            return (f"prorate: {self.quantity} is not a figure of the year so far (those are: {of_year})"
                    " / 该观测量不是年度累计数，不能按时间进度折算")
        if self.op != ">=":
            return "prorate: a prorated limit is a floor, compared with >= / 按时间进度折算的阈值须用 >= 比较"
        return None

    def _template_problem(self) -> str | None:
        for field in ("message_zh", "message_en"):
            try:
                template_fields(getattr(self, field))
            except ValueError as exc:
                return f"{field} is not a valid template ({exc}) / 消息模板无效"
        return None

    def applies_on(self, day: dt.date) -> bool:
        """Whether the rule is in force on `day`."""
        return (self.applies_from is None or self.applies_from <= day) and (
            self.applies_until is None or day <= self.applies_until
        )

    def limit_for(self, key: str | None) -> float | None:
        """The threshold for a level or school kind; None where the rule sets none for it."""
        if isinstance(self.threshold, dict):
            return self.threshold.get(key) if key is not None else None
        return self.threshold


#: What a threshold mapping is keyed by at each scope (`Rule.limit_for`'s key in rules/evaluate.py).
THRESHOLD_KEYS = {Scope.section: ("level", LEVELS), Scope.district_section: ("level", LEVELS),
                  Scope.school: ("school kind", KINDS)}


def _threshold_keys_problem(scope: Scope, threshold: dict[str, float]) -> str | None:
    """Why a threshold mapping could not be used at `scope`: a key no place has would make the
    rule silently never apply there."""
    if scope not in THRESHOLD_KEYS:
        return f"a {scope.value} rule's threshold is one number, not a mapping / 区县规则的阈值应为单个数值"
    what, keys = THRESHOLD_KEYS[scope]
    if not threshold:
        return f"threshold: an empty mapping; give a number or one by {what} / 阈值不能为空"
    unknown = [key for key in threshold if key not in keys]
    if unknown:
        return (f"threshold by {what}: {unknown[0]!r} is not one of {', '.join(keys)}"
                f" / 阈值的键应为以下之一：{', '.join(keys)}")
    return None


class PackFile(BaseModel):
    """A pack as written in YAML, before its base is merged in."""

    model_config = ConfigDict(extra="forbid")
    pack: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]*$")]
    title_zh: str
    title_en: str
    source: str = ""
    extends: str | None = None
    rules: list[dict]


class RulePack(BaseModel):
    """The rules in force after merging a pack with what it extends. `name` is the packs as they
    were named (a path, for a pack outside junheng); `ids` their own `pack:` ids, in that order."""

    model_config = ConfigDict(frozen=True)
    name: str
    ids: tuple[str, ...]
    rules: tuple[Rule, ...]

    @property
    def config_name(self) -> str:
        """The packs' own ids joined by `+`: what names generated configuration (files, rule
        groups, Grafana uids), the same however a pack was given. A path did: a pack given by
        path wrote its rules file beside itself, outside the output directory, and put a `/` in
        Grafana rule group titles, which the sync sends in URL paths."""
        return "+".join(self.ids)

    def in_force(self, day: dt.date) -> tuple[Rule, ...]:
        """Rules that apply on `day`."""
        return tuple(r for r in self.rules if r.applies_on(day))

    def by_id(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


class PackError(Exception):
    """A rule pack that cannot be found or does not validate; the message is for the user."""


def load_packs(names: list[str]) -> RulePack:
    """Load packs by built-in name or YAML path, each merged over the ones before it."""
    if not names:
        # An assessment under no rules would report every place as well.
        raise PackError(f"no rule pack given (built-in: {', '.join(builtin_packs())}) / 未指定规则包")
    merged: dict[str, dict] = {}
    ids = []
    done: set[str] = set()
    for name in names:
        ids.append(_merge_into(merged, name, seen=(), done=done))
    rules = []
    for raw in merged.values():
        try:
            rules.append(Rule.model_validate(raw))
        except ValidationError as exc:
            raise PackError(_first_error(f"rule {raw.get('id')}", exc)) from None
    if not rules:
        raise PackError(f"rule pack {'+'.join(names)}: no rules / 规则包中没有规则")
    _alertable(rules)
    return RulePack(name="+".join(names), ids=tuple(ids), rules=tuple(rules))


def _alertable(rules: list[Rule]) -> None:
    """Refuse two rule ids that differ only in `.`, `-` and `_`: a Prometheus alert name allows `_`
    alone there, so R1.cv and R1_cv would become one alert (JunhengRule_R1_cv), each firing as the
    other, and their generated promtool tests would contradict each other."""
    seen: dict[str, str] = {}
    for rule in rules:
        first = seen.setdefault(re.sub(r"[.\-]", "_", rule.id), rule.id)
        if first != rule.id:
            raise PackError(f"rules {first} and {rule.id} differ only in '.', '-' or '_', which alert names cannot "
                            f"tell apart: rename one / 规则 {first} 与 {rule.id} 仅在 '.'、'-'、'_' 上不同，告警名称无法区分，请重命名其一")


def builtin_packs() -> list[str]:
    """Names of the packs shipped with junheng."""
    return sorted(p.stem for p in PACK_DIR.glob("*.yaml"))


def _merge_into(merged: dict[str, dict], name: str, seen: tuple[str, ...], done: set[str],
                extended_by: Path | None = None) -> str:
    """Merge pack `name` (and what it extends, unless merged already: `done`) into `merged`;
    returns its `pack:` id."""
    path = _pack_path(name, extended_by)
    pack = _parsed(path, _pack_text(path, name, extended_by))
    if pack.pack in seen:
        raise PackError(f"rule pack {name}: extends itself through {' → '.join(seen)} / 规则包循环继承")
    if pack.pack in done:
        # Merged already as an earlier pack's base: merged again, it would undo what the packs
        # between changed (`my-district suzhou-sip-2023` brought national G5 back over the
        # district's tighter one, both extending national-2017).
        return pack.pack
    done.add(pack.pack)
    if pack.extends:
        _merge_into(merged, pack.extends, seen + (pack.pack,), done, path)
    for entry in pack.rules:
        rule_id = entry.get("id")
        if not isinstance(rule_id, str):
            raise PackError(f"rule pack {name}: a rule without an id / 规则缺少 id")
        merged[rule_id] = _overridden(merged.get(rule_id, {}), entry)
    return pack.pack


def _overridden(base: dict, entry: dict) -> dict:
    """A rule with an extending pack's entry over it. Its params and a threshold by level or kind
    merge key by key: a bureau that changes one figure (the funds per pupil, the primary class
    size) keeps the others it did not mention; replaced whole, `threshold: {primary: 40}` on G5
    silently stopped checking junior classes."""
    rule = {**base, **entry}
    for field in ("params", "threshold"):
        # An empty mapping stays as given, for the rule's check to refuse as the mistake it is.
        if isinstance(base.get(field), dict) and isinstance(entry.get(field), dict) and entry[field]:
            rule[field] = {**base[field], **entry[field]}
    return rule


def _pack_path(name: str, extended_by: Path | None) -> Path:
    """Where a pack is: a name without a suffix is a built-in one, anything else a file. A
    relative path in `extends` is looked for beside the pack that extends it first, since a
    bureau keeps its packs together and runs them from anywhere, then where it was looked for
    before, the current directory."""
    path = Path(name)
    if not path.suffix:
        return PACK_DIR / f"{name}.yaml"
    if extended_by is not None and not path.is_absolute():
        beside = extended_by.parent / path
        if beside.exists():
            return beside
    return path


def _pack_text(path: Path, name: str, extended_by: Path | None) -> str:
    """A pack file's text, or a PackError saying in one line why it cannot be had."""
    where = printable(str(path))
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        by = f"extended by {printable(str(extended_by))}; " if extended_by is not None else ""
        raise PackError(
            f"rule pack {printable(repr(name))} not found ({by}built-in: {', '.join(builtin_packs())}) / 找不到规则包"
        ) from None
    except IsADirectoryError:
        raise PackError(f"rule pack {where}: is a directory, not a pack file / 这是目录，不是规则包文件") from None
    except UnicodeDecodeError as exc:
        raise PackError(f"rule pack {where}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start});"
                        " save it as UTF-8 / 规则包不是 UTF-8 文本，请以 UTF-8 保存") from None
    except OSError as exc:
        raise PackError(f"rule pack {where}: cannot be read ({exc.strerror}) / 无法读取规则包") from None


def _parsed(path: Path, text: str) -> PackFile:
    where = printable(str(path))
    try:
        return PackFile.model_validate(load_yaml(text))
    except DuplicateKey as exc:
        raise PackError(f"rule pack {where}: {printable(str(exc))} / 规则包中{exc.chinese()}") from None
    except yaml.YAMLError as exc:
        english, chinese = yaml_problem(exc)
        raise PackError(f"rule pack {where}: not valid YAML {english} / 规则包不是有效的 YAML{chinese}") from None
    except ValidationError as exc:
        raise PackError(_first_error(f"rule pack {where}", exc)) from None
    except RecursionError:  # PyYAML's parser recurses once per level of nesting
        raise PackError(f"rule pack {where}: nested too deeply / 规则包嵌套层级过深") from None


def _first_error(where: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    if err["type"] == "value_error" and not err["loc"]:  # the checks above: named and bilingual already
        return printable(err["msg"].removeprefix("Value error, "))
    loc = ".".join(str(p) for p in err["loc"])
    given = err.get("input")
    if isinstance(given, (str, int, float)) and loc:  # what was written, beside where (a typo in a list)
        loc += f" {given!r}"[:80]
    return printable(f"{where}: {loc + ': ' if loc else ''}{err['msg']} / 规则定义有误")
