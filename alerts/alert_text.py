"""The bilingual text of a rule's alert, written once and rendered two ways.

The same text becomes a Prometheus annotation template (names, value and limit looked up at
alert time) and, for the promtool unit tests, the exact string that template must produce for
known series. Text is a sequence of literal pieces, named slots and pieces shown only when a
slot has a value (`When`).
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass

from rules.indicators import BY_ID
from rules.messages import LEVEL_EN, LEVEL_ZH, SCHOOLS_EN, SCHOOLS_ZH
from rules.pack import Rule
from rules.quantities import Scope

README = "https://github.com/junheng/junheng/blob/main/README.md"
SEVERITY_ZH = {"critical": "严重", "warning": "警告", "info": "提示"}
#: What a violated comparison means, by the rule's operator.
BREACH = {
    ">=": ("低于下限", "below the minimum of"),
    ">": ("未超过", "not above"),
    "<=": ("超过上限", "above the maximum of"),
    "<": ("未低于", "not below"),
    "==": ("不等于", "not equal to"),
}
#: A limit prorated over the year (`Rule.prorate`, Q4) is the part of the rule's title due by now:
#: "5% … below the minimum of 3.33%" read as a contradiction.
PACED = ("低于按本年时间进度应达到的", "below the")
PACED_AFTER = ("", " due by now, by the year's time progress")


@dataclass(frozen=True)
class Slot:
    """A piece of text known only when the alert fires."""

    name: str


@dataclass(frozen=True)
class When:
    """Text shown only when `slot`'s value, known when the alert fires, is above zero."""

    slot: Slot
    text: "Text"


Text = tuple[str | Slot | When, ...]

DISTRICT_NAME, SCHOOL_NAME = Slot("district_name"), Slot("school_name")
DISTRICT, SCHOOL = Slot("district"), Slot("school")
LEVEL_ZH_SLOT, LEVEL_EN_SLOT = Slot("level_zh"), Slot("level_en")
VALUE, LIMIT = Slot("value"), Slot("limit")
#: The level's school sections, and those of them that did not report an indicator's figure.
SCHOOLS, UNREPORTED = Slot("schools"), Slot("unreported")
LEVEL_SCHOOLS_ZH, LEVEL_SCHOOLS_EN = Slot("level_schools_zh"), Slot("level_schools_en")
UNREPORTED_METRIC = "junheng_district_indicator_schools_unreported"


def runbook_anchor(rule_id: str) -> str:
    """The README anchor of a rule's runbook: `rule-` and the id, lowercase, dots as dashes."""
    return "rule-" + rule_id.lower().replace(".", "-")


def runbook_url(rule_id: str) -> str:
    return f"{README}#{runbook_anchor(rule_id)}"


def alert_anchor(alert: str) -> str:
    """README anchor of an alert that is not one rule's: `alert-` and the name in kebab case."""
    return "alert-" + re.sub(r"(?<!^)(?=[A-Z])", "-", alert).lower()


def alert_runbook_url(alert: str) -> str:
    """The runbook of an alert that is not one rule's (the pipeline's, the data-missing ones)."""
    return f"{README}#{alert_anchor(alert)}"


def place(scope: Scope) -> tuple[Text, Text]:
    """How an alert names its place, in Chinese and English, as `rules.messages` does."""
    if scope is Scope.section:
        return ((DISTRICT_NAME, SCHOOL_NAME, "（", SCHOOL, "）", LEVEL_ZH_SLOT, "部"),
                (SCHOOL_NAME, " (", SCHOOL, "), ", DISTRICT_NAME, ", ", LEVEL_EN_SLOT, " section"))
    if scope is Scope.school:
        return ((DISTRICT_NAME, SCHOOL_NAME, "（", SCHOOL, "）"),
                (SCHOOL_NAME, " (", SCHOOL, "), ", DISTRICT_NAME))
    if scope is Scope.district_section:
        return ((DISTRICT_NAME, "（", DISTRICT, "）", LEVEL_ZH_SLOT),
                (DISTRICT_NAME, " (", DISTRICT, "), ", LEVEL_EN_SLOT))
    return ((DISTRICT_NAME, "（", DISTRICT, "）"), (DISTRICT_NAME, " (", DISTRICT, ")"))


