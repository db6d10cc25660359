"""The district accumulator: any sequence of add/remove/replace gives the batch result, exactly."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.balance import DistrictBalance, dyadic

sections = st.tuples(st.integers(min_value=1, max_value=5000),
                     st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False))


def contribution(students: int, value: float) -> dict:
    return {("ind", "R1", "primary"): (students, value)}


def batch(schools: dict[str, tuple[int, float]]) -> DistrictBalance:
    balance = DistrictBalance()
    for students, value in schools.values():
        balance.add(contribution(students, value))
    return balance


def two_pass_cv(schools) -> float:
    """The textbook two-pass formula in exact rationals (floats underflow for tiny values)."""
    p = sum(n for n, _ in schools)
    mean = sum(n * Fraction(x) for n, x in schools) / p
    variance = sum(n * (Fraction(x) - mean) ** 2 for n, x in schools) / p
    return math.sqrt(variance / (mean * mean))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.one_of(st.none(), sections)), min_size=1, max_size=60))
def test_any_sequence_of_replacements_equals_the_batch_computation(updates):
    stream, current = DistrictBalance(), {}
    for school_id, new in updates:
        old = current.pop(school_id, None)
        stream.replace(contribution(*old) if old else None, contribution(*new) if new else None)
        if new:
            current[school_id] = new
        # Read at every step: a figure kept from before a replacement must not be served after it.
        assert stream.indicator("R1", "primary") == batch(current).indicator("R1", "primary")
    assert stream.sums == batch(current).sums


@settings(max_examples=300, deadline=None)
@given(st.lists(sections, min_size=1, max_size=40))
def test_cv_agrees_with_the_two_pass_formula(schools):
    figures = batch(dict(enumerate(schools))).indicator("R1", "primary")
    if figures.mean == 0:
        assert figures.cv is None
        return
    assert figures.cv == pytest.approx(two_pass_cv(schools), rel=1e-9, abs=1e-12)
    assert figures.mean == pytest.approx(sum(n * x for n, x in schools) / sum(n for n, _ in schools), rel=1e-12)


def test_removing_every_school_leaves_nothing_behind():
    balance = DistrictBalance()
    parts = [contribution(n, x) for n, x in [(100, 0.1), (333, 2.7), (7, 1e-3)]]
    for part in parts:
        balance.add(part)
    for part in reversed(parts):
        balance.remove(part)
    assert balance.sums == {}
    assert balance.indicator("R1", "primary").schools == 0


def test_dyadic_is_exact():
    for x, k in ((0.1, 55), (1e-300, 1049), (5e-324, 1074), (1.7976931348623157e308, 0), (4.2, 50), (2.5, 1), (0.0, 0)):
        n, unit = dyadic(x)
        assert (unit, Fraction(n, 1 << unit)) == (k, Fraction(x))


# Small domains, so that a replacement often keeps some keys' terms and changes others: replace()
# touches only the keys whose terms changed.
several = st.dictionaries(st.sampled_from(["R1", "R2", "R3"]),
                          st.tuples(st.sampled_from([1, 40, 900]), st.sampled_from([0.0, 0.5, 3.25, 17.0])),
                          max_size=3)


def several_contribution(parts: dict) -> dict:
    return {("ind", ind, "primary"): terms for ind, terms in parts.items()}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), several), min_size=1, max_size=40))
def test_replacements_that_keep_some_keys_equal_the_batch_computation(updates):
    stream, current = DistrictBalance(), {}
    for school_id, new in updates:
        old = current.pop(school_id, None)
        stream.replace(several_contribution(old) if old else None, several_contribution(new) if new else None)
        if new:
            current[school_id] = new
        read = {ind: stream.indicator(ind, "primary") for ind in ("R1", "R2", "R3")}
    fresh = DistrictBalance()
    for parts in current.values():
        fresh.add(several_contribution(parts))
    assert stream.sums == fresh.sums
    assert read == {ind: fresh.indicator(ind, "primary") for ind in ("R1", "R2", "R3")}


def test_a_replacement_touches_only_the_changed_keys():
    balance = DistrictBalance()
    old = {("ind", "R1", "primary"): (40, 2.5), ("ind", "R2", "primary"): (40, 1.0)}
    balance.add(old)
    kept = balance.sums[("ind", "R1", "primary")]
    balance.replace(old, {("ind", "R1", "primary"): (40, 2.5), ("ind", "R2", "primary"): (40, 3.0)})
    # 2.5 is 5·2⁻¹ and 3.0 is 3·2⁰: each sum is counted in units of its own value's.
    assert balance.sums[("ind", "R1", "primary")] is kept and kept == [1, 40, 40 * 5, 40 * 5 * 5, 1]
    assert balance.sums[("ind", "R2", "primary")] == [1, 40, 40 * 3, 40 * 3 * 3, 0]


def test_removing_the_finest_value_counts_the_sums_in_the_coarser_unit_a_fresh_computation_uses():
    balance = DistrictBalance()
    coarse, fine = contribution(40, 2.5), contribution(7, 0.1)  # 5·2⁻¹ and 3602879701896397·2⁻⁵⁵
    balance.add(coarse)
    balance.add(fine)
    assert balance.sums[("ind", "R1", "primary")][4] == 55
    balance.remove(fine)
    assert balance.sums == batch({"a": (40, 2.5)}).sums == {("ind", "R1", "primary"): [1, 40, 200, 1000, 1]}
