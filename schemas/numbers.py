"""Numbers on the wire refuse booleans.

pydantic's lax mode reads `true` as 1 and `false` as 0 in an int or float field, so a snapshot
with `"students": true` was assessed as a school of one student. The JSON Schemas we publish say
`integer` and `number`, which exclude booleans. Strict mode would refuse them, but also what lax
mode takes today and producers may send: 5.0 for a count, "1890" for a number.

`NotBoolean()`, the last annotation of a number (`Annotated[int, Field(ge=0), NotBoolean()]`),
puts a guard in front of the number's own validator: the guard passes every value unchanged but a
boolean, and the number's validator then reads it as before, with its own errors. The exported
JSON Schema stays the number's. The guard is pydantic-core schemas, not a Python validator:
decoding is a worker's hot path, and a Python function per value cost about 400 ns where the
guard costs about 25 to 60 ns.
"""

from __future__ import annotations

from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema as cs

BOOLEAN_ERROR = "number_not_boolean"
# YAML (snapshots, rule packs) reads yes, no, on and off as booleans too: a person who wrote one
# would not know it for the true or false the message names.
BOOLEAN_MESSAGE = ("Input should be a number, not true or false (nor yes, no, on or off in YAML)"
                   " / 应为数值，不能是布尔值 true 或 false（YAML 中的 yes、no、on、off 也是布尔值）")
#: In the metadata of every guarded number's schema, for tests to find an unguarded one.
GUARDED = "junheng_refuses_booleans"


class _AnythingButABooleanType(type):
    def __instancecheck__(cls, value: Any) -> bool:
        return value.__class__ is not bool  # bool has no subclasses


class _AnythingButABoolean(metaclass=_AnythingButABooleanType):
    """isinstance(x, _AnythingButABoolean) holds for every x but True and False."""


def _guard(number: type) -> cs.CoreSchema:
    """A schema that returns its input unchanged, or refuses a boolean with BOOLEAN_MESSAGE.

    pydantic-core has no "anything but" schema, so the guard is a union of what may pass, tried
    in order, whose one error is the boolean's. What passes is the input as it was given, or for
    a float field an int made a float: a string stays a string for the number's validator to
    parse, or to refuse in its own words. The field's own kind is tried first: a choice that
    fails costs about 50 ns a value, and an int read as a float would lose the digits of a big one.
    """
    whole, fraction = cs.int_schema(strict=True), cs.float_schema(strict=True)
    own, other = (whole, fraction) if number is int else (fraction, whole)
    refusing = dict(mode="left_to_right", custom_error_type=BOOLEAN_ERROR, custom_error_message=BOOLEAN_MESSAGE)
    # A JSON value is of one of seven kinds: the six listed, or a boolean.
    from_json = cs.union_schema([own, other, cs.str_schema(strict=True), cs.none_schema(), cs.list_schema(),
                                 cs.dict_schema()], **refusing)
    # A Python value (json.loads, YAML, the fold's records) may be of any type: ints and floats
    # pass in pydantic-core, anything else through one isinstance call, off the common path.
    from_python = cs.union_schema([own, other, cs.is_instance_schema(_AnythingButABoolean)], **refusing)
    return cs.json_or_python_schema(json_schema=from_json, python_schema=from_python)


class NotBoolean:
    """Annotation refusing a boolean where a number is expected; put it after the number's
    constraints (Field(ge=..., le=...)), which then apply to what the guard passed."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> cs.CoreSchema:
        return cs.chain_schema([_guard(source), handler(source)], metadata={GUARDED: True})

    def __get_pydantic_json_schema__(self, schema: cs.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The contract is the number's: `integer` and `number` exclude booleans already.
        return handler(schema["steps"][-1])
