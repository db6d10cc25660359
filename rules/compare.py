"""Comparisons between an observed value and a limit.

Values are ratios of counts computed in binary floating point, so 42 teachers for 1,000 students
is 4.2000000000000002, not 4.2. Comparisons therefore treat values within a relative 1e-9 of the
limit as equal to it: "reaching" a standard is inclusive, as the assessment method says.
"""

from __future__ import annotations

import math

REL_TOL = 1e-9


def holds(value: float, op: str, limit: float) -> bool:
    """Whether `value op limit` holds, with equality at 9 significant digits."""
    equal = math.isclose(value, limit, rel_tol=REL_TOL, abs_tol=1e-12)
    if op == ">=":
        return equal or value > limit
    if op == "<=":
        return equal or value < limit
    if op == ">":
        return not equal and value > limit
    if op == "<":
        return not equal and value < limit
    if op == "==":
        return equal
    raise ValueError(f"unknown comparison {op!r}")
