"""A district's running sums, kept exactly so that any order of updates gives the batch result.

The enrolment-weighted CV needs three sums per indicator and level: ΣP, ΣP·X and ΣP·X². Kept as
floats, subtracting a school's old contribution would leave rounding residue behind, and a stream
of replacements would drift from a fresh computation. Each value is therefore taken exactly as an
integer count of 2⁻ᵏ (every finite double X is n·2⁻ᵏ, with k at most 1074) and the terms are
products of integers, so adding and removing are exact and the CV is rounded once, at the end.

An indicator's sums are counted in units of 2⁻ˢ, s the largest k of the schools in them (and
rescaled when that changes), so that they depend only on which schools are in, never on the
order. Counting every sum in units of 2⁻¹⁰⁷⁴, as this did before, made each term over 1,000
bits wide whatever the value: each changed indicator of a school then cost a replacement of
about 10 µs, and a district's figure 6 µs, several times what these small integers cost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


Key = tuple[str, ...]
LEVEL_ORDER = {"primary": 0, "junior": 1}
#: key → terms; for ("ind", indicator, level) the terms are (students, value).
Contribution = Mapping[Key, tuple]
#: Where an indicator's sums keep their unit: [schools, ΣP, ΣP·n, ΣP·n², s] with X = n·2⁻ᵏ
#: counted in units of 2⁻ˢ (ΣP·X²: of 2⁻²ˢ).
SCALE = 4


def dyadic(x: float) -> tuple[int, int]:
    """`x` as (n, k) with x = n·2⁻ᵏ exactly, k as small as it can be."""
    numerator, denominator = x.as_integer_ratio()
    return numerator, denominator.bit_length() - 1


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
    # and each figure costs products and a division of integers some hundreds of bits wide.
    _figures: dict[Key, "IndicatorBalance"] = field(default_factory=dict, repr=False, compare=False)
    #: Counts the changes to the sums: a district whose count did not move since its last
    #: evaluation has nothing new to evaluate (about a third of single events, a class or a
    #: training posting, leave a school's contribution as it was).
    changes: int = field(default=0, repr=False, compare=False)
    #: For each indicator's sums, how many of its schools' values are of each k (see `dyadic`):
    #: the largest is the sums' unit.
    _units: dict[Key, dict[int, int]] = field(default_factory=dict, repr=False, compare=False)

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
        if key[0] == "ind":
            self._add_moments(key, *terms)
            return
        current = self.sums.setdefault(key, [0] * len(terms))
        for i, term in enumerate(terms):
            current[i] += term

    def _remove(self, key: Key, terms: tuple) -> None:
        self.changes += 1
        self._figures.pop(key, None)
        if key[0] == "ind":
            self._remove_moments(key, *terms)
            return
        current = self.sums[key]
        for i, term in enumerate(terms):
            current[i] -= term
        if not any(current):
            del self.sums[key]

    def _add_moments(self, key: Key, students: int, value: float) -> None:
        n, k = dyadic(value)
        current = self.sums.get(key)
        if current is None:
            current = self.sums[key] = [0, 0, 0, 0, k]
            self._units[key] = {}
        elif k > current[SCALE]:
            _rescale(current, k)
        shift = current[SCALE] - k
        moment = students * n
        current[0] += 1
        current[1] += students
        current[2] += moment << shift
        current[3] += (moment * n) << (2 * shift)
        units = self._units[key]
        units[k] = units.get(k, 0) + 1

    def _remove_moments(self, key: Key, students: int, value: float) -> None:
        n, k = dyadic(value)
        current = self.sums[key]
        shift = current[SCALE] - k
        moment = students * n
        current[0] -= 1
        current[1] -= students
        current[2] -= moment << shift
        current[3] -= (moment * n) << (2 * shift)
        units = self._units[key]
        if units[k] == 1:
            del units[k]
        else:
            units[k] -= 1
        if not current[0]:
            del self.sums[key], self._units[key]
        elif k == current[SCALE] and k not in units:
            # The finest value left: every sum is a whole multiple of its unit now, so the shift
            # is exact, and the sums are those a fresh computation over these schools gives.
            _rescale(current, max(units))

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
        schools, p, px, pxx, scale = terms
        if p <= 0:
            return IndicatorBalance(schools, p, None, None)
        mean = px / (p << scale)
        if px <= 0:
            return IndicatorBalance(schools, p, mean, None)
        # CV² = (ΣP·ΣPX² − (ΣPX)²) / (ΣPX)², in exact integers.
        spread = pxx * p - px * px
        return IndicatorBalance(schools, p, mean, math.sqrt(spread / (px * px)))

    def levels(self) -> list[str]:
        """The levels with at least one section, in a stable order."""
        return [level for level in LEVEL_ORDER if ("level", level) in self.sums]


def _rescale(sums: list[int], scale: int) -> None:
    """Count an indicator's sums in units of 2⁻ˢᶜᵃˡᵉ instead (exact: see `_remove_moments`)."""
    change = scale - sums[SCALE]
    if change > 0:
        sums[2] <<= change
        sums[3] <<= 2 * change
    else:
        sums[2] >>= -change
        sums[3] >>= -2 * change
    sums[SCALE] = scale