def cv_indicator(rule: Rule) -> str | None:
    """The indicator whose inter-school CV `rule` judges (`R4` for `R4.cv`), or None."""
    if rule.scope is Scope.district_section and rule.quantity.endswith(".cv"):
        return rule.quantity[: -len(".cv")]
    return None


def unreported_note(rule: Rule) -> tuple[Text, Text]:
    """What a CV rule's description adds, in Chinese and English, while some school sections of
    the level have not reported the indicator's figure: the CV shown is over the others only, and
    a lead would otherwise read it as the district's (`JunhengCvUndetermined` tells it only after
    a week). Worded as the report's own note (`rules.messages.unreported_note`). Nothing for
    other rules, or for an indicator without a figure."""
    indicator = BY_ID.get(cv_indicator(rule) or "")
    if indicator is None:
        return (), ()
    return ((When(UNREPORTED, (SCHOOLS, " 所", LEVEL_SCHOOLS_ZH, "中 ", UNREPORTED, " 所未报送 ", indicator.figure,
                               "，此差异系数仅据其余学校计算。")),),
            (When(UNREPORTED, (" ", UNREPORTED, " of ", SCHOOLS, " ", LEVEL_SCHOOLS_EN, " did not report ",
                               indicator.figure, "; this CV is over the other schools only.")),))


def annotations(rule: Rule) -> dict[str, Text]:
    """A rule's alert annotations: summary, description, value, limit and names, in both languages."""
    zh_place, en_place = place(rule.scope)
    (breach_zh, breach_en), (due_zh, due_en) = (PACED, PACED_AFTER) if rule.prorate else (BREACH[rule.op], ("", ""))
    unit = f" {rule.unit}" if rule.unit and "%" not in number_format(rule)[0] else ""
    severity_zh = SEVERITY_ZH.get(rule.severity.value, rule.severity.value)
    zh_note, en_note = unreported_note(rule)
    return {
        "summary": (*zh_place, f"：{rule.title_zh} / ", *en_place, f": {rule.title_en}"),
        "description": (
            *zh_place, f"{rule.title_zh}为 ", VALUE, f"{unit}，{breach_zh} ", LIMIT,
            f"{unit}{due_zh}（规则 {rule.id}，{severity_zh}）。", *zh_note, "\n",
            *en_place, f": {rule.title_en} is ", VALUE, f"{unit}, {breach_en} ", LIMIT,
            f"{unit}{due_en} (rule {rule.id}, {rule.severity.value}).", *en_note),
        "value": (VALUE,),
        "limit": (LIMIT,),
        "place_zh": zh_place,
        "place_en": en_place,
        "runbook_url": (runbook_url(rule.id),),
    }


def number_format(rule: Rule) -> tuple[str, str]:
    """Format specs of the value and the limit, taken from the rule's own message (`.2f`, `.1%`,
    or empty), so an alert shows numbers as the assessment report does."""
    specs: dict[str, str] = {}
    for _, name, spec, _ in string.Formatter().parse(rule.message_en):
        if name in ("value", "limit") and name not in specs:
            specs[name] = spec or ""
    value = specs.get("value", "")
    return value, specs.get("limit", value)


# --- as a Prometheus template -------------------------------------------------------------

def _go_number(expr: str, spec: str) -> str:
    if spec.endswith("%"):
        return f"{{{{ humanizePercentage {expr} }}}}"
    if spec:
        return f'{{{{ printf "%{spec}" {expr} }}}}'
    return f"{{{{ {expr} }}}}"


