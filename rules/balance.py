"""A district's running sums, kept exactly so that any order of updates gives the batch result.

The enrolment-weighted CV needs three sums per indicator and level: ΣP, ΣP·X and ΣP·X². Kept as
floats, subtracting a school's old contribution would leave rounding residue behind, and a stream
of replacements would drift from a fresh computation. Each value is therefore converted exactly to
an integer count of 2⁻¹⁰⁷⁴ (every finite double is a whole multiple of that) and the terms are
products of integers, so adding and removing are exact, the sums depend only on which schools
are in, never on the order, and the CV is rounded once, at the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


#: Every finite double is an integer multiple of 2**-SCALE_BITS.
SCALE_BITS = 1074

Key = tuple[str, ...]
LEVEL_ORDER = {"primary": 0, "junior": 1}
#: key → terms; for ("ind", indicator, level) the terms are (students, value).
Contribution = Mapping[Key, tuple]


def exact(x: float) -> int:
    """`x` as an integer multiple of 2**-SCALE_BITS, without rounding."""
    numerator, denominator = x.as_integer_ratio()
    return numerator << (SCALE_BITS - denominator.bit_length() + 1)


def _expand(key: Key, terms: tuple) -> tuple[int, ...]:
    """Indicator contributions are kept as (P, X) and expanded into exact terms when summed:
    the terms are ~400 bytes of integers per indicator, and a district keeps every school's."""
    return moment_terms(*terms) if key[0] == "ind" else terms


def moment_terms(students: int, value: float) -> tuple[int, int, int, int]:
    """One school section's part of an indicator's sums: (1, P, P·X, P·X²), with P·X in units of
    2**-SCALE_BITS and P·X² in units of 2**-(2·SCALE_BITS), all without rounding."""
    x = exact(value)
    return (1, students, students * x, students * x * x)


@dataclass(slots=True)
class IndicatorBalance:
    """The district figures of one indicator at one level."""

    schools: int
    students: int
    mean: float | None
    cv: float | None


@dataclass
class DistrictBalance:
    """Additive per-district sums. A school's contribution is added, removed or replaced whole."""

    sums: dict[Key, list[int]] = field(default_factory=dict)
    # An indicator's figures until its sums change: a district is re-evaluated after every
    # change to any of its schools, which usually moves one or two of its fourteen indicators,
    # and each figure costs products of integers thousands of bits wide.
    _figures: dict[Key, "IndicatorBalance"] = field(default_factory=dict, repr=False, compare=False)
    #: Counts the changes to the sums: a district whose count did not move since its last
    #: evaluation has nothing new to evaluate (about a third of single events, a class or a
    #: training posting, leave a school's contribution as it was).
    changes: int = field(default=0, repr=False, compare=False)

    def add(self, contribution: Contribution) -> None:
        """Add a school's contribution."""
        for key, terms in contribution.items():
            self._add(key, terms)

    def remove(self, contribution: Contribution) -> None:
        """Remove a contribution added before; keys that fall back to zero disappear."""
        for key, terms in contribution.items():
            self._remove(key, terms)

    def replace(self, old: Contribution | None, new: Contribution | None) -> None:
        """Swap a school's old contribution for its new one (either may be absent). Only the
        keys whose terms changed are touched: an event usually moves one or two indicators, and
        the exact terms are thousands of bits wide."""
        old, new = old or {}, new or {}
        for key, terms in old.items():
            if new.get(key) != terms:
                self._remove(key, terms)
        for key, terms in new.items():
            if old.get(key) != terms:
                self._add(key, terms)

    def _add(self, key: Key, terms: tuple) -> None:
        self.changes += 1
        self._figures.pop(key, None)
        terms = _expand(key, terms)
        current = self.sums.setdefault(key, [0] * len(terms))
        for i, term in enumerate(terms):
            current[i] += term

    def _remove(self, key: Key, terms: tuple) -> None:
        self.changes += 1
        self._figures.pop(key, None)
        terms = _expand(key, terms)
        current = self.sums[key]
        for i, term in enumerate(terms):
            current[i] -= term
        if not any(current):
            del self.sums[key]

    def total(self, *key: str) -> tuple[int, ...] | None:
        """The summed terms under `key`, or None when no school contributes to it."""
        terms = self.sums.get(key)
        return tuple(terms) if terms is not None else None

    def indicator(self, indicator: str, level: str) -> IndicatorBalance:
        """Student-weighted mean and coefficient of variation of an indicator at a level (the
        same object until the indicator's sums change: callers only read it)."""
        key = ("ind", indicator, level)
        figures = self._figures.get(key)
        if figures is None:
            figures = self._figures[key] = self._indicator(self.sums.get(key))
        return figures

    @staticmethod
    def _indicator(terms: list[int] | None) -> IndicatorBalance:
        if terms is None:
            return IndicatorBalance(0, 0, None, None)
        schools, p, px, pxx = terms
        if p <= 0:
            return IndicatorBalance(schools, p, None, None)
        mean = px / (p << SCALE_BITS)
        if px <= 0:
            return IndicatorBalance(schools, p, mean, None)
        # CV² = (ΣP·ΣPX² − (ΣPX)²) / (ΣPX)², in exact integers.
        spread = pxx * p - px * px
        return IndicatorBalance(schools, p, mean, math.sqrt(spread / (px * px)))

    def levels(self) -> list[str]:
        """The levels with at least one section, in a stable order."""
        return [level for level in LEVEL_ORDER if ("level", level) in self.sums]

