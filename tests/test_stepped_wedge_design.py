"""Constrained randomization of the order of a multi-period trial: the space against brute force (enumeration,
stratification, sampling), the scores against their formulas, exact validity rates, the balance comparison, the
allocation's matrices and files, and every message."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crt_widgets as crt
from crt_widgets.core.io.spacefiles import read_multiarm_space
from crt_widgets.core.multiperiod.designs import design_grid
from crt_widgets.core.randomization.stepped_wedge import (StratumTables, SteppedWedgeDesign, count_orders,
                                                          enumerate_orders, sample_orders, sequence_differences,
                                                          sequence_scores, time_correlations)
from crt_widgets.datasets import simulate_stepped_wedge_clusters

CLUSTERS = simulate_stepped_wedge_clusters(12, seed=3)


def multiset_permutations(counts):
    base = np.repeat(np.arange(len(counts)), counts)
    return {tuple(p) for p in itertools.permutations(base.tolist())}


@pytest.mark.parametrize("counts", [[2, 1, 2], [3, 3], [1, 1, 1, 1], [2, 0, 3], [4]])
def test_enumeration_lists_every_assignment_once(counts):
    rows = enumerate_orders(counts)
    assert len(rows) == count_orders(counts) == math.factorial(sum(counts)) // math.prod(map(math.factorial, counts))
    assert {tuple(r) for r in rows.tolist()} == multiset_permutations(counts)


def test_sampling_is_uniform_over_the_assignments():
    rows = sample_orders([2, 2, 1], 30_000, np.random.default_rng(1))  # 30 assignments
    assert (np.apply_along_axis(np.bincount, 1, rows, minlength=3) == [2, 2, 1]).all()
    keys, counts = np.unique(rows, axis=0, return_counts=True)
    assert len(keys) == 30
    assert stats.chisquare(counts).pvalue > 1e-3


def stratum_rule_holds(rows, codes, counts):
    n = len(codes)
    sizes = np.bincount(codes)
    for j, size in enumerate(sizes):
        per = np.stack([(rows[:, codes == j] == s).sum(axis=1) for s in range(len(counts))], axis=1)
        lo, hi = size * np.asarray(counts) // n, -(-size * np.asarray(counts) // n)
        if not ((per >= lo) & (per <= hi)).all(axis=1).all():
            return False
    return True


def test_stratified_space_is_the_brute_force_filter():
    codes = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    counts = [3, 3, 2]
    tables = StratumTables.build(codes, counts)
    every = enumerate_orders(counts)
    n = len(codes)
    sizes = np.bincount(codes)
    keep = np.ones(len(every), bool)
    for j, size in enumerate(sizes):
        per = np.stack([(every[:, codes == j] == s).sum(axis=1) for s in range(3)], axis=1)
        lo, hi = size * np.asarray(counts) // n, -(-size * np.asarray(counts) // n)
        keep &= ((per >= lo) & (per <= hi)).all(axis=1)
    listed = tables.enumerate()
    assert tables.n_possible == keep.sum() == len(listed)
    assert {tuple(r) for r in listed.tolist()} == {tuple(r) for r in every[keep].tolist()}
    # the exact same-sequence rates are the frequencies over that space
    same = (listed[:, :, None] == listed[:, None, :]).mean(axis=0)
    np.testing.assert_allclose(tables.same_sequence_rate(), same, atol=1e-12)
    # sampling is uniform over it
    drawn = tables.sample(40_000, np.random.default_rng(2))
    assert stratum_rule_holds(drawn, codes, counts)
    keys, freq = np.unique(drawn, axis=0, return_counts=True)
    assert len(keys) == tables.n_possible and stats.chisquare(freq).pvalue > 1e-3


def test_unstratified_same_sequence_rate_is_exact():
    d = SteppedWedgeDesign(CLUSTERS.iloc[:9], ["size"], crt.stepped_wedge(3, [4, 3, 2]), cluster_id="cluster", seed=1)
    rate = d.validity.unconstrained_fraction
    i, j = np.triu_indices(9, k=1)
    np.testing.assert_allclose(rate[i, j], (4 * 3 + 3 * 2 + 2 * 1) / (9 * 8))
    assert d.enumerated and len(d.candidates) == 1260
    # the constrained space's counts are the brute-force counts
    rows = d.space.arm_matrix()
    np.testing.assert_array_equal(d.validity.constrained.same_counts, (rows[:, :, None] == rows[:, None, :]).sum(0))


def test_scores_follow_their_formulas():
    d = SteppedWedgeDesign(CLUSTERS.iloc[:8], ["size", "baseline", "location"], 4, cluster_id="cluster",
                           categorical=["location"], weights=[1, 2, 0.5], seed=2)
    z, w = d.covariate_matrix.standardized, d.covariate_matrix.weights
    rows = d.candidates[:50]
    for metric in ("l2", "l1"):
        expected = []
        for r in rows:
            means = np.array([z[r == a].mean(axis=0) for a in range(4)])
            diffs = [means[a] - means[b] for a, b in itertools.combinations(range(4), 2)]
            per = np.mean([dd ** 2 if metric == "l2" else np.abs(dd) for dd in diffs], axis=0)
            expected.append(per @ w)
        np.testing.assert_allclose(sequence_scores(rows, z, w, 4, d.arm_time, metric), expected, rtol=1e-12)
        # time balance: the correlation of each column with the time on treatment
        t = d.arm_time[rows]
        r = np.array([[np.corrcoef(z[:, k], tt)[0, 1] for k in range(z.shape[1])] for tt in t])
        np.testing.assert_allclose(time_correlations(rows, z, d.arm_time), r, atol=1e-12)
        expected = (r ** 2 if metric == "l2" else np.abs(r)) @ w
        np.testing.assert_allclose(sequence_scores(rows, z, w, 4, d.arm_time, metric, "time"), expected, rtol=1e-12)
    assert d.arm_time.tolist() == [4.0, 3.0, 2.0, 1.0]
    np.testing.assert_allclose(sequence_differences(rows, z, 4)[0],
                               np.ptp([z[rows[0] == a].mean(axis=0) for a in range(4)], axis=0))


def test_the_constrained_space_is_the_cutoff_of_the_scores():
    d = SteppedWedgeDesign(CLUSTERS.iloc[:8], ["size", "baseline"], 4, cluster_id="cluster", cutoff=0.2, seed=3)
    assert d.n_possible == 2520 and d.enumerated
    kept = np.sort(d.space_scores)
    assert kept[-1] == d.cutoff_score <= np.quantile(d.scores, 0.2) + 1e-12
    assert len(d.space) == (d.scores <= d.cutoff_score + 1e-9 * d.cutoff_score).sum()
    best = d.with_params(cutoff=None, n_best=100)
    assert len(best.space) == 100 and best.space_scores.max() <= np.sort(d.scores)[99]


def test_balance_comparison_against_brute_force_quantiles():
    d = SteppedWedgeDesign(CLUSTERS.iloc[:8], ["size", "baseline"], 4, cluster_id="cluster", balance="time",
                           cutoff=0.1, seed=4)
    table = d.balance_comparison()
    z = d.covariate_matrix.standardized
    for rows, label in ((d.candidates[d.space_index], "constrained"), (d.candidates, "unconstrained")):
        t = d.arm_time[rows]
        r = np.abs(np.array([[np.corrcoef(z[:, k], tt)[0, 1] for k in range(2)] for tt in t]))
        col = ("|r| with time on treatment", f"{label} median")
        np.testing.assert_allclose(table[col].to_numpy(), np.median(r, axis=0), atol=1e-12)
        col = ("|r| with time on treatment", f"{label} 95%")
        np.testing.assert_allclose(table[col].to_numpy(), np.quantile(r, 0.95, axis=0), atol=1e-12)
    top = "|r| with time on treatment"
    # balancing on time on treatment shrinks the correlations well below simple randomization's
    assert (table[(top, "constrained 95%")] < 0.5 * table[(top, "unconstrained 95%")]).all()
    assert list(table.index) == ["size", "baseline"]


def test_the_allocation_gives_each_cluster_its_sequence_and_matrix(tmp_path):
    design = crt.stepped_wedge(3, [5, 4, 3])
    d = SteppedWedgeDesign(CLUSTERS, ["size", "baseline"], design, cluster_id="cluster", size=3_000, seed=5)
    assert not d.enumerated and d.n_possible == 27720 and len(d.candidates) + d.n_duplicates == 3_000
    a = d.draw()
    np.testing.assert_array_equal(a.treatment_matrix().to_numpy(), design.matrix_for(a.sequence))
    assert a.allocation["sequence"].value_counts().sort_index().tolist() == [5, 4, 3]
    assert (a.allocation["time_on_treatment"] == 3 - a.sequence).all()
    assert (a.allocation["first_treated_period"] == a.sequence + 2).all()
    grid = a.cluster_periods()
    assert len(grid) == 12 * 4 and set(grid.condition) == {"control", "treatment"}
    assert grid.groupby("cluster").value.sum().reindex(CLUSTERS.cluster).tolist() == a.time_on_treatment.tolist()
    np.testing.assert_allclose(a.time_balance().to_numpy(),
                               [np.corrcoef(CLUSTERS[c], a.time_on_treatment)[0, 1] for c in ("size", "baseline")])
    assert list(a.baseline_table.columns) == ["arm = 1", "arm = 2", "arm = 3", "SMD"]
    files = a.save(tmp_path)
    saved = read_multiarm_space(files["space"])
    assert saved.chosen == a.space_position and saved.labels.shape == (len(d.space), 12)
    assert (saved.labels[a.space_position].astype(str) == a.arm_label.astype(str)).all()
    audit = json.loads(files["audit"].read_text())
    assert audit["parameters"]["design"]["clusters_per_sequence"] == [5, 4, 3]
    assert audit["space"]["sha256"] == d.space.sha256(d.parameters()) and audit["n_constrained"] == len(d.space)
    assert pd.read_csv(files["treatment_matrix"], index_col=0).shape == (12, 4)


def test_zero_cluster_sequences_and_incomplete_designs():
    design = crt.MultiPeriodDesign([[0, 1, 1], [0, 0, 1], [0, np.nan, 1]], [3, 0, 3])
    d = SteppedWedgeDesign(CLUSTERS.iloc[:6], ["size"], design, cluster_id="cluster", seed=6)
    assert d.space.arm_labels == ("1", "3") and d.n_possible == 20
    a = d.draw()
    assert set(a.sequence.tolist()) == {0, 2}
    assert np.isnan(a.treatment_matrix().to_numpy()).sum() == 3
    assert set(a.cluster_periods().condition) == {"control", "treatment", "not observed"}


def test_stratified_design_spreads_every_stratum():
    d = SteppedWedgeDesign(CLUSTERS, ["size", "baseline", "location"], 4, cluster_id="cluster",
                           categorical=["location"], stratify="location", seed=7)
    codes = pd.factorize(CLUSTERS["location"].astype(str), sort=True)[0]
    assert stratum_rule_holds(d.candidates, codes, [3, 3, 3, 3]) and d.enumerated
    assert d.covariate_matrix.columns == ("size", "baseline")  # the stratum is balanced exactly, not scored
    assert d.n_possible == d.tables.n_possible == len(d.candidates)


def test_rescore_reuses_the_candidates():
    d = SteppedWedgeDesign(CLUSTERS.iloc[:8], ["size", "baseline"], 4, cluster_id="cluster", seed=8)
    again = d.rescore(weights=[1, 0], metric="l1", n_best=50)
    assert again.candidates is d.candidates and len(again.space) == 50
    np.testing.assert_allclose(again.scores, SteppedWedgeDesign(CLUSTERS.iloc[:8], ["size", "baseline"], 4,
                                                                cluster_id="cluster", weights=[1, 0], metric="l1",
                                                                n_best=50, seed=8).scores)
    with pytest.raises(ValueError, match="rescore: cannot change size"):
        d.rescore(size=10)


def test_design_grid_of_a_design_in_sequence_order():
    grid = design_grid(crt.stepped_wedge(2, 2))
    assert grid.cluster.tolist()[:3] == [1, 1, 1] and grid.sequence.tolist()[::3] == [1, 1, 2, 2]
    with pytest.raises(ValueError, match="cluster_ids: 3 labels for 4 clusters"):
        design_grid(crt.stepped_wedge(2, 2), cluster_ids=["a", "b", "c"])
    fractional = design_grid(crt.MultiPeriodDesign([[0, 0.5, 1], [0, 0, 0.5]], 1))
    assert "treatment (50% of the effect)" in set(fractional.condition)


@pytest.mark.parametrize("kwargs, message", [
    (dict(design=5), "12 clusters do not split evenly over 5 sequences; pass a design, e.g. "
                     r"crt.stepped_wedge\(5, clusters_per_sequence=\[3, 3, 2, 2, 2\]\)"),
    (dict(design=crt.stepped_wedge(4, 2)), "its clusters_per_sequence add up to 8, but the data have 12 clusters"),
    (dict(design=crt.MultiPeriodDesign([[0, 1], [0, 0]], [12, 0])), "the clusters are all on one sequence"),
    (dict(design="four"), "design: expected a MultiPeriodDesign or a number of sequences"),
    (dict(design=4, balance="periods"), "balance: must be one of sequences, time, got 'periods'"),
    (dict(design=crt.cluster_crossover(6), balance="time"), "balance: 'time' needs sequences that differ"),
    (dict(design=4, metric="l3"), "metric: must be one of l2, l1"),
    (dict(design=4, size=1), "size: must be a whole number of at least 2"),
    (dict(design=4, enumerate="yes"), "enumerate: True, False or None"),
    (dict(design=4, enumerate=True, size=10), None),
    (dict(design=4, stratify="region"), r"stratify: column\(s\) not in the data: region"),
    (dict(design=4, n_best=400_000, enumerate=True), "n_best: 400,000 is not smaller than the 369,600"),
    (dict(design=4, cutoff=0), r"cutoff: must be a quantile in \(0, 1\]"),
    (dict(design=4, weights=[1]), r"weights: got 1 weight\(s\) for 2 covariate\(s\)"),
])
def test_bad_input_names_the_argument(kwargs, message):
    if message is None:  # forcing the enumeration of a small space is fine
        assert SteppedWedgeDesign(CLUSTERS, ["size", "baseline"], cluster_id="cluster", seed=1, **kwargs).enumerated
        return
    with pytest.raises(ValueError, match=message):
        SteppedWedgeDesign(CLUSTERS, ["size", "baseline"], cluster_id="cluster", seed=1, **kwargs)


def test_too_many_to_list_and_a_stratified_mess():
    many = simulate_stepped_wedge_clusters(40, seed=1)
    with pytest.raises(ValueError, match="too many to list"):
        SteppedWedgeDesign(many, ["size"], 4, cluster_id="cluster", enumerate=True)
    with pytest.raises(ValueError, match="size: at most 20,000,000 sampled assignments"):
        SteppedWedgeDesign(many, ["size"], 4, cluster_id="cluster", size=30_000_000)
    with pytest.raises(ValueError, match="data: expected a pandas DataFrame"):
        SteppedWedgeDesign(many.to_numpy(), ["size"], 4)
    many["id"] = np.arange(40)
    with pytest.raises(ValueError, match="stratify: the strata can spread over the sequences in too many ways"):
        SteppedWedgeDesign(many, ["size"], crt.stepped_wedge(10, 4), cluster_id="cluster", stratify="id")
    with pytest.raises(ValueError, match="stratify: missing values in baseline"):
        broken = CLUSTERS.assign(baseline=CLUSTERS.baseline.where(CLUSTERS.index > 0))
        SteppedWedgeDesign(broken, ["size"], 4, cluster_id="cluster", stratify="baseline")


def test_a_multi_period_space_is_not_a_two_group_space():
    a = SteppedWedgeDesign(CLUSTERS.iloc[:8], ["size"], 4, cluster_id="cluster", seed=9).draw()
    for what in (a, a.design):
        with pytest.raises(ValueError, match="stepped_wedge_permutation_test"):
            what.to_permutation_space()


def test_saving_replaces_files_whole(tmp_path, monkeypatch):
    a = SteppedWedgeDesign(CLUSTERS.iloc[:8], ["size"], 4, cluster_id="cluster", seed=10).draw()
    files = a.save(tmp_path)
    before = files["audit"].read_text()

    def broken(self):
        raise RuntimeError("disk full")

    with pytest.raises(FileExistsError, match="stepped_wedge_allocation.csv exists already"):
        a.save(tmp_path)  # a drawn allocation is never replaced unless asked
    monkeypatch.setattr(type(a), "audit", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        a.save(tmp_path, overwrite=True)
    assert files["audit"].read_text() == before  # the earlier record is intact
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_more_messages():
    with pytest.raises(ValueError, match="weights: colour not among the covariates"):
        SteppedWedgeDesign(CLUSTERS, ["size"], 4, cluster_id="cluster", weights={"colour": 1})
    with pytest.raises(ValueError, match=r"the constrained space has 1 assignment\(s\): at least 2 are needed"):
        # unequal sequences and time balance: no relabelling or reversal ties the best order with another
        SteppedWedgeDesign(CLUSTERS.iloc[:8], ["size", "baseline"], crt.stepped_wedge(3, [4, 3, 1]),
                           cluster_id="cluster", balance="time", cutoff=1e-9).space


def test_simulated_data_messages():
    from crt_widgets.datasets import simulate_stepped_wedge_outcomes

    for kwargs, message in [(dict(n_clusters=1), "n_clusters: expected a whole number of at least 2"),
                            (dict(median_size=0), "median_size: must be > 0"),
                            (dict(urban_share=2), r"urban_share: must be a probability in \[0, 1\]")]:
        with pytest.raises(ValueError, match=message):
            simulate_stepped_wedge_clusters(**{"n_clusters": 6, **kwargs})
    matrix = crt.stepped_wedge(2, 3).cluster_matrix()
    clusters = CLUSTERS.iloc[:6]
    for kwargs, message in [(dict(treatment=matrix[:5]), r"treatment: expected a 6 x periods matrix"),
                            (dict(cluster_id="id"), "cluster_id: column 'id' is not in clusters"),
                            (dict(icc=1.0), r"icc must be in \[0, 1\) and cac in \[0, 1\]"),
                            (dict(size="n"), "size: column 'n' is not in clusters"),
                            (dict(size=0), "size: individuals per cluster-period must be whole numbers"),
                            (dict(period_effects=[0, 1]), r"period_effects: expected one value per period \(3\)")]:
        with pytest.raises(ValueError, match=message):
            simulate_stepped_wedge_outcomes(clusters, **{"treatment": matrix, **kwargs})
    data = simulate_stepped_wedge_outcomes(clusters, matrix, effect=1.0, size=5, baseline_effect=0.5, seed=1)
    assert len(data) == 6 * 3 * 5 and data.groupby(["cluster", "period"]).treatment.nunique().max() == 1
