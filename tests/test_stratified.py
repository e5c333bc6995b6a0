"""Balanced stratified allocation to K arms: exact sizes, the no-repeat rule, validity, dead ends, errors.

Monte Carlo tolerances: with N draws a probability p has standard error sqrt(p (1 - p) / N); checks
use 5 SEs (per-cell false alarm ~6e-7, a few hundred cells) and chi-square checks at level 0.001
after Bonferroni adjustment.
"""
from __future__ import annotations

import itertools
import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest
from scipy import stats

import crt_widgets as crt
from crt_widgets.core.randomization.arms import Arms
from crt_widgets.core.randomization.balanced_sampler import _extras_sequential, _generate, _initial_capacity, _Layout, count_allocations, stratified_arms
from crt_widgets.core.randomization.stratified import StratifiedDesign
from crt_widgets.core.randomization.verification import verify_allocations

SEED_SIZES = [12, 1, 11, 5, 4, 7]  # the seed's worked example (40 EDs, 8 arms)
EDLEAD_SIZES = [12, 11, 9, 8, 7, 6, 6, 5, 4, 4, 3, 2, 2, 1]  # ED-LEAD (80 EDs, 8 arms)


def strata_of(sizes):
    return np.repeat(np.arange(1, len(sizes) + 1), sizes)


def arm_counts(draws, n_arms):
    return np.stack([(draws == a).sum(axis=1) for a in range(n_arms)], axis=1)


def check_rule(draws, strata, n_arms):
    """Every draw: arm sizes floor/ceil(n/K); within each stratum arm counts differ by at most one."""
    n = draws.shape[1]
    sizes = arm_counts(draws, n_arms)
    assert sizes.min() >= n // n_arms and sizes.max() <= -(-n // n_arms)
    assert (sizes.sum(axis=1) == n).all()
    for s in np.unique(strata):
        c = arm_counts(draws[:, strata == s], n_arms)
        m = (strata == s).sum() // n_arms
        assert c.min() >= m and c.max() <= m + 1, f"stratum {s}"


@pytest.fixture(scope="module")
def seed_draws():
    strata = strata_of(SEED_SIZES)
    return strata, {m: stratified_arms(strata, 8, 50_000, seed=2024, method=m) for m in ("exact", "sequential")}


def test_public_contract():
    strata = strata_of(EDLEAD_SIZES)
    arms = crt.stratified_arms(strata, 8, n_draws=5, seed=1)
    assert arms.shape == (5, 80)
    assert np.issubdtype(arms.dtype, np.integer)
    assert arms.min() >= 0 and arms.max() <= 7
    one = crt.stratified_arms(strata, 8)
    assert one.shape == (1, 80)


def test_exact_sizes_on_every_draw_edlead():
    strata = strata_of(EDLEAD_SIZES)
    draws = stratified_arms(strata, 8, 20_000, seed=11)
    assert (arm_counts(draws, 8) == 10).all()
    check_rule(draws, strata, 8)
    # the full strata (12, 11, 9, 8) hold every arm at least once on every draw
    for s in (1, 2, 3, 4):
        assert (arm_counts(draws[:, strata == s], 8) >= 1).all()


@pytest.mark.parametrize("method", ["exact", "sequential"])
def test_seed_example_probabilities(seed_draws, method):
    strata, all_draws = seed_draws
    draws = all_draws[method]
    check_rule(draws, strata, 8)
    assert (arm_counts(draws, 8) == 5).all()
    N = len(draws)
    v = verify_allocations(draws, strata, 8)
    se_unit = math.sqrt(0.125 * 0.875 / N)
    assert v.max_unit_deviation < 5 * se_unit
    # per stratum: count = m + Bernoulli(r / K), so SE = sqrt(p (1 - p) / N) with p = r / 8
    p = (np.array(SEED_SIZES) % 8) / 8
    se_stratum = np.sqrt(p * (1 - p) / N)[:, None]
    dev = np.abs(v.stratum_means.to_numpy() - v.expected_counts.to_numpy())
    assert (dev <= 5 * se_stratum + 1e-12).all()
    np.testing.assert_allclose(v.expected_counts.to_numpy()[:, 0], np.array(SEED_SIZES) / 8)
    assert v.passed(level=0.001), v


