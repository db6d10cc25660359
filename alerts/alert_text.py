"""The bilingual text of a rule's alert, written once and rendered two ways.

The same text becomes a Prometheus annotation template (names, value and limit looked up at
alert time) and, for the promtool unit tests, the exact string that template must produce for
known series. Text is a sequence of literal pieces and named slots.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass

from rules.messages import LEVEL_EN, LEVEL_ZH
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


@dataclass(frozen=True)
class Slot:
    """A piece of text known only when the alert fires."""

    name: str


Text = tuple[str | Slot, ...]

DISTRICT_NAME, SCHOOL_NAME = Slot("district_name"), Slot("school_name")
DISTRICT, SCHOOL = Slot("district"), Slot("school")
LEVEL_ZH_SLOT, LEVEL_EN_SLOT = Slot("level_zh"), Slot("level_en")
VALUE, LIMIT = Slot("value"), Slot("limit")


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


def annotations(rule: Rule) -> dict[str, Text]:
    """A rule's alert annotations: summary, description, value, limit and names, in both languages."""
    zh_place, en_place = place(rule.scope)
    breach_zh, breach_en = BREACH[rule.op]
    unit = f" {rule.unit}" if rule.unit and "%" not in number_format(rule)[0] else ""
    severity_zh = SEVERITY_ZH.get(rule.severity.value, rule.severity.value)
    return {
        "summary": (*zh_place, f"：{rule.title_zh} / ", *en_place, f": {rule.title_en}"),
        "description": (
            *zh_place, f"{rule.title_zh}为 ", VALUE, f"{unit}，{breach_zh} ", LIMIT,
            f"{unit}（规则 {rule.id}，{severity_zh}）。\n",
            *en_place, f": {rule.title_en} is ", VALUE, f"{unit}, {breach_en} ", LIMIT,
            f"{unit} (rule {rule.id}, {rule.severity.value})."),
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
    }
    used = {piece.name for piece in text if isinstance(piece, Slot)}
    prelude = names_prelude(used, hold)
    if "limit" in used:
        prelude += ('{{ $limit := 0.0 }}{{ $found := false }}'
                    + last_seen("junheng_rule_limit{rule=%q,district=%q,school=%q,section=%q}",
                                 "$labels.rule $labels.district $labels.school $labels.section", hold)
                    + '{{ $limit = (. | first | value) }}{{ $found = true }}{{ end }}')
    return prelude + "".join(slots[p.name] if isinstance(p, Slot) else p for p in text)


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
    """The text the template yields when the slots take `fields` (value and limit as numbers)."""
    value_spec, limit_spec = number_format(rule)
    shown = {
        **{k: v for k, v in fields.items() if isinstance(v, str)},
        "level_zh": LEVEL_ZH.get(str(fields.get("section", "")), str(fields.get("section", ""))),
        "level_en": LEVEL_EN.get(str(fields.get("section", "")), str(fields.get("section", ""))),
        "value": go_number(float(fields["value"]), value_spec),
        "limit": go_number(float(fields["limit"]), limit_spec),
    }
    return "".join(shown[p.name] if isinstance(p, Slot) else p for p in text)


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