def go_choice(label: str, names: dict[str, str], otherwise: str | None = None) -> str:
    """A template printing `names[value]` for the alert's `label`, and for any other value
    `otherwise` (the label's own value unless given)."""
    branches = "".join(f'{{{{ {"if" if i == 0 else "else if"} eq $labels.{label} {_go_string(k)} }}}}{v}'
                       for i, (k, v) in enumerate(names.items()))
    fallback = f"{{{{ $labels.{label} }}}}" if otherwise is None else otherwise
    return branches + f"{{{{ else }}}}{fallback}{{{{ end }}}}" if branches else fallback


def _go_string(text: str) -> str:
    """`text` as a Go string literal, for any text a label may hold: JSON's escapes, which Go
    reads the same."""
    return json.dumps(text, ensure_ascii=False)


def prometheus_template(text: Text, rule: Rule, hold: str) -> str:
    """The text as a Prometheus annotation template; names and the limit are queried as last
    seen within `hold`, so that they still show while the alert holds through a gap in which no
    worker exports its district (`prometheus_rules.alert_expr`)."""
    value_spec, limit_spec = number_format(rule)
    slots = {
        "district": "{{ $labels.district }}",
        "school": "{{ $labels.school }}",
        "district_name": "{{ $district_name }}",
        "school_name": "{{ $school_name }}",
        "level_zh": go_choice("section", LEVEL_ZH),
        "level_en": go_choice("section", LEVEL_EN),
        "value": _go_number("$value", value_spec),
        # A limit series not seen within `hold` shows as "?".
        "limit": f'{{{{ if $found }}}}{_go_number("$limit", limit_spec)}{{{{ else }}}}?{{{{ end }}}}',
        "schools": "{{ $schools }}",
        "unreported": "{{ $unreported }}",
        "level_schools_zh": go_choice("section", SCHOOLS_ZH),
        "level_schools_en": go_choice("section", SCHOOLS_EN),
    }
    used = used_slots(text)
    prelude = names_prelude(used, hold)
    if "limit" in used:
        prelude += ('{{ $limit := 0.0 }}{{ $found := false }}'
                    + last_seen("junheng_rule_limit{rule=%q,district=%q,school=%q,section=%q}",
                                 "$labels.rule $labels.district $labels.school $labels.section", hold)
                    + '{{ $limit = (. | first | value) }}{{ $found = true }}{{ end }}')
    if "schools" in used:
        prelude += schools_prelude(hold)
    if "unreported" in used:
        prelude += unreported_prelude(cv_indicator(rule) or "", hold)
    return prelude + go_text(text, slots)


def used_slots(text: Text) -> set[str]:
    """The names of the slots `text` uses, within `When` pieces too."""
    used: set[str] = set()
    for piece in text:
        if isinstance(piece, Slot):
            used.add(piece.name)
        elif isinstance(piece, When):
            used |= {piece.slot.name} | used_slots(piece.text)
    return used


def go_text(text: Text, slots: dict[str, str]) -> str:
    """`text` as a template, each slot written as `slots` says; a `When` piece within an `if` on
    its slot's template variable (`$unreported`), which is 0 where nothing was found."""
    out = []
    for piece in text:
        if isinstance(piece, Slot):
            out.append(slots[piece.name])
        elif isinstance(piece, When):
            out.append(f"{{{{ if ${piece.slot.name} }}}}{go_text(piece.text, slots)}{{{{ end }}}}")
        else:
            out.append(piece)
    return "".join(out)


def schools_prelude(hold: str) -> str:
    """Template variable `$schools`: the school sections of the alert's level as last seen
    within `hold`, "?" where none was."""
    return ('{{ $schools := "?" }}'
            + last_seen("junheng_district_schools{district=%q,section=%q}", "$labels.district $labels.section", hold)
            + "{{ $schools = (. | first | value) }}{{ end }}")


