"""crt_widgets.core.multiperiod: designs, and the GLS power against swCRTdesign (pinned R values), Hussey and
Hughes's closed form, brute force, and a simulation where no reference exists (exponential decay)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import crt_widgets as crt
from crt_widgets.core.multiperiod.designs import (
    MultiPeriodDesign,
    cluster_crossover,
    parallel_arms,
    staircase,
    stepped_wedge,
    unique_rows,
)
from crt_widgets.core.multiperiod.power import (
    MultiPeriodPower,
    _precision_general,
    _precision_low_rank,
    gls_treatment_covariance,
    multiperiod_clusters_needed,
    multiperiod_power,
    multiperiod_power_grid,
    normal_power,
    stepped_wedge_steps_needed,
)

R = json.loads((Path(__file__).parent / "data" / "swcrtdesign_R.json").read_text())


# --- designs -----------------------------------------------------------------------------------------------
def test_stepped_wedge_is_swdsn():
    for name, kwargs in [("ex1_binomial", {}), ("ex2_extra_trt_time", dict(extra_periods=3)),
                         ("extra_ctl_time", dict(baseline_periods=3)),
                         ("all_ctl_time0_false", dict(baseline_periods=0)),
                         ("all_ctl_time0_false_extra_times", dict(baseline_periods=1, extra_periods=2))]:
        expected = np.array(R[name]["swDsn"]["swDsn_unique_clusters"], dtype=float)
        counts = R[name]["swDsn"]["clusters"]
        design = stepped_wedge(len(expected), counts, **kwargs)
        np.testing.assert_array_equal(design.sequences, expected, err_msg=name)
        np.testing.assert_array_equal(design.cluster_matrix(), np.array(R[name]["swDsn"]["swDsn"]))


def test_constructors():
    np.testing.assert_array_equal(stepped_wedge(2, periods_per_step=2).sequences,
                                  [[0, 1, 1, 1, 1], [0, 0, 0, 1, 1]])
    assert stepped_wedge(2, periods_per_step=2).n_periods == 5
    np.testing.assert_array_equal(stepped_wedge(2, transition_periods=2, extra_periods=1).sequences,
                                  [[0, np.nan, np.nan, 1], [0, 0, np.nan, np.nan]])
    stairs = staircase(3, 2, control_periods=2, treatment_periods=2)
    assert stairs.n_periods == 6 and stairs.observed.sum(axis=1).tolist() == [4, 4, 4]
    assert cluster_crossover([4, 5]).clusters_per_sequence.tolist() == [4, 5]
    assert parallel_arms(5).kind == "parallel" and parallel_arms(5, baseline_periods=1).kind == "parallel with baseline"
    custom = MultiPeriodDesign.from_cluster_matrix([[0, 1, np.nan], [0, 0, 1], [0, 1, np.nan]])
    np.testing.assert_array_equal(custom.sequences, [[0, 1, np.nan], [0, 0, 1]])
    assert custom.clusters_per_sequence.tolist() == [2, 1]
    assert unique_rows(np.array([[2.0], [1.0], [2.0], [3.0]]))[0].tolist() == [0, 1, 3]


def test_design_as_data():
    design = stepped_wedge(3, [2, 1, 2])
    assert design.sequence_of_cluster().tolist() == [0, 0, 1, 2, 2]
    assert design.matrix_for(np.array([2, 0, 1, 0, 2])).tolist()[0] == [0, 0, 0, 1]
    assert design.table().loc[2, "clusters"] == 1 and list(design.table().columns)[:2] == ["clusters", "period 1"]
    assert design.with_clusters(4).n_clusters == 12
    incomplete = design.with_unobserved(np.eye(3, 4, k=1, dtype=bool))
    assert np.isnan(incomplete.sequences[0, 1]) and incomplete.kind == "custom"
    assert repr(design) == ("MultiPeriodDesign(stepped wedge: 3 sequences x 4 periods, 5 clusters (2, 1, 2 per "
                            "sequence), treatment 1)")
    assert "2 cells not observed" in repr(stepped_wedge(2, transition_periods=1))
    levels = MultiPeriodDesign([[0, 1, 2], [0, 0, 1]])
    assert levels.treatment_levels == (1.0, 2.0) and levels.n_effects == 2 and "levels 1, 2" in repr(levels)
    assert levels.treatment_columns().shape == (2, 3, 2)
    fractional = MultiPeriodDesign([[0, 0.5, 1], [0, 0, 0.5]])
    assert fractional.is_fractional and fractional.n_effects == 1 and "fractions 0.5, 1" in repr(fractional)
    np.testing.assert_array_equal(fractional.treatment_columns()[..., 0], fractional.sequences)
    assert design == stepped_wedge(3, [2, 1, 2]) and design != stepped_wedge(3, 2)
    assert not design.sequences.flags.writeable and not design.clusters_per_sequence.flags.writeable


def test_exposure_times():
    np.testing.assert_array_equal(stepped_wedge(2, transition_periods=1).exposure_times(), [[0, 1, 2], [0, 0, 1]])
    np.testing.assert_array_equal(staircase(2).exposure_times(), [[0, 1, 2], [0, 0, 1]])
    np.testing.assert_array_equal(parallel_arms(3, n_periods=2).exposure_times(), [[1, 2], [0, 0]])


BAD_DESIGNS = [
    (lambda: MultiPeriodDesign("abc"), "sequences must be a sequences x periods matrix of numbers"),
    (lambda: MultiPeriodDesign([0, 1]), "at least one row and one column"),
    (lambda: MultiPeriodDesign([[0, np.inf]]), "infinite value"),
    (lambda: MultiPeriodDesign([[np.nan, np.nan]]), "no observed cell"),
    (lambda: MultiPeriodDesign([[0, -1]]), "got -1"),
    (lambda: MultiPeriodDesign([[0, 0.5], [0, 2]]), "mixes fractional effects with treatment levels"),
    (lambda: MultiPeriodDesign([[0, 1]], clusters_per_sequence=1.5), "clusters_per_sequence must be one whole number"),
    (lambda: MultiPeriodDesign([[0, 1], [0, 0]], clusters_per_sequence=[1, 2, 3]), "one whole number >= 0 per"),
    (lambda: MultiPeriodDesign([[0, 1]], clusters_per_sequence=0), "at least one cluster"),
    (lambda: MultiPeriodDesign([[0, 1]], kind="zigzag"), "kind must be one of"),
    (lambda: stepped_wedge(3).matrix_for([0, 1, 5]), r"one sequence index in 0..2"),
    (lambda: stepped_wedge(3).matrix_for([0, 0, 1]), r"must put \[1, 1, 1\] clusters"),
    (lambda: stepped_wedge(3).with_unobserved([[True]]), "cells must be a 3 x 4 boolean matrix"),
    (lambda: MultiPeriodDesign([[0, 1, 2], [0, 0, 1]]).exposure_times(), "exposure times need a 0/1 design"),
    (lambda: cluster_crossover(2).exposure_times(), "no sequence returns to control"),
    (lambda: MultiPeriodDesign.from_cluster_matrix([0, 1]), "matrix must be a clusters x periods matrix"),
    (lambda: stepped_wedge(0), "n_sequences must be a whole number of at least 1"),
    (lambda: stepped_wedge(3, [1, 2]), "clusters_per_sequence must be a whole number >= 0 or one per sequence"),
    (lambda: stepped_wedge(3, transition_periods=-1), "transition_periods must be a whole number of at least 0"),
    (lambda: staircase(3, control_periods=0), "control_periods must be a whole number of at least 1"),
    (lambda: cluster_crossover(3, n_periods=1), "n_periods must be a whole number of at least 2"),
    (lambda: parallel_arms((3, 3, 3)), "clusters_per_arm must be a whole number"),
]


@pytest.mark.parametrize("make, message", BAD_DESIGNS)
def test_design_messages(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- power: agreement with swCRTdesign where the models overlap --------------------------------------------------
def native_from_r(name: str, design: MultiPeriodDesign, **extra) -> MultiPeriodPower:
    """swPwr's arguments in our parameterization: total SD^2 = residual / ((1 - icc)(1 - iac)), where swPwr's
    sigma (or, binomial, sqrt(p(1 - p))) is the residual SD."""
    args = R[name]["swPwr_args"]
    mu1 = np.asarray(args["mu1"], dtype=float)
    if args["distn"] == "binomial":
        mean = (args["mu0"] + mu1.mean()) / 2
        residual = mean * (1 - mean)
    else:
        residual = args["sigma"] ** 2
    if "tau" in args:                    # random effects (eta = 0): back to ICC and CAC
        tau2, gamma2, zeta2 = args["tau"] ** 2, args.get("gamma", 0) ** 2, args.get("zeta", 0) ** 2
        icc = (tau2 + gamma2) / (tau2 + gamma2 + zeta2 + residual)
        cac = tau2 / (tau2 + gamma2) if tau2 + gamma2 > 0 else 1.0
        iac = zeta2 / (zeta2 + residual)
    else:
        icc, cac, iac = args.get("icc", 0.0), args.get("cac", 1.0), args.get("iac", 0.0)
    sd = np.sqrt(residual / ((1 - icc) * (1 - iac)))
    n = args["n"]
    sizes = dict(cluster_size=n) if np.ndim(n) == 0 else dict(size_matrix=np.array(n, dtype=float))
    return multiperiod_power(design, mu1 - args["mu0"], icc=icc, cac=cac, iac=iac, sd=sd, **sizes, **extra)


OVERLAP = {
    "ex1_binomial": lambda: stepped_wedge(4, 6),
    "ex8_icc_cac": lambda: stepped_wedge(4, 6),
    "cohort_icc_cac_iac": lambda: stepped_wedge(3, 3),
    "cross_sectional_icc_cac": lambda: stepped_wedge(5, 2),
    "binomial_icc_cac_iac": lambda: stepped_wedge(4, 2),
    "all_ctl_time0_false_extra_times": lambda: stepped_wedge(4, 2, baseline_periods=1, extra_periods=2),
    "extra_ctl_time": lambda: stepped_wedge(3, 3, baseline_periods=3),
    "fractional_scalar": lambda: MultiPeriodDesign(R["fractional_scalar"]["swDsn"]["swDsn_unique_clusters"], 4),
    "cohort_n_per_cluster": lambda: stepped_wedge(3, 2),
    "cohort_n_per_period_icc": lambda: stepped_wedge(3, 2),
    "ex9_cohort_random_effects": lambda: stepped_wedge(5, 5, baseline_periods=4, extra_periods=5),
    "zero_wave": lambda: MultiPeriodDesign([[0, 1, 1, 1], [0, 0, 0, 1]], [3, 2]),
    "parallel_baseline": lambda: parallel_arms(5, baseline_periods=1),
    "crossover_two_period": lambda: cluster_crossover(4),
    "crossover_four_period_cohort": lambda: cluster_crossover(3, n_periods=4),
    "stepped_wedge_10x6": lambda: stepped_wedge(10, 6),
    "swblk_all_na_column": lambda: MultiPeriodDesign([[0, 1, 1], [0, 0, 1]], [2, 3]),
    "dogleg": lambda: MultiPeriodDesign([[1, np.nan], [0, 1], [np.nan, 0]], 4),
    "swblk_two_levels_cohort": lambda: MultiPeriodDesign(
        np.array(R["swblk_two_levels_cohort"]["swDsn"]["swDsn_unique_clusters"], dtype=float), [5, 6, 6, 5]),
}


@pytest.mark.parametrize("name", sorted(OVERLAP))
def test_native_power_agrees_with_swpwr(name):
    result = native_from_r(name, OVERLAP[name]())
    np.testing.assert_allclose(np.atleast_1d(result.power), np.atleast_1d(R[name]["power"]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.atleast_1d(result.se) ** 2, np.atleast_1d(R[name]["var_theta_WLS"]), rtol=1e-6)


def test_native_exposure_weights_agree_with_swpwr_h():
    result = native_from_r("eti_renormalized", stepped_wedge(4, 3), exposure_weights=np.array([1, 1, 2, 2]) / 6)
    assert result.power == pytest.approx(R["eti_renormalized"]["power"], abs=1e-6)


def test_exposure_time_counts_the_transition_period():
    # our exposure time counts the unobserved transition period (Kenny et al. 2022), swPwr's H does not: R's
    # exposure times 1, 2, 3 are our 2, 3, 4, and our exposure time 1 is never observed (weight 0)
    design = stepped_wedge(3, 2, transition_periods=1, extra_periods=1)
    np.testing.assert_array_equal(design.sequences, np.array(R["eti_transition"]["swDsn"]["swDsn_unique_clusters"],
                                                             dtype=float))
    result = native_from_r("eti_transition", design, exposure_weights=[0, 1 / 3, 1 / 3, 1 / 3])
    assert result.power == pytest.approx(R["eti_transition"]["power"], abs=1e-6)
    with pytest.raises(ValueError, match=r"exposure time\(s\) \[1\] are observed in no cluster"):
        native_from_r("eti_transition", design, exposure_weights=[0.25] * 4)


def test_hussey_hughes_closed_form():
    # Hussey and Hughes (2007), eq. 8: the variance of theta-hat for a complete cross-sectional design,
    # exchangeable within cluster, equal sizes; X is the clusters x periods treatment matrix
    design = stepped_wedge(5, [3, 2, 4, 1, 2], baseline_periods=2, extra_periods=1)
    x = design.cluster_matrix()
    icc, n, sd = 0.07, 15, 1.3
    tau2, sigma2 = icc * sd**2, (1 - icc) * sd**2 / n
    clusters, periods = x.shape
    u, w, v = x.sum(), (x.sum(axis=0) ** 2).sum(), (x.sum(axis=1) ** 2).sum()
    variance = clusters * sigma2 * (sigma2 + periods * tau2) / (
        (clusters * u - w) * sigma2 + (u**2 + clusters * periods * u - periods * w - clusters * v) * tau2)
    result = multiperiod_power(design, 0.4, icc=icc, cluster_size=n, sd=sd)
    assert result.se**2 == pytest.approx(variance, rel=1e-12)


def test_binary_uses_the_variance_at_the_mean_proportion():
    design = stepped_wedge(4, 3)
    binary = multiperiod_power(design, -0.1, outcome="binary", p_control=0.4, icc=0.03, cac=0.6, cluster_size=25)
    continuous = multiperiod_power(design, -0.1, icc=0.03, cac=0.6, cluster_size=25, sd=np.sqrt(0.35 * 0.65))
    assert binary.power == pytest.approx(continuous.power, abs=1e-14)


def test_decay_of_one_is_exchangeable_and_both_inverses_agree():
    design = stepped_wedge(4, 3, transition_periods=1)
    exchangeable = multiperiod_power(design, 0.3, icc=0.05, iac=0.3, cluster_size=12)
    decay_one = multiperiod_power(design, 0.3, icc=0.05, decay=1.0, iac=0.3, cluster_size=12)
    assert decay_one.se == pytest.approx(exchangeable.se, rel=1e-12)
    # the Woodbury (low-rank) precision and the masked batched inverse give the same blocks
    rng = np.random.default_rng(3)
    observed = rng.random((4, 6)) < 0.8
    treated = (rng.random((4, 6)) < 0.5).astype(float)
    sizes = rng.integers(5, 30, (2, 4, 6)).astype(float)
    parts = [np.array(v) for v in ([0.3, 0.1], [1.0, 2.0], [0.05, 0.2], [0.4, 0.0], [0.02, 0.1], [0.01, -0.03])]
    np.testing.assert_allclose(_precision_low_rank(observed, treated, sizes, *parts),
                               _precision_general(observed, treated, sizes, *parts, None), rtol=1e-9, atol=1e-12)


def exact_gls_variance(x: np.ndarray, covariance: np.ndarray) -> float:
    """GLS variance of theta-hat with period effects, built directly: every cluster has the same covariance."""
    periods = x.shape[1]
    precision = np.linalg.inv(covariance)
    information = np.zeros((periods + 1, periods + 1))
    for row in x:
        design = np.hstack([np.eye(periods), row[:, None]])
        information += design.T @ precision @ design
    return float(np.linalg.inv(information)[-1, -1])


@pytest.mark.parametrize("iac", [0.0, 0.4])
def test_decay_against_a_simulation(iac):
    # exponential decay (Kasza et al. 2019), cross-sectional and closed cohort: simulate individuals from the
    # model, fit theta by GLS with the true covariance, and compare the rejection rate with the analytic power
    design, n, icc, decay, effect, sd = stepped_wedge(4, 3), 8, 0.1, 0.6, 0.45, 1.0
    analytic = multiperiod_power(design, effect, icc=icc, decay=decay, iac=iac, cluster_size=n, sd=sd)
    x = design.cluster_matrix()
    clusters, periods = x.shape
    lag = np.abs(np.subtract.outer(np.arange(periods), np.arange(periods)))
    cluster_var, person_var = icc * sd**2, (1 - icc) * iac * sd**2
    noise_var = (1 - icc) * (1 - iac) * sd**2
    covariance = cluster_var * decay**lag + person_var / n + np.eye(periods) * noise_var / n
    assert analytic.se**2 == pytest.approx(exact_gls_variance(x, covariance), rel=1e-10)

    n_trials = 4000
    rng = np.random.default_rng(20190101)
    period_effects = np.linspace(0.0, 0.5, periods)
    cluster_period = rng.standard_normal((n_trials, clusters, periods)) @ np.linalg.cholesky(
        cluster_var * decay**lag).T
    people = rng.standard_normal((n_trials, clusters, 1, n)) * np.sqrt(person_var)   # the cohort, every period
    outcomes = (period_effects[:, None] + effect * x[..., None] + cluster_period[..., None] + people
                + rng.standard_normal((n_trials, clusters, periods, n)) * np.sqrt(noise_var))
    means = outcomes.mean(axis=3)
    # GLS with the true covariance: theta-hat is a fixed linear combination of the cluster-period means
    precision = np.linalg.inv(covariance)
    blocks = [np.hstack([np.eye(periods), row[:, None]]) for row in x]
    information = sum(b.T @ precision @ b for b in blocks)
    weights = np.stack([(np.linalg.inv(information) @ b.T @ precision)[-1] for b in blocks])
    estimates = np.einsum("tcj,cj->t", means, weights)
    se = np.sqrt(np.linalg.inv(information)[-1, -1])
    rejected = np.abs(estimates / se) > 1.959963984540054
    mc_se = np.sqrt(analytic.power * (1 - analytic.power) / n_trials)
    assert 0.3 < analytic.power < 0.9                         # an informative power, not 0 or 1
    assert abs(rejected.mean() - analytic.power) < 3 * mc_se
    assert abs(estimates.mean() - effect) < 3 * se / np.sqrt(n_trials)
    assert abs(estimates.var(ddof=1) / se**2 - 1) < 3 * np.sqrt(2 / (n_trials - 1))


# --- vectorised scenarios -----------------------------------------------------------------------------------
def test_a_grid_equals_one_call_per_scenario():
    design = stepped_wedge(5, 2, transition_periods=1)
    icc = np.array([0.01, 0.05, 0.2])[:, None]
    cac = np.array([0.3, 0.8, 1.0])[None, :]
    grid = multiperiod_power(design, 0.3, icc=icc, cac=cac, iac=0.2, cluster_size=[[10], [20], [40]])
    assert grid.power.shape == (3, 3) and grid.n_scenarios == 9
    for i in range(3):
        for j in range(3):
            one = multiperiod_power(design, 0.3, icc=icc[i, 0], cac=cac[0, j], iac=0.2, cluster_size=[10, 20, 40][i])
            assert grid.power[i, j] == pytest.approx(one.power, abs=1e-13)
    decay = multiperiod_power(design, [0.2, 0.3], icc=0.05, decay=[0.5, 0.9], cluster_size=10)
    assert decay.power[1] == pytest.approx(multiperiod_power(design, 0.3, icc=0.05, decay=0.9,
                                                             cluster_size=10).power, abs=1e-13)
    assert repr(grid).startswith("MultiPeriodPower(9 scenarios, power ")
    frame = grid.to_frame()
    assert list(frame.columns) == ["icc", "cac", "iac", "cluster_size", "sd", "effect", "se", "power"]
    np.testing.assert_array_equal(frame["power"], grid.power.ravel())


def test_power_grid_is_the_outer_product():
    grid = multiperiod_power_grid(stepped_wedge(3, 4), effect=[0.2, 0.4], icc=[0.01, 0.05, 0.1], decay=[0.5, 0.9],
                                  cluster_size=20)
    assert len(grid) == 12 and {"decay", "effect", "power"} <= set(grid.columns)
    row = grid.iloc[7]
    one = multiperiod_power(stepped_wedge(3, 4), row["effect"], icc=row["icc"], decay=row["decay"], cluster_size=20)
    assert row["power"] == pytest.approx(one.power, abs=1e-13)
    binary = multiperiod_power_grid(stepped_wedge(3, 4), effect=[0.1], icc=[0.02], cluster_size=[30], outcome="binary",
                                    p_control=[0.2, 0.4])
    assert list(binary["p_control"]) == [0.2, 0.4]


def test_several_levels_and_size_matrices():
    design = MultiPeriodDesign([[0, 1, 2, 2], [0, 0, 1, 2], [0, 0, 0, 1]], 3)
    result = multiperiod_power(design, [0.2, 0.4], icc=0.05, cluster_size=20)
    assert result.power.shape == (2,) and result.power[1] > result.power[0]
    assert repr(result).startswith(f"MultiPeriodPower(power=[{result.power[0]:.4f}, {result.power[1]:.4f}], "
                                   f"effect=[0.2, 0.4], se=[")
    frame = multiperiod_power(design, [[0.2, 0.4], [0.1, 0.3]], icc=0.05, cluster_size=20).to_frame()
    assert "power (level 2)" in frame.columns and len(frame) == 2
    # one size per cluster equal everywhere is the scalar size; a 0 is the same as an unobserved cell
    sw = stepped_wedge(3, 2)
    same = multiperiod_power(sw, 0.3, icc=0.05, iac=0.3, size_matrix=np.full(6, 20.0))
    assert same.power == pytest.approx(multiperiod_power(sw, 0.3, icc=0.05, iac=0.3, cluster_size=20).power, abs=1e-14)
    sizes = np.full((6, 4), 20.0)
    sizes[[0, 1, 2, 3, 4, 5], [1, 1, 2, 2, 3, 3]] = 0      # each sequence's first period on treatment
    dropped = sw.with_unobserved(np.eye(3, 4, k=1, dtype=bool))
    assert multiperiod_power(sw, 0.3, icc=0.05, size_matrix=sizes).power == pytest.approx(
        multiperiod_power(dropped, 0.3, icc=0.05, cluster_size=20).power, abs=1e-14)


def test_engine_with_an_empty_group_and_per_scenario_sizes():
    observed = np.ones((3, 3), bool)
    x = np.array([[0.0, 1, 1], [0, 0, 1], [0, 1, 1]])[:, :, None]
    full = gls_treatment_covariance(observed[:2], [4, 4], x[:2], 10, tau2=0.1, sigma2=1.0)
    empty = gls_treatment_covariance(observed, [4, 4, 0], x, 10, tau2=0.1, sigma2=1.0)
    assert empty[0, 0] == pytest.approx(full[0, 0], rel=1e-14)
    per_scenario = gls_treatment_covariance(observed[:2], [4, 4], x[:2], np.array([10.0, 20.0])[:, None, None],
                                            tau2=0.1, sigma2=1.0)
    assert per_scenario.shape == (2, 1, 1) and per_scenario[0, 0, 0] == pytest.approx(full[0, 0], rel=1e-14)
    assert float(normal_power(0.0, 1.0, 0.05)) == pytest.approx(0.05)


# --- clusters and steps needed: brute force -------------------------------------------------------------------
def test_clusters_needed_is_the_smallest_that_reaches_the_power():
    design = stepped_wedge(4, 1)
    settings = dict(icc=np.array([0.01, 0.05, 0.2]), cac=0.7, cluster_size=15)
    needed = multiperiod_clusters_needed(design, 0.25, power=0.9, **settings)
    for k, m in enumerate(needed.replicates):
        args = dict(settings, icc=settings["icc"][k])
        assert multiperiod_power(design.with_clusters(m), 0.25, **args).power >= 0.9
        assert m == 1 or multiperiod_power(design.with_clusters(m - 1), 0.25, **args).power < 0.9
    assert needed.n_clusters.tolist() == (needed.replicates * 4).tolist()
    levels = MultiPeriodDesign([[0, 1, 2], [0, 0, 1]], 1)
    both = multiperiod_clusters_needed(levels, [0.3, 0.5], icc=0.05, cluster_size=20)
    assert multiperiod_power(levels.with_clusters(both.replicates), [0.3, 0.5], icc=0.05,
                             cluster_size=20).power.min() >= 0.8
    assert isinstance(both.replicates, int)


def test_steps_needed_is_the_smallest_that_reaches_the_power():
    found = stepped_wedge_steps_needed(0.3, clusters_per_step=2, icc=0.05, cac=0.8, cluster_size=10, power=0.85)
    power = [multiperiod_power(stepped_wedge(s, 2), 0.3, icc=0.05, cac=0.8, cluster_size=10).power
             for s in range(2, found.steps + 1)]
    assert power[-1] >= 0.85 and max(power[:-1]) < 0.85
    assert found.n_clusters == 2 * found.steps and found.power == pytest.approx(power[-1])
    spread = stepped_wedge_steps_needed(0.3, n_clusters=13, icc=0.05, cluster_size=10)
    design = stepped_wedge(spread.steps, 13 // spread.steps + (np.arange(spread.steps) < 13 % spread.steps))
    assert design.n_clusters == 13 and spread.power == pytest.approx(
        multiperiod_power(design, 0.3, icc=0.05, cluster_size=10).power)


# --- every message ------------------------------------------------------------------------------------------
SW = stepped_wedge(3, 2)
OK = dict(icc=0.05, cluster_size=10)
BAD_POWER = [
    (lambda: multiperiod_power("sw", 0.3, **OK), "design must be a MultiPeriodDesign"),
    (lambda: multiperiod_power(MultiPeriodDesign([[0, 0]]), 0.3, **OK), "no treated cell"),
    (lambda: multiperiod_power(SW, 0.3, outcome="count", **OK), "outcome must be one of"),
    (lambda: multiperiod_power(SW, 0.3, alpha=1.5, **OK), "alpha must be a number in"),
    (lambda: multiperiod_power(SW, "big", **OK), "effect must be a number or an array of numbers"),
    (lambda: multiperiod_power(SW, np.nan, **OK), "effect must hold finite numbers"),
    (lambda: multiperiod_power(SW, True, **OK), "effect must hold finite numbers"),
    (lambda: multiperiod_power(SW, 0.0, **OK), "effect must be nonzero"),
    (lambda: multiperiod_power(MultiPeriodDesign([[0, 1, 2], [0, 0, 1]]), 0.3, **OK),
     "one effect per treatment level"),
    (lambda: multiperiod_power(SW, 0.3, cac=0.5, decay=0.5, **OK), "not both"),
    (lambda: multiperiod_power(SW, 0.3, icc=0.05), "give cluster_size"),
    (lambda: multiperiod_power(SW, 0.3, icc=1.0, cluster_size=10), r"icc must be in \[0, 1\)"),
    (lambda: multiperiod_power(SW, 0.3, cac=1.5, **OK), r"cac must be in \[0, 1\]"),
    (lambda: multiperiod_power(SW, 0.3, decay=-0.1, **OK), r"decay must be in \[0, 1\]"),
    (lambda: multiperiod_power(SW, 0.3, iac=1.0, **OK), r"iac must be in \[0, 1\)"),
    (lambda: multiperiod_power(SW, 0.3, icc=0.05, cluster_size=0), r"cluster_size must be in \(0, inf\]"),
    (lambda: multiperiod_power(SW, 0.3, sd=0, **OK), r"sd must be in \(0, inf\]"),
    (lambda: multiperiod_power(SW, 0.3, p_control=0.3, **OK), "p_control is for outcome='binary'"),
    (lambda: multiperiod_power(SW, 0.3, outcome="binary", **OK), "p_control .* is needed"),
    (lambda: multiperiod_power(SW, 0.3, outcome="binary", p_control=1.0, **OK), r"p_control must be in \(0, 1\)"),
    (lambda: multiperiod_power(SW, 0.8, outcome="binary", p_control=0.3, **OK), "p_control \\+ effect must be in"),
    (lambda: multiperiod_power(SW, [0.1, 0.2], icc=[0.1, 0.2, 0.3], cluster_size=10), r"do not broadcast to one shape: effect \(2,\), icc \(3,\)"),  # effect was left out
    (lambda: multiperiod_power(SW, 0.3, icc=0.05, size_matrix=np.ones(5)), "size_matrix must give one size"),
    (lambda: multiperiod_power(SW, 0.3, icc=0.05, size_matrix=-np.ones(6)), "size_matrix must hold sizes >= 0"),
    (lambda: multiperiod_power(SW, 0.3, icc=0.05, iac=0.2, size_matrix=np.tile([10, 10, 12, 10], (6, 1))),
     "closed cohort .* the same in all its observed periods"),
    (lambda: multiperiod_power(SW, 0.3, exposure_weights=[0.5, 0.5], **OK), "one weight per exposure time: 3"),
    (lambda: multiperiod_power(SW, 0.3, exposure_weights=[0.5, 0.5, 0.5], **OK), "must sum to 1"),
    (lambda: multiperiod_power(MultiPeriodDesign([[0, 1], [0, 1]]), 0.3, **OK), "not estimable"),
    (lambda: multiperiod_power(MultiPeriodDesign([[0, 1, np.nan], [0, 0, np.nan]]), 0.3, **OK),
     r"period\(s\) \[3\] are observed in no cluster"),
    (lambda: multiperiod_clusters_needed(SW, 0.3, icc=0.05, size_matrix=np.ones(6)), "size_matrix gives every"),
    (lambda: multiperiod_clusters_needed(SW, 0.3, power=1.0, **OK), r"power must be a number in \(0, 1\)"),
    (lambda: multiperiod_clusters_needed(SW, [0.3, 0.0], **OK), "effect must be nonzero in every scenario"),
    (lambda: multiperiod_clusters_needed(SW, 0.001, max_replicates=10, **OK), "more than max_replicates=10"),
    (lambda: stepped_wedge_steps_needed(0.3, **OK), "give clusters_per_step or n_clusters"),
    (lambda: stepped_wedge_steps_needed(0.3, n_clusters=1, **OK), "n_clusters must be a whole number of at least 2"),
    (lambda: stepped_wedge_steps_needed(0.3, clusters_per_step=1, power=0, **OK), r"power must be a number in"),
    (lambda: stepped_wedge_steps_needed(0.3, clusters_per_step=1, max_steps=1, **OK), "max_steps must be"),
    (lambda: stepped_wedge_steps_needed(0.01, clusters_per_step=1, max_steps=4, **OK), "max_steps=4 steps do not"),
    (lambda: multiperiod_power_grid(SW, effect=[0.3], icc=[0.05], cac=[0.5], decay=[0.5], cluster_size=[10]),
     "not both"),
]


@pytest.mark.parametrize("call, message", BAD_POWER)
def test_power_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


BAD_ENGINE = [
    (dict(observed=np.ones(3, bool)), "observed must be a groups x periods boolean matrix"),
    (dict(clusters=[1]), "clusters must hold 2 counts"),
    (dict(treatment=np.zeros((2, 3))), "treatment must be 2 x 3 x effects"),
    (dict(treated=np.zeros((2, 2))), "treated must be 2 x 3"),
    (dict(sizes=np.ones(3)), "sizes must be one number, or an array ending in groups x periods"),
    (dict(sizes=np.ones((4, 2, 2))), "do not broadcast"),
    (dict(sizes=0), "sizes must be positive in every observed cell"),
    (dict(sigma2=0.0), "singular"),
]


@pytest.mark.parametrize("change, message", BAD_ENGINE)
def test_engine_messages(change, message):
    args = dict(observed=np.ones((2, 3), bool), clusters=[2, 2],
                treatment=np.array([[0.0, 1, 1], [0, 0, 1]])[:, :, None], sizes=10, tau2=0.1, sigma2=1.0)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        gls_treatment_covariance(**args)


def test_public_names():
    assert crt.stepped_wedge is stepped_wedge and crt.multiperiod_power is multiperiod_power
    assert crt.MultiPeriodDesign is MultiPeriodDesign
