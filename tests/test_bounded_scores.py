"""Exactness of the streamed float32 path of a block enumeration against the float64 path.

Above 2,000,000 schemes a design scores every scheme in float32, a few rows at a time, and decides the
cutoff and the kept set with float64 re-checks of the schemes within the float32 error bound. These
tests pin that the result is the float64 one: on 20-22 clusters enumerated both ways, the same kept
schemes (ties at the cutoff included: integer covariates make thousands of exactly equal scores), the
float64 quantile bit for bit, and the n best schemes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crt_widgets import ConstrainedDesign
from crt_widgets.core.randomization import bounded_scores as bs
from crt_widgets.core.randomization import constrained as design_module
from crt_widgets.core.randomization.acceptance import TIE_TOLERANCE, accept, accept_bounded
from crt_widgets.core.randomization.candidates import EnumeratedCandidates, SchemeCandidates
from crt_widgets.core.spaces.schemes import combinations_array, combinations_matrix


def _standardized(n: int, integer: bool, seed: int, levels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, size=(n, 4)).astype(float) if integer else rng.normal(size=(n, 5))
    return (x - x.mean(axis=0)) / x.std(axis=0, ddof=1), x


CASES = [(20, "l2", False), (22, "l2", False), (20, "l1", False), (20, "l2", True), (21, "l2", True),
         (22, "l1", True)]


@pytest.mark.parametrize("n,metric,integer", CASES)
def test_streamed_cutoff_and_kept_set_are_the_float64_ones(n, metric, integer):
    z, x = _standardized(n, integer, seed=n)
    weights = np.ones(z.shape[1])
    weights[0] = 2.0
    blocks = EnumeratedCandidates(n // 2, z, x)
    streamed = blocks.bounded_scores(weights, metric)
    assert streamed.values is None and streamed.dtype == np.float32
    exact = blocks.exact_scores(np.arange(len(blocks)), weights, metric)
    stored = blocks.bounded_scores(weights, metric, stored=True).values
    # the stream and the stored array are the same float32 numbers, within the proven bound
    np.testing.assert_array_equal(np.concatenate([c.copy() for _, c in streamed.chunks()]), stored)
    assert np.max(np.abs(stored - exact)) <= streamed.error
    old = blocks.scores(weights, metric)  # the float64 path of before (block products in float64)
    np.testing.assert_allclose(exact, old, rtol=1e-12, atol=1e-12)
    ties_seen = 0
    for q in (0.001, 0.1, 0.37, 0.5, 1.0):
        cut = bs.quantile(streamed, q)
        assert cut == float(np.quantile(exact, q))  # bit for bit: numpy's interpolation on the float64 scores
        old_cut = float(np.quantile(old, q))
        assert cut == pytest.approx(old_cut, rel=1e-13)
        tol = TIE_TOLERANCE * max(abs(cut), 1e-6 * bs.max_abs(streamed), 1e-300)
        assert bs.max_abs(streamed) == float(np.max(np.abs(exact)))
        kept = bs.kept_positions(streamed, cut + tol)
        old_tol = TIE_TOLERANCE * max(abs(old_cut), 1e-6 * float(np.max(np.abs(old))), 1e-300)
        np.testing.assert_array_equal(kept, np.flatnonzero(old <= old_cut + old_tol))
        np.testing.assert_array_equal(kept, np.flatnonzero(exact <= cut + tol))
        # the acceptance rule: the same kept set and largest kept score as on the float64 array
        positions, largest = accept_bounded(streamed, cutoff=q)
        mask, old_largest = accept(old, cutoff=q)
        np.testing.assert_array_equal(positions, np.flatnonzero(mask))
        assert largest == pytest.approx(old_largest, rel=1e-13)
        assert largest == accept(exact, cutoff=q)[1]
        ties_seen = max(ties_seen, int(np.sum(np.abs(exact - cut) <= tol)))
    if integer:  # the test covers ties at the cutoff: many schemes share the cutoff score exactly
        assert ties_seen > 100
    kept, last = bs.best_positions(streamed, 1000)
    best = np.lexsort((np.arange(len(exact)), exact))[:1000]
    np.testing.assert_array_equal(kept, np.sort(best))
    assert last == exact[best[-1]]
    assert accept_bounded(streamed, n_best=1000)[1] == last


def test_ties_at_the_last_of_the_n_best_are_broken_by_position():
    exact = np.repeat([1.0, 2.0, 3.0], 5000)[::-1].copy()  # 5,000 schemes tie at each score
    scores = bs.BoundedScores.from_array(exact.astype(np.float32), 1e-6, lambda index: exact[index])
    kept, last = bs.best_positions(scores, 7000)
    assert last == 2.0
    np.testing.assert_array_equal(kept, np.concatenate([np.arange(5000, 7000), np.arange(10000, 15000)]))


@pytest.mark.parametrize("q", [1e-6, 0.05, 0.1, 0.25, 0.5, 0.75, 0.999, 1.0])
@pytest.mark.parametrize("n", [10, 8191, 100_003])
def test_quantile_is_numpys_bit_for_bit(q, n):
    exact = np.random.default_rng(n).gamma(2.0, size=n)
    scores = bs.BoundedScores.from_array(exact.astype(np.float32), 4.0 * 2.0 ** -24 * exact.max(),
                                         lambda index: exact[index])
    assert bs.quantile(scores, q) == float(np.quantile(exact, q))
    assert bs.quantile(bs.BoundedScores.from_exact(exact), q) == float(np.quantile(exact, q))


def test_a_poor_sample_only_costs_a_wider_pass():
    # scores sorted by position: any bracket from the sample is checked against full counts and widened
    exact = np.linspace(0.0, 1.0, 200_000) ** 4
    scores = bs.BoundedScores.from_array(exact.astype(np.float32), 1e-7, lambda index: exact[index])
    for rank in (0, 1, 99_999, 199_999):
        assert bs.order_statistics(scores, [rank])[0] == exact[rank]
    with pytest.raises(ValueError, match="ranks: must be within 0..199999"):
        bs.order_statistics(scores, [200_000])


@pytest.mark.parametrize("n_best", [None, 5000])
def test_design_enumerated_by_blocks_matches_the_explicit_design(monkeypatch, n_best):
    z, x = _standardized(20, True, seed=3, levels=6)  # whole numbers: ties at the cutoff
    data = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(id=[f"k{i}" for i in range(20)])
    kwargs = dict(cluster_id="id", seed=11, metric="l2", weights=[1, 2, 1, 1], n_best=n_best, enumerate=True)
    explicit = ConstrainedDesign(data, ["a", "b", "c", "d"], 10, **kwargs)
    assert isinstance(explicit.candidates, SchemeCandidates)
    monkeypatch.setattr(design_module, "_EXPLICIT_LIMIT", 1000)
    blocks = ConstrainedDesign(data, ["a", "b", "c", "d"], 10, **kwargs)
    assert isinstance(blocks.candidates, EnumeratedCandidates)
    assert blocks.cutoff_score == pytest.approx(explicit.cutoff_score, rel=1e-12)
    if n_best is None:
        assert np.sum(np.abs(explicit.space_scores - explicit.cutoff_score) <= 1e-9 * explicit.cutoff_score) > 1
    as_rows = lambda d: {tuple(r) for r in d.space.schemes.matrix().tolist()}
    if n_best is None:  # ties at the n-th best are broken by each path's enumeration order
        assert as_rows(blocks) == as_rows(explicit)
    assert len(blocks.space_index) == len(explicit.space_index)
    np.testing.assert_allclose(np.sort(blocks.space_scores), np.sort(explicit.space_scores), rtol=1e-12)
    assert blocks.space_scores.dtype == np.float64 and blocks.scores.dtype == np.float32
    assert blocks.accepted.sum() == len(blocks.space_index)
    np.testing.assert_array_equal(np.flatnonzero(blocks.accepted), blocks.space_index)
    allocation = blocks.draw()
    row = blocks.space.schemes.matrix(np.array([allocation.space_position]))[0]
    np.testing.assert_array_equal(allocation.arm, row)
    assert allocation.score == blocks.space_scores[allocation.space_position]
    assert allocation.summary.loc["score (selected scheme)", "value"] == allocation.score


def test_schemes_at_any_order_of_positions():
    z, x = _standardized(12, False, seed=1)
    blocks = EnumeratedCandidates(5, z, x)
    every = blocks.schemes_at(np.arange(len(blocks)))
    shuffled = np.random.default_rng(0).permutation(len(blocks))
    np.testing.assert_array_equal(blocks.schemes_at(shuffled).packed, every.packed[shuffled])
    sums = every.treated_sums(z)
    exact = blocks.exact_scores(shuffled, np.ones(5), "l2")
    np.testing.assert_allclose(exact, np.einsum("ij,ij->i", sums, sums)[shuffled], rtol=1e-12)


def test_float32_out_of_range_falls_back_to_float64():
    z, x = _standardized(12, False, seed=2)
    blocks = EnumeratedCandidates(6, z, x)
    huge = blocks.bounded_scores(np.full(5, 1e40), "l2")
    assert huge.dtype == np.float64 and huge.error == 0.0


@pytest.mark.parametrize("n", [0, 1, 5, 12, 16])
def test_combinations_matrix_is_combn_order(n):
    for k in range(n + 1):
        combos = combinations_array(n, k)
        expected = np.zeros((len(combos), n), dtype=bool)
        expected[np.arange(len(combos))[:, None], combos] = True
        np.testing.assert_array_equal(combinations_matrix(n, k), expected)
