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
    # The tolerance decides only when the plain comparison does not: it is computed for the
    # few values that fall short of the limit (or pass it, for strict operators), not for all.
    if op == ">=":
        return value >= limit or _close(value, limit)
    if op == "<=":
        return value <= limit or _close(value, limit)
    if op == ">":
        return value > limit and not _close(value, limit)
    if op == "<":
        return value < limit and not _close(value, limit)
    if op == "==":
        return _close(value, limit)
    raise ValueError(f"unknown comparison {op!r}")


def _close(value: float, limit: float) -> bool:
    return math.isclose(value, limit, rel_tol=REL_TOL, abs_tol=1e-12)