def unreported_prelude(indicator: str, hold: str) -> str:
    """Template variable `$unreported`: the school sections of the alert's level that have not
    reported `indicator`'s figure, 0 where all have.

    Queried by the annotation, not carried by the alert's expression as a label: a label is part
    of the alert's identity, so a count that changes (a school reports, another stops) would
    resolve the alert and fire a new one, which waits its `for:` again and pages the lead twice;
    an annotation is read again at each evaluation and changes nothing but the text.

    The count now, not as last seen within `hold` as names are: once the last school reports,
    its series ends and the note must go with it, while the CV alert may well go on firing.
    Only where no worker exports the district at all is it the last count within `hold`, as the
    alert's own value is then (`prometheus_rules.alert_expr`)."""
    selector = UNREPORTED_METRIC + "{district=%q,section=%q,indicator=%q}"
    args = f"$labels.district $labels.section {_go_string(indicator)}"
    query = f"max({selector} or (last_over_time({selector}[{hold}]) unless on (district) junheng_district_info))"
    return ('{{ $unreported := 0.0 }}'
            + f'{{{{ with printf "{query}" {args} {args} | query }}}}'
            + "{{ $unreported = (. | first | value) }}{{ end }}")


def names_prelude(used: set[str], hold: str) -> str:
    """Template variables `$district_name` and `$school_name`, for the slots `used`: the names
    as last seen within `hold`, or the ids where none was."""
    prelude = ""
    if "district_name" in used:
        prelude += ('{{ $district_name := $labels.district }}'
                    + last_seen("junheng_district_info{district=%q}", "$labels.district", hold)
                    + '{{ $district_name = (. | first).Labels.name }}{{ end }}')
    if "school_name" in used:
        prelude += ('{{ $school_name := $labels.school }}'
                    + last_seen("junheng_school_info{school=%q}", "$labels.school", hold)
                    + '{{ $school_name = (. | first).Labels.name }}{{ end }}')
    return prelude


def last_seen(selector: str, args: str, hold: str) -> str:
    """A template `with` over the series of `selector` (a printf format of `args`) as last seen
    within `hold`; its body runs only if one was."""
    return f'{{{{ with printf "last_over_time({selector}[{hold}])" {args} | query }}}}'


# --- as the text expected for known values ------------------------------------------------

def expected_text(text: Text, rule: Rule, fields: dict[str, str | float]) -> str:
    """The text the template yields when the slots take `fields` (value and limit as numbers;
    `unreported` and `schools` as numbers too, the note of unreported schools shown only when
    `unreported` is given and above zero)."""
    value_spec, limit_spec = number_format(rule)
    level = str(fields.get("section", ""))
    shown = {
        **{k: v for k, v in fields.items() if isinstance(v, str)},
        "level_zh": LEVEL_ZH.get(level, level),
        "level_en": LEVEL_EN.get(level, level),
        "level_schools_zh": SCHOOLS_ZH.get(level, level),
        "level_schools_en": SCHOOLS_EN.get(level, level),
        "value": go_number(float(fields["value"]), value_spec),
        "limit": go_number(float(fields["limit"]), limit_spec),
        **{k: go_number(float(fields[k]), "") for k in ("schools", "unreported") if k in fields},
    }
    return plain_text(text, shown, fields)


def plain_text(text: Text, shown: dict[str, str], fields: dict[str, str | float]) -> str:
    """`text` with each slot as `shown` says, and each `When` piece where its slot's field is above zero."""
    out = []
    for piece in text:
        if isinstance(piece, Slot):
            out.append(shown[piece.name])
        elif isinstance(piece, When):
            if float(fields.get(piece.slot.name, 0)) > 0:
                out.append(plain_text(piece.text, shown, fields))
        else:
            out.append(piece)
    return "".join(out)


def go_number(value: float, spec: str) -> str:
    """A number as `_go_number`'s template prints it (Go's fmt), for values of ordinary size."""
    if spec.endswith("%"):
        return "%.4g%%" % (value * 100)  # Prometheus's humanizePercentage
    if spec:
        return format(value, spec)
    if not 1e-4 <= abs(value) < 1e6 and value != 0:
        raise ValueError(f"{value} would print in Go's exponent form; pick a test value of ordinary size")
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text
