"""`holds`: comparisons that treat values within a relative 1e-9 of the limit as equal to it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.compare import REL_TOL, holds

OPS = (">=", "<=", ">", "<", "==")


def reference(value: float, op: str, limit: float) -> bool:
    """The definition: equality within the tolerance first, then the strict comparison."""
    equal = math.isclose(value, limit, rel_tol=REL_TOL, abs_tol=1e-12)
    return {">=": equal or value > limit, "<=": equal or value < limit, ">": not equal and value > limit,
            "<": not equal and value < limit, "==": equal}[op]


@pytest.mark.parametrize(("value", "op", "limit", "expected"), [
    (4.2000000000000002, ">=", 4.2, True),   # 42 teachers per 1,000 students reach 4.2
    (4.2 * (1 - 2e-9), ">=", 4.2, False),    # just under the tolerance
    (4.2 * (1 - 5e-10), ">=", 4.2, True),    # within it
    (4.2 * (1 - 5e-10), "<", 4.2, False),    # within it, so not below
    (4.2 * (1 + 5e-10), ">", 4.2, False),    # within it, so not above
    (4.2 * (1 + 2e-9), ">", 4.2, True),
    (0.0, "==", 1e-13, True),                 # the absolute tolerance near zero
    (45.0, "<=", 45.0, True),
    (46.0, "<=", 45.0, False),
])
def test_hand_computed_cases(value, op, limit, expected):
    assert holds(value, op, limit) is expected


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@given(finite, st.sampled_from(OPS), finite, st.integers(-4, 4))
def test_holds_is_the_definition(limit, op, other, ulps):
    # Values near the limit are where the tolerance matters: a few ulps and a few 1e-9s around it.
    for value in (other, limit, limit * (1 + ulps * 5e-10), math.nextafter(limit, math.inf) if ulps > 0 else limit):
        assert holds(value, op, limit) is reference(value, op, limit)


def test_an_unknown_operator_is_refused():
    with pytest.raises(ValueError, match="unknown comparison"):
        holds(1.0, "=>", 1.0)
