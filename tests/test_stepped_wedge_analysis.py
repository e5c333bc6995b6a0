"""The analysis of a stepped-wedge trial: the mixed model against lme4 (pinned numbers), the permutation test
against a brute-force loop over the assignments, its size in a simulation, the inverted interval, and errors.

Reference numbers: R 4.2 / lme4 on tests/data/stepped_wedge_small.csv, produced by
tests/data/stepped_wedge_small_lme4.R; its output is kept in tests/data/stepped_wedge_small_lme4.txt.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crt_widgets as crt
from crt_widgets.core.permutation.data import p_values
from crt_widgets.core.permutation.stepped_wedge import (SequenceStatistic, prepare_cells, resolve_sequence_space,
                                                        stepped_wedge_permutation_test)
from crt_widgets.datasets import simulate_stepped_wedge_clusters, simulate_stepped_wedge_outcomes

DATA = Path(__file__).parent / "data"
SMALL = pd.read_csv(DATA / "stepped_wedge_small.csv")
# the assignment that generated the small data set (its 'treatment' column agrees with it)
SMALL_SEQUENCES = {"C01": 1, "C02": 4, "C03": 2, "C04": 3, "C05": 3, "C06": 4, "C07": 2, "C08": 3, "C09": 2,
                   "C10": 1, "C11": 4, "C12": 1}


def lme4_reference() -> dict[str, dict[str, dict[str, float]]]:
    out, block = {}, None
    for line in (DATA / "stepped_wedge_small_lme4.txt").read_text().splitlines():
        if line.startswith("== "):
            block = out.setdefault(line[3:], {"fixef": {}, "se": {}, "vc": {}})
            continue
        kind, *rest = line.split()
        if len(rest) == 1:
            block[kind] = float(rest[0])
        else:
            block[kind][rest[0]] = float(rest[1])
    return out


LME4 = lme4_reference()
OUR_NAMES = {"(Intercept)": "Intercept", "treatment": "treatment",
             **{f"period{j}": f"C(period)[T.{j}]" for j in range(2, 6)}}


@pytest.mark.parametrize("label, nested, method", [("nested REML", True, "reml"),
                                                   ("hussey-hughes REML", False, "reml"),
                                                   ("nested ML", True, "ml")])
def test_mixed_model_matches_lme4(label, nested, method):
    ref = LME4[label]
    result = crt.stepped_wedge_analysis(SMALL, "y", "cluster", "period", "treatment", nested=nested, method=method)
    for r_name, ours in OUR_NAMES.items():
        assert result.params[ours] == pytest.approx(ref["fixef"][r_name], abs=1e-4)
        assert result.bse[ours] == pytest.approx(ref["se"][r_name], abs=1e-4)
    vc = result.variance_components
    assert vc["cluster"] == pytest.approx(ref["vc"]["cluster"], abs=1e-4)
    assert vc["residual"] == pytest.approx(ref["vc"]["Residual"], abs=1e-4)
    if nested:
        assert vc["cluster_period"] == pytest.approx(ref["vc"]["period:cluster"], abs=1e-4)
    assert result.fit.llf >= ref["logLik"] - 1e-6  # lme4's optimum or a hair better
    if label == "nested REML":  # lmerTest's Satterthwaite df, pbkrtest's Kenward-Roger SE and df
        small = LME4["nested REML small-sample"]
        assert result.df == pytest.approx(small["satterthwaite_df"], abs=1e-3)
        assert result.pvalue == pytest.approx(small["satterthwaite_p"], abs=1e-5)
        kr = crt.stepped_wedge_analysis(SMALL, "y", "cluster", "period", "treatment", ddf="kenward-roger")
        assert (kr.se, kr.df) == (pytest.approx(small["kr_se"], abs=1e-4), pytest.approx(small["kr_df"], abs=1e-3))
        assert kr.pvalue == pytest.approx(small["kr_p"], abs=1e-5)
    assert result.effect == pytest.approx(ref["fixef"]["treatment"], abs=1e-4)
    # the raw call the helper makes: the cluster-period effect is the period nested in the cluster
    raw = crt.mixed_model("y ~ treatment + C(period)", SMALL, groups=["cluster", "period"] if nested else ["cluster"],
                          method=method)
    assert raw.fe_params["treatment"] == result.effect


def test_the_correlations_and_the_tables():
    result = crt.stepped_wedge_analysis(SMALL, "y", "cluster", "period", "treatment")
    ref = LME4["nested REML"]["vc"]
    between = ref["cluster"] + ref["period:cluster"]
    assert result.icc == pytest.approx(between / (between + ref["Residual"]), abs=1e-4)
    assert result.cac == pytest.approx(ref["cluster"] / between, abs=1e-4)
    lo, hi = result.ci
    assert lo == pytest.approx(result.effect - stats.t.ppf(0.975, result.df) * result.se, abs=1e-12)
    z = crt.stepped_wedge_analysis(SMALL, "y", "cluster", "period", "treatment", ddf="z")
    assert z.ci[0] == pytest.approx(z.effect - 1.959963984540054 * z.se, abs=1e-12) and np.isinf(z.df)
    table = result.table()
    assert table.shape == (1, 5) and table["effect"].iloc[0] == result.effect
    assert "ICC (same cluster-period)" in result.summary() and "SteppedWedgeAnalysis(effect=0.6207" in repr(result)
    hh = crt.stepped_wedge_analysis(SMALL, "y", "cluster", "period", "treatment", nested=False)
    assert hh.cac == 1.0 and set(hh.variance_components) == {"cluster", "residual"}


def dense_gls_estimate(data, sequences_of_clusters, design, components):
    """The period-adjusted GLS treatment estimate with dense matrices (cluster-period means, block covariance)."""
    tau2, gamma2, sigma2 = components
    ids = list(sequences_of_clusters)
    cells = data.groupby(["cluster", "period"]).y.agg(["mean", "size"]).reset_index()
    T = design.n_periods
    rows, X, V_blocks = [], [], []
    for k, cid in enumerate(ids):
        mine = cells[cells.cluster == cid].sort_values("period")
        periods = mine.period.to_numpy() - 1
        x_row = design.sequences[sequences_of_clusters[cid] - 1][periods]
        rows.extend(mine["mean"].tolist())
        for j, x in zip(periods, x_row):
            X.append(np.r_[np.eye(T)[j], x])
        m = mine["size"].to_numpy()
        V_blocks.append(tau2 + gamma2 * np.eye(len(m)) + np.diag(sigma2 / m))
    V = np.zeros((len(rows), len(rows)))
    at = 0
    for block in V_blocks:
        V[at: at + len(block), at: at + len(block)] = block
        at += len(block)
    X, y = np.array(X), np.array(rows)
    Vi = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    return beta[-1]


def small_trial(seed=1, effect=0.0):
    clusters = simulate_stepped_wedge_clusters(6, seed=seed, median_size=4)
    design = crt.stepped_wedge(3, 2)
    rng = np.random.default_rng(seed)
    sequence = rng.permutation(design.sequence_of_cluster())
    data = simulate_stepped_wedge_outcomes(clusters, design.matrix_for(sequence), effect=effect, icc=0.2, cac=0.7,
                                           seed=seed + 100)
    return data, design, dict(zip(clusters.cluster, sequence + 1))


@pytest.mark.parametrize("nested", [True, False])
def test_p_value_equals_a_brute_force_loop(nested):
    data, design, observed = small_trial(seed=4, effect=0.6)
    result = stepped_wedge_permutation_test(data, "y", "cluster", "period", "simple", design=design,
                                            observed=observed, nested=nested)
    assert result.n_schemes == 90  # 6! / (2! 2! 2!)
    # the variance components of the model without treatment, from the public mixed model
    fit = crt.mixed_model("y ~ C(period)", data, groups=["cluster", "period"] if nested else ["cluster"])
    vc = fit.variance_components
    components = (vc["cluster"], vc["period"] if nested else 0.0, vc["residual"])
    for name, value in zip(["cluster", "cluster_period", "residual"], components):
        assert result.variance_components.get(name, 0.0) == pytest.approx(value, abs=1e-6)
    space = resolve_sequence_space("simple", design=design, observed=observed)
    brute = np.array([dense_gls_estimate(data, dict(zip(space.cluster_ids, row + 1)), design, components)
                      for row in space.assignments])
    np.testing.assert_allclose(result.distribution, brute, atol=1e-6)
    observed_u = brute[space.observed]
    assert result.statistic == pytest.approx(observed_u, abs=1e-6)
    assert result.p_value == np.mean(np.abs(brute) >= np.abs(observed_u) - 1e-9)
    assert result.p_values["greater"] == np.mean(brute >= observed_u - 1e-9)
    assert 1 / 90 <= result.p_value < 1


def test_the_statistic_is_the_mixed_model_estimate_at_its_components():
    space = resolve_sequence_space("simple", design=crt.stepped_wedge(4, 3), observed=SMALL_SEQUENCES, size=500,
                                   seed=1)
    statistic = SequenceStatistic(prepare_cells(SMALL, "y", "cluster", "period", space), space)
    fit = crt.mixed_model("y ~ treatment + C(period)", SMALL, groups=["cluster", "period"])
    vc = fit.variance_components
    statistic._components[0.0] = np.array([vc["cluster"], vc["period"], vc["residual"]])
    assert statistic.estimates(0.0)[space.observed] == pytest.approx(fit.fe_params["treatment"], abs=1e-10)


def test_the_interval_inverts_the_test():
    data, design, observed = small_trial(seed=7, effect=1.0)
    r = stepped_wedge_permutation_test(data, "y", "cluster", "period", "simple", design=design, observed=observed,
                                       ci=True)
    space = resolve_sequence_space("simple", design=design, observed=observed)
    statistic = SequenceStatistic(prepare_cells(data, "y", "cluster", "period", space), space)

    def p_at(delta):
        u = statistic.estimates(delta)
        return p_values(u, u[space.observed])["two-sided"]

    low, high = r.conf_int
    assert low < r.estimate < high
    assert abs(statistic.estimates(r.estimate)[space.observed]) < 1e-7  # the observed estimate is 0 there
    step = 1e-5 * (high - low)
    assert p_at(low - step) < 0.05 <= p_at(low + step)
    assert p_at(high + step) < 0.05 <= p_at(high - step)
    assert "CI" in r.statement and r.to_dict()["conf_int"] == [low, high]


def test_the_constrained_space_and_its_saved_file(tmp_path):
    clusters = simulate_stepped_wedge_clusters(8, seed=3)
    design = crt.SteppedWedgeDesign(clusters, ["size", "baseline"], 4, cluster_id="cluster", seed=4)
    allocation = design.draw()
    data = simulate_stepped_wedge_outcomes(clusters, allocation.treatment_matrix(), effect=0.8, seed=5)
    result = stepped_wedge_permutation_test(data, "y", "cluster", "period", allocation, treatment="treatment")
    assert result.n_schemes == len(design.space) == 264  # 10% of 2,520, and the ties at the cutoff
    files = allocation.save(tmp_path)
    from_file = stepped_wedge_permutation_test(data, "y", "cluster", "period", files["space"],
                                               design=crt.stepped_wedge(4, 2))
    observed = dict(zip(allocation.allocation.cluster, allocation.allocation.sequence))
    from_design = stepped_wedge_permutation_test(data, "y", "cluster", "period", design, observed=observed)
    for other in (from_file, from_design):
        assert other.p_value == result.p_value and other.statistic == pytest.approx(result.statistic, abs=1e-12)
    with_model = crt.stepped_wedge_analysis(data, "y", "cluster", "period", "treatment", space=allocation, ci=False)
    assert with_model.permutation.p_value == result.p_value and with_model.table().shape == (2, 5)


@pytest.mark.slow
def test_size_is_nominal_in_a_simulation():
    """Under the null, with the assignment drawn from the space, the test rejects at the nominal rate: the exact
    rate is floor(0.05 * 2520) / 2520 = 0.05 (no ties), checked within 3 Monte Carlo SEs."""
    clusters = simulate_stepped_wedge_clusters(8, seed=11, median_size=3)
    design = crt.stepped_wedge(4, 2)  # 2,520 assignments, all enumerated
    rng = np.random.default_rng(2024)
    n_sim, rejected = 600, 0
    for k in range(n_sim):
        sequence = rng.permutation(design.sequence_of_cluster())
        data = simulate_stepped_wedge_outcomes(clusters, design.matrix_for(sequence), effect=0.0, icc=0.1, cac=0.8,
                                               seed=rng)
        r = stepped_wedge_permutation_test(data, "y", "cluster", "period", "simple", design=design,
                                           observed=dict(zip(clusters.cluster, sequence + 1)))
        rejected += r.p_value <= 0.05
    rate, se = rejected / n_sim, np.sqrt(0.05 * 0.95 / n_sim)
    assert abs(rate - 0.05) <= 3 * se, rate


@pytest.mark.parametrize("call, message", [
    (dict(space="simple", design=crt.staircase(4, 3), observed={f"C{i:02d}": 1 + i % 4 for i in range(1, 13)}),
     "observed in different periods"),
    (dict(space="simple", design=crt.MultiPeriodDesign([[0, 1, 1, 2, 2], [0, 0, 1, 1, 2], [0, 0, 0, 1, 1],
                                                        [0, 0, 0, 0, 1]], 3),
          observed={f"C{i:02d}": 1 + i % 4 for i in range(1, 13)}), "several treatment levels"),
    (dict(space="simple", design=crt.stepped_wedge(4, 3), observed=[1] * 12), "needs each cluster's sequence number"),
    (dict(space="simple", design=crt.stepped_wedge(4, 3), observed={**SMALL_SEQUENCES, "C01": 2}),
     r"observed: puts \[2, 4, 3, 3\] clusters on the sequences"),
    (dict(space="simple", design=None, observed=SMALL_SEQUENCES), "design: space='simple' needs the MultiPeriodDesign"),
    (dict(space="simple", design=crt.stepped_wedge(3, 4), observed={f"C{i:02d}": 1 + (i - 1) // 4 for i in range(1, 13)}),
     "the data have 5 periods"),
    (dict(space="simple", design=crt.stepped_wedge(4, 3), observed=SMALL_SEQUENCES, alternative="bigger"),
     "alternative: must be one of"),
    (dict(space="simple", design=crt.stepped_wedge(4, 3), observed=SMALL_SEQUENCES, alpha=1.5), "alpha: must be in"),
    (dict(space="simple", design=crt.stepped_wedge(4, 3), observed=SMALL_SEQUENCES, nested="yes"), "nested: True"),
    (dict(space=42), "space: expected a SteppedWedgeAllocation"),
    (dict(space="simple", design=crt.stepped_wedge(4, 3), observed={**SMALL_SEQUENCES, "C01": 9}),
     r"observed: expected one sequence number in 1..4"),
])
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        stepped_wedge_permutation_test(SMALL, "y", "cluster", "period", **call)


def test_data_problems_are_named():
    design = crt.stepped_wedge(4, 3)
    go = lambda data, **kw: stepped_wedge_permutation_test(data, "y", "cluster", "period", "simple",  # noqa: E731
                                                           design=design, observed=SMALL_SEQUENCES, **kw)
    with pytest.raises(ValueError, match=r"cluster\(s\) in the data but not in the space: C99"):
        go(pd.concat([SMALL, SMALL.iloc[:1].assign(cluster="C99")]))
    with pytest.raises(ValueError, match="clusters with no individuals .*: C12"):
        go(SMALL[SMALL.cluster != "C12"])
    with pytest.raises(ValueError, match=r"data: column\(s\) not found: outcome"):
        stepped_wedge_permutation_test(SMALL, "outcome", "cluster", "period", "simple", design=design,
                                       observed=SMALL_SEQUENCES)
    with pytest.raises(ValueError, match="treatment: column 'treatment' disagrees with the allocation's treatment"):
        go(SMALL.assign(treatment=1 - SMALL.treatment), treatment="treatment")
    with pytest.raises(ValueError, match="outcome 'y': must be numeric"):
        go(SMALL.assign(y=SMALL.y.astype(str)))
    with pytest.raises(ValueError, match=r"outcome 'y': 1 infinite value\(s\)"):
        go(SMALL.assign(y=SMALL.y.where(SMALL.index > 0, np.inf)))
    dropped = go(SMALL.assign(y=SMALL.y.where(SMALL.index > 2)))
    assert dropped.n_dropped == 3 and dropped.n_individuals == len(SMALL) - 3
    with pytest.raises(ValueError, match="data: expected a pandas DataFrame"):
        go(SMALL.to_numpy())


def test_analysis_helper_errors():
    with pytest.raises(ValueError, match="treatment: column 'treatment' varies within 1 cluster-period"):
        crt.stepped_wedge_analysis(SMALL.assign(treatment=np.where(SMALL.index == 0, 1 - SMALL.treatment,
                                                                   SMALL.treatment)),
                                   "y", "cluster", "period", "treatment")
    with pytest.raises(ValueError, match="period: column 'time' is not in the data"):
        crt.stepped_wedge_analysis(SMALL, "y", "cluster", "time", "treatment")
    with pytest.raises(ValueError, match="method: must be one of reml, ml"):
        crt.stepped_wedge_analysis(SMALL, "y", "cluster", "period", "treatment", method="bayes")
    with pytest.raises(ValueError, match=r"covariates: column\(s\) not in the data: age"):
        crt.stepped_wedge_analysis(SMALL, "y", "cluster", "period", "treatment", covariates=["age"])
    with pytest.raises(ValueError, match="treatment: column 'arm' must be numeric"):
        crt.stepped_wedge_analysis(SMALL.assign(arm="a"), "y", "cluster", "period", "arm")
    with pytest.raises(ValueError, match="nested: True or False"):
        crt.stepped_wedge_analysis(SMALL, "y", "cluster", "period", "treatment", nested=1)
    with pytest.raises(ValueError, match="data: expected a pandas DataFrame"):
        crt.stepped_wedge_analysis(None, "y", "cluster", "period", "treatment")


def test_a_cluster_period_column_is_the_same_nesting():
    with_column = SMALL.assign(cluster_period=SMALL.cluster + ":" + SMALL.period.astype(str))
    a = crt.mixed_model("y ~ treatment + C(period)", with_column, groups=["cluster", "cluster_period"])
    b = crt.mixed_model("y ~ treatment + C(period)", SMALL, groups=["cluster", "period"])
    assert a.fe_params["treatment"] == pytest.approx(b.fe_params["treatment"], abs=1e-12)
    assert a.variance_components["cluster_period"] == pytest.approx(b.variance_components["period"], abs=1e-12)


def test_space_messages(tmp_path):
    design = crt.stepped_wedge(4, 3)
    with pytest.raises(ValueError, match=r"observed: no sequence given for cluster\(s\) C12"):
        resolve_sequence_space("simple", design=design, observed={k: v for k, v in SMALL_SEQUENCES.items()
                                                                  if k != "C12"},
                               cluster_ids=list(SMALL_SEQUENCES))
    with pytest.raises(ValueError, match="observed: space='simple' needs each cluster's sequence"):
        resolve_sequence_space("simple", design=design)
    with pytest.raises(ValueError, match="cluster_ids: give the clusters' labels"):
        resolve_sequence_space("simple", design=design, observed=[1, 2, 3, 4] * 3)
    with pytest.raises(ValueError, match="size: must be a whole number of at least 2"):
        resolve_sequence_space("simple", design=design, observed=SMALL_SEQUENCES, size=1)
    clusters = simulate_stepped_wedge_clusters(8, seed=3)
    sw = crt.SteppedWedgeDesign(clusters, ["size"], 4, cluster_id="cluster", seed=4)
    with pytest.raises(ValueError, match="observed: say which assignment was used"):
        resolve_sequence_space(sw)
    outside = np.setdiff1d(np.arange(len(sw.candidates)), sw.space_index)[0]
    numbers = sw.candidates[outside] + 1
    with pytest.raises(ValueError, match="observed: the assignment that was used is not in the design's space"):
        resolve_sequence_space(sw, observed=numbers)
    files = sw.draw().save(tmp_path)
    with pytest.raises(ValueError, match="design: a saved space holds sequence numbers"):
        resolve_sequence_space(files["space"])
    with pytest.raises(ValueError, match=r"design: puts \[3, 2, 2, 1\] clusters on the sequences, the saved space"):
        resolve_sequence_space(files["space"], design=crt.stepped_wedge(4, [3, 2, 2, 1]))
    with pytest.raises(ValueError, match="space: sequence numbers outside 1..3"):
        resolve_sequence_space(files["space"], design=crt.stepped_wedge(3, [4, 2, 2]))
    arms = crt.MultiArmDesign(clusters, ["size"], ["a", "b"], cluster_id="cluster", size=200, seed=1).draw()
    with pytest.raises(ValueError, match="space: the saved space's cells are not sequence numbers"):
        resolve_sequence_space(arms.save(tmp_path / "arms")["space"], design=crt.stepped_wedge(2, 4))


def test_a_period_without_outcomes_and_no_rows_left():
    last_unobserved = crt.stepped_wedge(4, 3).with_unobserved(np.tile([False] * 4 + [True], (4, 1)))
    with pytest.raises(ValueError, match=r"period: no outcome in period\(s\) 5"):
        stepped_wedge_permutation_test(SMALL, "y", "cluster", "period", "simple", design=last_unobserved,
                                       observed=SMALL_SEQUENCES)
    with pytest.raises(ValueError, match="data: no rows left after dropping rows with missing values"):
        stepped_wedge_permutation_test(SMALL.assign(y=np.nan), "y", "cluster", "period", "simple",
                                       design=crt.stepped_wedge(4, 3), observed=SMALL_SEQUENCES)


def test_an_outcome_that_does_not_vary_gives_p_1_and_says_so():
    """A constant outcome gave statistic NaN and p = 0 (NaN compared as "less extreme" under every order): the
    strongest evidence from no information. Every order gives the estimate 0, so p = 1, as the parallel test."""
    data, design, observed = small_trial(seed=4, effect=0.6)
    result = stepped_wedge_permutation_test(data.assign(y=2.5), "y", "cluster", "period", "simple", design=design,
                                            observed=observed, ci=True)
    assert result.p_value == 1 and set(result.p_values.values()) == {1.0}
    assert result.statistic == 0 and np.all(result.distribution == 0) and result.n_schemes == 90
    assert result.conf_int == (-np.inf, np.inf)
    assert any("2.5 for everyone" in note for note in result.notes)
    analysis = crt.stepped_wedge_analysis
    with pytest.raises(ValueError, match="2.5 for everyone"):
        analysis(data.assign(y=2.5), "y", "cluster", "period", "treatment")
