"""Multi-arm / factorial constrained randomization: metrics vs direct loops and cvcrand's two-arm scores,
cutoff rules, validity vs loops and exact rates, saved space, ED-LEAD end to end, bad input."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from crt_widgets.core.covariates import prepare_covariates
from crt_widgets.core.randomization.constrained import ConstrainedDesign
from crt_widgets.core.io.spacefiles import read_multiarm_space
from crt_widgets.core.randomization.multiarm import MultiArmDesign, multiarm_scores, unique_rows, unconstrained_same_arm
from crt_widgets.core.randomization.arms import Arms
from crt_widgets.core.randomization.balanced_sampler import stratified_arms
from crt_widgets.datasets import load_dickinson, simulate_edlead

DICK = dict(covariates=["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"],
            categorical=["location", "incomecat"], cluster_id="county")


@pytest.fixture(scope="module")
def eds():
    return simulate_edlead(seed=2026)


@pytest.fixture(scope="module")
def edlead_design(eds):
    return MultiArmDesign(eds, ["volume", "location"], factors=["a", "b", "c"], categorical=["location"],
                          strata="health_system", cluster_id="ed", size=60_000, cutoff=0.01, seed=11)


def loop_scores(draws, z, w, K, metric, balance="arms", levels=None):
    out = []
    for d in draws:
        means = np.array([z[d == a].mean(axis=0) for a in range(K)])
        if balance == "arms":
            diffs = [means[a] - means[b] for a, b in itertools.combinations(range(K), 2)]
            per = np.mean([x ** 2 if metric == "l2" else np.abs(x) for x in diffs], axis=0)
            out.append(per @ w)
        else:
            s = 0.0
            for f in range(levels.shape[1]):
                on = np.isin(d, np.flatnonzero(levels[:, f]))
                diff = z[on].mean(axis=0) - z[~on].mean(axis=0)
                s += (diff ** 2 if metric == "l2" else np.abs(diff)) @ w
            out.append(s)
    return np.array(out)


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_two_arms_reproduce_cvcrand_scores(metric):
    design = ConstrainedDesign(load_dickinson(), n_treat=8, metric=metric, cutoff=0.1, **DICK)
    schemes = design.space.schemes.matrix()
    cov = design.covariate_matrix
    ours = multiarm_scores(schemes, cov.standardized, cov.weights, 2, metric)
    # the two-arm engine works on cvcrand's code scale (sums over the treated arm); ours on the
    # paper's (mean differences): treated sum = diff * n_T n_C / n = diff * 4 here
    scale = (8 * 8 / 16) ** (2 if metric == "l2" else 1)
    np.testing.assert_allclose(ours * scale, design.space_scores, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("balance", ["arms", "margins"])
def test_scores_match_direct_loops(eds, metric, balance):
    cov = prepare_covariates(eds, ["volume", "location"], categorical=["location"], weights=[2.0, 0.5])
    arms = Arms.factorial(["a", "b", "c"])
    draws = stratified_arms(eds.health_system, 8, 300, seed=4)
    ours = multiarm_scores(draws, cov.standardized, cov.weights, 8, metric, balance, arms.levels)
    ref = loop_scores(draws, cov.standardized, cov.weights, 8, metric, balance, arms.levels)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)
    # l2 over arms = twice the between-arm variance of the arm means
    if balance == "arms" and metric == "l2":
        means = np.array([[cov.standardized[d == a].mean(axis=0) for a in range(8)] for d in draws[:5]])
        np.testing.assert_allclose(ours[:5], 2 * means.var(axis=1, ddof=1) @ cov.weights, rtol=1e-10)


def test_non_divisible_arms_score_with_actual_arm_sizes():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(11, 2))
    draws = stratified_arms(["s"] * 11, 3, 50, seed=5)  # arm sizes 4, 4, 3
    np.testing.assert_allclose(multiarm_scores(draws, z, np.ones(2), 3), loop_scores(draws, z, np.ones(2), 3, "l2"))


def test_edlead_end_to_end(edlead_design, eds, tmp_path):
    d = edlead_design
    alloc = d.draw()
    assert len(d.scores) == 60_000 and d.n_duplicates == 0
    assert len(d.space_index) == int((d.scores <= np.quantile(d.scores, 0.01)).sum()) == 600
    space = d.space.arm_matrix()
    # every allocation of the space keeps the stratified rule: 10 per arm, no repeats before all arms
    assert all((np.bincount(row, minlength=8) == 10).all() for row in space[:200])
    hs = eds.health_system.to_numpy()
    for h in np.unique(hs):
        sub = space[:, hs == h]
        counts = np.stack([(sub == a).sum(axis=1) for a in range(8)], axis=1)
        assert counts.max(axis=1).max() - counts.min(axis=1).min() <= 1
    assert alloc.score <= d.cutoff_score and alloc.arm_sizes().tolist() == [10] * 8
    summary = alloc.summary["value"]
    assert list(summary.index) == ["score (selected scheme)", "cutoff score", "Mean", "SD", "Min", "5%", "10%",
                                   "20%", "25%", "30%", "50%", "75%", "95%", "Max"]
    assert summary["cutoff score"] == d.space_scores.max() <= np.quantile(d.scores, 0.01)  # the largest kept score
    assert summary["SD"] == pytest.approx(np.std(d.scores, ddof=1))
    table = alloc.baseline_table
    assert list(table.columns) == [f"arm = {a}" for a in d.arms.labels] + ["SMD"]
    assert table.loc["n"].iloc[:8].tolist() == ["10"] * 8
    # the constrained space balances much better than the candidates on average
    assert d.space_scores.mean() < 0.5 * d.scores.mean()
    # allocation table carries the factor columns: each factor's halves are 40 EDs
    frame = alloc.allocation
    assert all(frame[f].sum() == 40 for f in "abc")
    assert (frame.arm_label.to_numpy() == np.asarray(d.arms.labels)[frame.arm]).all()
    # same seed, same result
    again = MultiArmDesign(eds, ["volume", "location"], factors=["a", "b", "c"], categorical=["location"],
                           strata="health_system", cluster_id="ed", size=60_000, cutoff=0.01, seed=11).draw()
    np.testing.assert_array_equal(again.arm, alloc.arm)
    # saved space round trip
    path = alloc.save_space(tmp_path / "space.csv")
    saved = read_multiarm_space(path)
    assert saved.unit_ids == eds.ed.tolist() and saved.chosen == alloc.space_position
    np.testing.assert_array_equal(saved.arm_indices(d.arms.labels), space)
    np.testing.assert_allclose(saved.scores, d.space_scores, rtol=1e-9)
    head = path.read_text().splitlines()[0].split(",")
    assert head[:4] == ["scheme", "chosen", "score", "ED01"]


def test_validity_counts_and_unconstrained_rates(edlead_design, eds):
    d = edlead_design
    v = d.validity
    space = d.space.arm_matrix()
    # constrained counts against a direct loop over a few pairs
    for i, j in [(0, 1), (0, 79), (12, 40), (77, 78)]:
        assert v.constrained.same_counts[i, j] == int((space[:, i] == space[:, j]).sum())
    # within a stratum the unconstrained rate is exact: 12 EDs (m=1, r=4): 4*1*2 / (12*11)
    u = v.unconstrained_fraction
    assert u[0, 1] == pytest.approx(8 / 132)
    # strata of at most 8 EDs never share an arm
    hs = eds.health_system.to_numpy()
    small = np.flatnonzero(hs == "HS05")
    assert u[small[0], small[1]] == 0.0
    # across strata: close to the empirical rate over all candidates (SE ~ sqrt(p(1-p)/N) = 0.0014)
    cands = d.candidates
    emp = (cands[:, 0] == cands[:, 40]).mean()
    assert abs(u[0, 40] - emp) < 6 * np.sqrt(0.125 * 0.875 / len(cands))
    # same-arm rates of every unit sum to (arm size - 1): 9 partners per ED
    np.testing.assert_allclose(np.nansum(u, axis=1) - 1.0, 9.0, atol=1e-9)
    np.testing.assert_allclose(v.same_fraction.sum(axis=1) - 1.0, 9.0, atol=1e-9)
    # pairs of small strata are never together by design: not reported as a constraint problem
    assert not any("never" in m and "HS05" in m for m in v.messages())
    assert "PairValidity" in repr(v) and len(v.pairs(5)) == 5


def test_unconstrained_rate_exact_for_complete_randomization():
    draws = stratified_arms(["s"] * 10, 3, 2000, seed=1)  # sizes 4, 3, 3
    u = unconstrained_same_arm(draws, np.zeros(10, dtype=int), 3)
    # m=3, r=1: (1*3*4 + 2*3*2) / (10*9)
    assert u[0, 1] == pytest.approx(24 / 90)


def test_factorial_margins_balance(eds):
    d = MultiArmDesign(eds, ["volume", "location"], factors=["a", "b", "c"], categorical=["location"],
                       strata="health_system", cluster_id="ed", balance="margins", size=20_000, cutoff=0.02,
                       factor_weights=[1, 1, 1], seed=5)
    alloc = d.draw()
    frame = alloc.allocation.merge(eds, on="ed")
    z_volume = (eds.volume - eds.volume.mean()) / eds.volume.std(ddof=1)
    total = 0.0
    for f in "abc":
        on = frame[f].to_numpy() == 1
        dv = z_volume[on].mean() - z_volume[~on].mean()
        urban = (frame.location == "urban").to_numpy().astype(float)
        zu = (urban - urban.mean()) / urban.std(ddof=1)
        du = zu[on].mean() - zu[~on].mean()
        total += dv ** 2 + du ** 2
        assert dv ** 2 + du ** 2 <= d.cutoff_score + 1e-12  # every factor's two halves are balanced
    assert total == pytest.approx(alloc.score, rel=1e-10)
    # margins balancing is much tighter on the halves than the unconstrained candidates
    assert np.median(d.space_scores) < 0.2 * np.median(d.scores)


def test_duplicates_removed_exactly():
    data = pd.DataFrame({"x": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]})
    d = MultiArmDesign(data, ["x"], 3, size=3000, cutoff=0.5, seed=2)
    assert len(d.candidates) == 90  # 6! / (2!)^3 distinct allocations to 3 arms of 2
    assert d.n_duplicates == 3000 - 90
    keep, dup = unique_rows(d.candidates)
    assert dup == 0 and len(keep) == 90


def test_cutoff_ties_kept_and_n_best():
    data = pd.DataFrame({"g": ["x", "x", "y", "y", "y", "z", "z", "z", "z"]})
    d = MultiArmDesign(data, ["g"], 3, categorical=["g"], size=4000, cutoff=0.1, seed=3)
    cut = np.quantile(d.scores, 0.1)
    assert d.cutoff_score == pytest.approx(cut)
    assert len(d.space_index) == int((d.scores <= cut + 1e-12).sum())
    assert len(d.space_index) > 0.1 * len(d.scores)  # ties at the cutoff are kept
    best = MultiArmDesign(data, ["g"], 3, categorical=["g"], size=4000, n_best=25, seed=3)
    assert len(best.space_index) == 25
    assert best.space_scores.max() <= np.sort(best.scores)[24] + 1e-12


@pytest.mark.parametrize("kwargs,match", [
    (dict(metric="l3"), "metric"),
    (dict(balance="margins"), "balance"),
    (dict(balance="both"), "balance"),
    (dict(cutoff=0.0), "cutoff"),
    (dict(cutoff=1.5), "cutoff"),
    (dict(n_best=1), "n_best"),
    (dict(strata="nope"), "strata"),
    (dict(covariates=["nope"]), "covariates"),
    (dict(n_arms=1), "n_arms"),
    (dict(n_arms=7), "n_arms"),
    (dict(factor_weights=[1, 2]), "factor_weights"),
    (dict(size=1), "size"),
])
def test_bad_input(kwargs, match):
    data = pd.DataFrame({"x": np.arange(6.0), "s": list("aabbcc")})
    args = dict(covariates=["x"], n_arms=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MultiArmDesign(data, **args)


def test_bad_input_factorial():
    data = pd.DataFrame({"x": np.arange(8.0)})
    with pytest.raises(ValueError, match="factor_weights"):
        MultiArmDesign(data, ["x"], factors=["a", "b", "c"], factor_weights=[1, 2])
    with pytest.raises(ValueError, match="n_best"):
        MultiArmDesign(data, ["x"], factors=["a", "b"], n_best=10_000, size=50).space_index


@pytest.mark.parametrize("changes", [dict(weights=[2.0, 0.5]), dict(metric="l1", cutoff=0.2),
                                     dict(n_best=40), dict(balance="margins", factor_weights=[1, 2, 1])])
def test_rescore_equals_a_fresh_design_over_the_same_candidates(edlead_design, eds, changes):
    """Candidates depend on the seed only, so a re-score must give exactly what a new design gives."""
    rescored = edlead_design.rescore(**changes)
    fresh = MultiArmDesign(eds, ["volume", "location"], factors=["a", "b", "c"], categorical=["location"],
                           strata="health_system", cluster_id="ed", size=60_000, seed=11,
                           **({"cutoff": 0.01} | changes))
    assert rescored.candidates is edlead_design.candidates  # reused, not drawn again
    np.testing.assert_array_equal(rescored.scores, fresh.scores)
    np.testing.assert_array_equal(rescored.space_index, fresh.space_index)
    np.testing.assert_array_equal(rescored.draw().arm_label, fresh.draw().arm_label)
    assert rescored.parameters() == fresh.parameters()
    np.testing.assert_array_equal(rescored.validity.same_fraction, fresh.validity.same_fraction)
    np.testing.assert_array_equal(rescored.validity.difference, fresh.validity.difference)


def test_rescore_refuses_what_needs_new_candidates(edlead_design):
    with pytest.raises(ValueError, match="rescore: cannot change size, strata"):
        edlead_design.rescore(size=10, strata=None)
