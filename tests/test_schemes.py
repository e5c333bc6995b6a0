"""Scheme generation: enumeration order, uniform sampling, duplicates, stratified spaces (brute force)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from crt_widgets.core.spaces.schemes import (SchemeSet, StratumRule, combinations_array, enumerate_schemes,
                                      enumerate_stratified, sample_schemes, sample_stratified)


@pytest.mark.parametrize("n,k", [(5, 1), (6, 3), (9, 4), (10, 7), (3, 0)])
def test_combinations_match_itertools_in_order(n, k):
    assert combinations_array(n, k).tolist() == [list(c) for c in itertools.combinations(range(n), k)]


def test_enumeration_is_combn_order_and_complete():
    s = enumerate_schemes(7, 3)
    m = s.matrix()
    assert len(s) == 35
    assert (m.sum(axis=1) == 3).all()
    assert len({tuple(r) for r in m.tolist()}) == 35
    assert m[0].tolist() == [1, 1, 1, 0, 0, 0, 0] and m[-1].tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_packed_bits_round_trip_beyond_one_byte():
    rng = np.random.default_rng(3)
    m = (rng.random((50, 21)) < 0.5).astype(np.uint8)
    s = SchemeSet.from_matrix(m)
    assert s.packed.shape == (50, 3)
    np.testing.assert_array_equal(s.matrix(), m)
    np.testing.assert_array_equal(s.treated_counts(), m.sum(axis=1))
    x = rng.normal(size=(21, 4))
    np.testing.assert_allclose(s.treated_sums(x), m @ x, rtol=1e-12, atol=1e-12)


def test_from_matrix_rejects_non_binary():
    with pytest.raises(ValueError, match="0 or 1"):
        SchemeSet.from_matrix(np.array([[0, 2], [1, 0]]))


def test_sampling_is_uniform_and_counts_duplicates():
    rng = np.random.default_rng(11)
    n, k, size = 6, 2, 60_000
    s, dups = sample_schemes(n, n_treat=k, size=size, rng=rng)
    assert len(s) == math.comb(n, k) == 15
    assert dups == size - 15
    assert (s.treated_counts() == k).all()
    # frequencies of the 15 subsets over the draws: chi-square against uniform
    keys = np.random.default_rng(11)
    drawn = _raw_sample(n, k, size, keys)
    _, counts = np.unique(drawn, return_counts=True)
    assert len(counts) == 15
    assert stats.chisquare(counts).pvalue > 1e-4


def _raw_sample(n, k, size, rng):
    """The draws before de-duplication, as integer codes (same generator path as sample_schemes)."""
    needed = np.full(size, float(k))
    code = np.zeros(size, dtype=np.int64)
    for j in range(n):
        chosen = rng.random(size) * (n - j) < needed
        needed -= chosen
        code |= chosen.astype(np.int64) << j
    return code


def test_sampling_keeps_first_occurrence_order_and_is_reproducible():
    a, _ = sample_schemes(30, 15, 1000, np.random.default_rng(5))
    b, _ = sample_schemes(30, 15, 1000, np.random.default_rng(5))
    np.testing.assert_array_equal(a.packed, b.packed)
    assert len(a) == 1000  # no duplicates among 1,000 of 155 million


def _brute_force_stratified(codes, k):
    n = len(codes)
    sizes = np.bincount(codes)
    share = sizes * k / n
    out = []
    for combo in itertools.combinations(range(n), k):
        t = np.bincount(codes[list(combo)], minlength=len(sizes))
        if np.all((t >= np.floor(share)) & (t <= np.ceil(share))):
            out.append(tuple(int(i in combo) for i in range(n)))
    return set(out)


@pytest.mark.parametrize("codes,k", [
    ([0, 0, 0, 0, 1, 1, 1, 1], 4),            # even strata: exactly half of each
    ([0, 0, 0, 1, 1, 1, 2, 2, 2, 2], 5),      # odd strata: floor or ceil, total 5
    ([0, 1, 1, 2, 2, 2, 0, 1, 2], 3),         # unequal allocation
])
def test_stratified_enumeration_equals_brute_force(codes, k):
    codes = np.array(codes)
    rule = StratumRule.build(codes, tuple(range(codes.max() + 1)), k)
    s = enumerate_stratified(rule)
    expected = _brute_force_stratified(codes, k)
    assert {tuple(r) for r in s.matrix().tolist()} == expected
    assert len(s) == len(expected) == rule.space_size()


def test_stratified_sampling_is_uniform_over_the_balanced_space():
    codes = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    rule = StratumRule.build(codes, (0, 1, 2), 5)
    allowed = sorted(_brute_force_stratified(codes, 5))
    rng = np.random.default_rng(2)
    size = 40_000
    s, dups = sample_stratified(rule, size, rng)
    assert len(s) == len(allowed) and dups == size - len(allowed)
    # re-draw without de-duplication to count frequencies
    rng = np.random.default_rng(2)
    from crt_widgets.core.spaces import schemes as mod

    drawn = []
    orig = mod.unique_schemes
    try:
        mod.unique_schemes = lambda x: (x, 0)
        raw, _ = sample_stratified(rule, size, rng)
    finally:
        mod.unique_schemes = orig
    index = {a: i for i, a in enumerate(allowed)}
    drawn = np.array([index[tuple(r)] for r in raw.matrix().tolist()])
    counts = np.bincount(drawn, minlength=len(allowed))
    assert stats.chisquare(counts).pvalue > 1e-4
