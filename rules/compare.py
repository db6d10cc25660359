"""Comparisons between an observed value and a limit.

Values are ratios of counts computed in binary floating point, so 42 teachers for 1,000 students
is 4.2000000000000002, not 4.2. Comparisons therefore treat values within a relative 1e-9 of the
limit as equal to it: "reaching" a standard is inclusive, as the assessment method says.
"""

from __future__ import annotations

import math
from collections.abc import Callable

REL_TOL = 1e-9


def holds(value: float, op: str, limit: float) -> bool:
    """Whether `value op limit` holds, with equality at 9 significant digits."""
    return comparison(op)(value, limit)


def comparison(op: str) -> Callable[[float, float], bool]:
    """`holds` for one operator, as a function of the value and the limit: a rule checked at
    every school evaluation looks its operator up once."""
    try:
        return _COMPARISONS[op]
    except KeyError:
        raise ValueError(f"unknown comparison {op!r}") from None


# The tolerance decides only when the plain comparison does not: it is computed for the few
# values that fall short of the limit (or pass it, for strict operators), not for all.
def _at_least(value: float, limit: float) -> bool:
    return value >= limit or _close(value, limit)


def _at_most(value: float, limit: float) -> bool:
    return value <= limit or _close(value, limit)


def _above(value: float, limit: float) -> bool:
    return value > limit and not _close(value, limit)


def _below(value: float, limit: float) -> bool:
    return value < limit and not _close(value, limit)


def _close(value: float, limit: float) -> bool:
    return math.isclose(value, limit, rel_tol=REL_TOL, abs_tol=1e-12)


_COMPARISONS = {">=": _at_least, "<=": _at_most, ">": _above, "<": _below, "==": _close}