def test_verification_detects_a_biased_procedure(seed_draws):
    strata, all_draws = seed_draws
    biased = all_draws["exact"].copy()
    # the seed's step 5 without the random ordering: units of stratum 1 get arms in sorted order
    biased[:, :12] = np.sort(biased[:, :12], axis=1)
    v = verify_allocations(biased, strata, 8)
    assert v.unit_p_min < 1e-12 and not v.passed()
    # a sampler that prefers low arm numbers for the extras of stratum 2 (size 1)
    skew = all_draws["exact"].copy()
    skew[: len(skew) // 10, 12] = 0
    assert verify_allocations(skew, strata, 8).stratum_p_min < 1e-6


def _sequential_dead_end_probability(rows, n_arms, capacity):
    """Exact dead-end probability of the seed's algorithm (independent recursion with fractions):
    rows in decreasing size, each takes r distinct arms uniformly among those not yet full."""
    rows = sorted(rows, reverse=True)

    @lru_cache(maxsize=None)
    def dead(j, caps):
        if j == len(rows):
            return Fraction(0)
        open_ = [a for a in range(n_arms) if caps[a] > 0]
        if len(open_) < rows[j]:
            return Fraction(1)
        total = Fraction(0)
        subsets = list(itertools.combinations(open_, rows[j]))
        for sub in subsets:
            nxt = list(caps)
            for a in sub:
                nxt[a] -= 1
            total += dead(j + 1, tuple(sorted(nxt)))  # arms are exchangeable: sort the state
        return total / len(subsets)

    return dead(0, tuple([capacity] * n_arms))


def test_seed_sequential_dead_end_rate_and_redraw():
    strata = strata_of(SEED_SIZES)
    layout = _Layout.build(strata - 1, 8)
    rows = [int(layout.extra[j]) for j in layout.remainder_rows]
    exact = float(_sequential_dead_end_probability(rows, 8, layout.start_capacity()[0]))
    assert 0.085 < exact < 0.095  # the seed's "about 9 draws in 100"
    rng = np.random.default_rng(5)
    N = 50_000
    _, dead = _extras_sequential(rows, _initial_capacity(layout, N, rng), rng)
    assert abs(dead.mean() - exact) < 5 * math.sqrt(exact * (1 - exact) / N)
    # with redraws every allocation is complete, and the redraw count matches the dead-end rate
    draws, redraws = _generate(strata - 1, 8, N, np.random.default_rng(6), "sequential")
    assert (arm_counts(draws, 8) == 5).all()
    attempts = N + redraws
    assert abs(redraws / attempts - exact) < 5 * math.sqrt(exact * (1 - exact) / attempts)
    # the exact sampler never needs a redraw
    assert _generate(strata - 1, 8, 1000, np.random.default_rng(7), "exact")[1] == 0


def _brute_force_valid(sizes, n_arms):
    strata = strata_of(sizes)
    n = len(strata)
    all_ = np.array(list(itertools.product(range(n_arms), repeat=n)), dtype=np.int8)
    keep = np.ones(len(all_), dtype=bool)
    counts = arm_counts(all_, n_arms)
    keep &= (counts.min(axis=1) >= n // n_arms) & (counts.max(axis=1) <= -(-n // n_arms))
    for s in np.unique(strata):
        c = arm_counts(all_[:, strata == s], n_arms)
        m = (strata == s).sum() // n_arms
        keep &= (c.min(axis=1) >= m) & (c.max(axis=1) <= m + 1)
    return strata, all_[keep]


@pytest.mark.parametrize("sizes,n_arms", [([3, 2, 2, 1], 4), ([4, 2, 1], 3), ([3, 3, 1], 3)])
def test_exact_sampler_is_uniform_over_all_valid_allocations(sizes, n_arms):
    strata, valid = _brute_force_valid(sizes, n_arms)
    assert count_allocations(strata, n_arms) == len(valid)
    draws = stratified_arms(strata, n_arms, 60_000, seed=3)
    base = n_arms ** np.arange(len(strata))
    codes = {int(c): i for i, c in enumerate(valid.astype(np.int64) @ base)}
    hit = np.array([codes.get(int(c), -1) for c in draws.astype(np.int64) @ base])
    assert (hit >= 0).all()  # every draw satisfies the rule
    observed = np.bincount(hit, minlength=len(valid))
    assert stats.chisquare(observed).pvalue > 0.001


def test_non_divisible_n_extra_units_go_to_random_arms():
    sizes, K = [5, 4, 3, 1], 4  # n = 13: one arm of 4, three of 3
    strata = strata_of(sizes)
    draws = stratified_arms(strata, K, 40_000, seed=8)
    check_rule(draws, strata, K)
    counts = arm_counts(draws, K)
    assert (np.sort(counts, axis=1) == [3, 3, 3, 4]).all()
    p_big = (counts == 4).mean(axis=0)
    assert np.abs(p_big - 0.25).max() < 5 * math.sqrt(0.25 * 0.75 / len(draws))
    v = verify_allocations(draws, strata, K)
    assert v.max_unit_deviation < 5 * math.sqrt(0.25 * 0.75 / len(draws))
    assert v.passed()
    small = [3, 2, 1, 1]  # n = 7, K = 4: brute force the space and the sampler's uniformity
    strata, valid = _brute_force_valid(small, K)
    assert count_allocations(strata, K) == len(valid)
    draws = stratified_arms(strata, K, 60_000, seed=10)
    base = K ** np.arange(len(strata))
    codes = {int(c): i for i, c in enumerate(valid.astype(np.int64) @ base)}
    hit = np.array([codes.get(int(c), -1) for c in draws.astype(np.int64) @ base])
    assert (hit >= 0).all()
    assert stats.chisquare(np.bincount(hit, minlength=len(valid))).pvalue > 0.001


def test_strata_larger_than_twice_k():
    sizes, K = [19, 9, 4], 4  # 19 = 4 rounds + 3 extras; 9 = 2 rounds + 1
    strata = strata_of(sizes)
    draws = stratified_arms(strata, K, 20_000, seed=9)
    big = arm_counts(draws[:, strata == 1], K)
    assert (np.sort(big, axis=1) == [4, 5, 5, 5]).all()
    assert (np.sort(arm_counts(draws[:, strata == 2], K), axis=1) == [2, 2, 2, 3]).all()
    assert (arm_counts(draws, K) == 8).all()
    v = verify_allocations(draws, strata, K)
    np.testing.assert_allclose(v.expected_counts.to_numpy()[0], 19 / 4)
    assert v.passed()


def test_strata_that_are_whole_rounds_and_single_stratum():
    draws = stratified_arms(["s"] * 16, 8, 2000, seed=1)  # unstratified complete randomization
    assert (arm_counts(draws, 8) == 2).all()
    draws = stratified_arms(np.repeat([1, 2], 8), 8, 500, seed=2)
    assert (arm_counts(draws[:, :8], 8) == 1).all() and (arm_counts(draws[:, 8:], 8) == 1).all()


def test_same_seed_same_result_and_labels_of_any_type():
    strata = ["north"] * 5 + ["south"] * 4 + [("tuple", 1)] * 3
    a = stratified_arms(strata, 3, 100, seed=42)
    b = stratified_arms(strata, 3, 100, seed=42)
    c = stratified_arms(strata, 3, 100, seed=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    rng_a = stratified_arms(strata, 3, 10, seed=np.random.default_rng(1))
    np.testing.assert_array_equal(rng_a, stratified_arms(strata, 3, 10, seed=np.random.default_rng(1)))


@pytest.mark.parametrize("kwargs,match", [
    (dict(strata=[1, 1, 2], n_arms=1), "n_arms"),
    (dict(strata=[1, 1, 2], n_arms=4), "n_arms"),
    (dict(strata=[1, 1, 2], n_arms=2.0), "n_arms"),
    (dict(strata=[1, 1, 2], n_arms=True), "n_arms"),
    (dict(strata=[], n_arms=2), "strata: empty"),
    (dict(strata=[1, None, 2], n_arms=2), "strata: missing"),
    (dict(strata=[1.0, np.nan, 2.0], n_arms=2), "strata: missing"),
    (dict(strata="abc", n_arms=2), "strata"),
    (dict(strata=[1, 1, 2], n_arms=2, n_draws=0), "n_draws"),
    (dict(strata=[1, 1, 2], n_arms=2, method="greedy"), "method"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stratified_arms(**kwargs)


def test_factorial_arms_in_the_seeds_order():
    arms = Arms.factorial(["a", "b", "c"])
    assert arms.labels == ("none", "a", "b", "c", "a+b", "a+c", "b+c", "a+b+c")
    assert arms.levels.tolist()[4] == [1, 1, 0] and arms.levels.sum() == 12
    assert Arms.build(3).labels == ("1", "2", "3")
    assert Arms.build(["ctrl", "low", "high"]).labels == ("ctrl", "low", "high")
    with pytest.raises(ValueError, match="factors"):
        Arms.factorial(["a", "a"])
    with pytest.raises(ValueError, match="n_arms"):
        Arms.build(4, ["a", "b", "c"])
    with pytest.raises(ValueError, match="distinct"):
        Arms.build(["x", "x"])


def test_design_object():
    strata = strata_of(SEED_SIZES)
    d = StratifiedDesign(strata, factors=["a", "b", "c"], unit_ids=[f"ED{i:02d}" for i in range(40)], seed=5)
    assert d.n_arms == 8 and d.arm_size_range == (5, 5)
    assert d.n_possible == count_allocations(strata, 8) and d.n_possible > 10 ** 20
    assert (d.probabilities().to_numpy() == 0.125).all()
    np.testing.assert_allclose(d.expected_counts().loc[1].to_numpy(), 1.5)
    alloc = d.draw()
    assert alloc.arm_sizes().tolist() == [5] * 8
    table = alloc.table
    assert list(table.columns) == ["unit", "stratum", "arm", "arm_label", "a", "b", "c"]
    assert (table.groupby("a").size() == 20).all()  # each factor's halves: 20 units each
    row = table.iloc[0]
    assert row.arm_label == d.arms.labels[row.arm]
    np.testing.assert_array_equal(d.draw().arm, alloc.arm)  # same design seed, same draw
    np.testing.assert_array_equal(d.sample(50), d.sample(50))
    v = d.verify(n_draws=5_000)
    assert list(v.unit_probabilities.columns) == list(d.arms.labels)
    assert v.unit_probabilities.index[0] == "ED00"
    assert "Verification" in repr(v) and "StratifiedDesign" in repr(d)
    with pytest.raises(ValueError, match="unit_ids"):
        StratifiedDesign(strata, 8, unit_ids=[1, 2])


def test_auto_falls_back_to_sequential_for_large_problems():
    sizes = np.random.default_rng(0).integers(1, 20, 40)  # 40 strata, up to 19 units, 8 arms
    strata = strata_of(sizes)
    with pytest.warns(UserWarning, match="sequential"):
        draws = stratified_arms(strata, 8, 300, seed=1)
    check_rule(draws, strata, 8)
    with pytest.raises(ValueError, match="method"):
        stratified_arms(strata, 8, 10, seed=1, method="exact")
    with pytest.warns(UserWarning):
        big = StratifiedDesign(strata, 8, seed=1)
    assert big.method == "sequential" and big.n_possible is None
    with pytest.raises(ValueError, match="count"):
        count_allocations(strata, 8)
    assert StratifiedDesign(strata_of(EDLEAD_SIZES), 8, seed=1).method == "exact"
