"""Booleans on the wire are true or false, nothing else.

pydantic's lax mode reads 1, 0, "yes", "no", "on", "off", "true", "1" and more as booleans, so a
school system sending `"certified": "no"` or `"boarding": 1` was given a meaning it had not stated
in the contract's terms: the JSON Schemas we publish say `boolean`, which is true or false.

`Boolean` (`public: Boolean = True`) is pydantic-core's strict bool: a JSON true or false, or a
Python True or False (json.loads, YAML, the fold's records), and nothing else. A snapshot in YAML
is read by YAML first: its own booleans, true and false and, in YAML 1.1, yes, no, on and off
unquoted, are booleans when pydantic sees them and are taken; quoted, they are text and refused.

A refusal has its own message, in English and Chinese (pydantic's "Input should be a valid
boolean" does not say that a number or a word was the problem). The check is pydantic-core's
alone, a strict bool wrapped to carry that message, with no Python per value: decoding is a
worker's hot path.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema as cs

NOT_TRUE_OR_FALSE_ERROR = "boolean_not_true_or_false"
NOT_TRUE_OR_FALSE_MESSAGE = ('Input should be true or false, not a number or text such as 1, 0, "yes" or "true"'
                             ' / 应为布尔值 true 或 false，不能是数字或文本（如 1、0、"yes"、"true"）')
#: In the metadata of every strict boolean's schema, for tests to find a lax one.
STRICT_BOOLEAN = "junheng_true_or_false_only"


class _TrueOrFalse:
    """Annotation making a bool field strict, with NOT_TRUE_OR_FALSE_MESSAGE as its one error."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> cs.CoreSchema:
        # The exported JSON Schema is the inner bool's, `boolean`: pydantic passes through the
        # custom-error wrapper.
        return cs.custom_error_schema(cs.bool_schema(strict=True), custom_error_type=NOT_TRUE_OR_FALSE_ERROR,
                                      custom_error_message=NOT_TRUE_OR_FALSE_MESSAGE,
                                      metadata={STRICT_BOOLEAN: True})


#: A boolean of a wire contract: true or false only.
Boolean = Annotated[bool, _TrueOrFalse()]
