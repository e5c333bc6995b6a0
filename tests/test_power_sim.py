"""Power by simulation: the chapter's design and the design-stage comparison of allocation methods."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crt_widgets.core.power import chapter as ps
from crt_widgets.core.models.mixed import mixed_model
from crt_widgets.core.power.analytic import crt_power
from crt_widgets.core.power.chapter import chapter_power_simulation
from crt_widgets.core.power.design_simulation import (
    cluster_level_analysis,
    constrained_randomization,
    design_power_simulation,
    mixed_model_analysis,
    pair_matching,
    simple_randomization,
    stratified_randomization,
)
from crt_widgets.datasets import simulate_callcenter


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return simulate_callcenter(40_000, n_months=2, seed=5)


# ------------------------------------------------------------------ chapter simulation
def test_trial_fits_from_statistics_equal_direct_mixed_model_fits(history):
    prep = ps._prepare_history(history, "call_CSAT ~ reason + age", "center_ID", "rep_ID", "month", None,
                               [0.0, 3.0], [40], "wald", 0.9, 20, "all", 1, 10.0)
    rng = np.random.default_rng(3)
    rows = np.flatnonzero(prep["month"] == 1)
    sample = ps._sample_down(rows, prep["rep"][rows], 40, rng)
    treated = ps._treated_clusters(prep["bits"][[3, 17]], prep["pair_code"], prep["n_clusters"])
    assert treated.sum(axis=1).tolist() == [5, 5]
    pieces = ps._SamplePieces(prep, sample)
    est, se, _ = pieces.fit_all(treated, pieces.statistics())
    cluster = prep["cluster"][sample]
    for a in range(2):
        for e, effect in enumerate([0.0, 3.0]):
            g = treated[a][cluster]
            y = prep["y"][sample]
            frame = pd.DataFrame({"y": np.where(g, np.minimum(y + effect, 10.0), y), "prop": prep["X"][sample, 1],
                                  "age": prep["X"][sample, 2], "group": np.where(g, "treat", "ctrl"),
                                  "c": cluster, "r": prep["rep"][sample]})
            direct = mixed_model("y ~ prop + age + group", frame, groups=["c", "r"])
            assert est[a, e] == pytest.approx(direct.fe_params["group[T.treat]"], rel=1e-4, abs=1e-6)
            assert se[a, e] == pytest.approx(direct.bse["group[T.treat]"], rel=1e-4)


def test_chapter_simulation_power_grid_reproducible_and_worker_independent(history):
    kwargs = dict(effect_sizes=[0.0, 3.0], calls_per_rep=[20, 40], month=None, seed=11)
    one = chapter_power_simulation(history, **kwargs)
    two = chapter_power_simulation(history, n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(one.trials, two.trials)
    table = one.table.set_index(["effect", "calls_per_rep"])
    # one sample (month=None) x 32 within-pair assignments per cell
    assert (table.n_trials == 32).all()
    # a 3-point effect with centre SD 1.1 over 5 pairs is always detected; no effect almost never
    assert (table.loc[3.0].power == 1.0).all()
    assert (table.loc[0.0].power <= 0.1).all()
    assert one.curve().shape == (2, 2)
    other = chapter_power_simulation(history, **(kwargs | {"seed": 12}))
    assert not np.allclose(other.trials.estimate, one.trials.estimate)


def test_chapter_bootstrap_analysis_and_sampled_assignments(history):
    sim = chapter_power_simulation(history, effect_sizes=[3.0], calls_per_rep=[20], analysis="bootstrap",
                                   n_boot=10, assignments=4, month=None, seed=2)
    assert len(sim.trials) == 4
    assert (sim.trials.lower <= sim.trials.upper).all()
    assert sim.table.power.iloc[0] == 1.0
    again = chapter_power_simulation(history, effect_sizes=[3.0], calls_per_rep=[20], analysis="bootstrap",
                                     n_boot=10, assignments=4, month=None, seed=2)
    pd.testing.assert_frame_equal(sim.trials, again.trials)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(analysis="bayes"), "analysis"),
        (dict(cluster="centre"), "cluster column 'centre'"),
        (dict(pairs=[[101, 999]]), "not in the data"),
        (dict(calls_per_rep=[0]), "calls_per_rep"),
        (dict(assignments="some"), "assignments"),
        (dict(formula="call_CSAT ~ height"), "names 'height'"),
    ],
)
def test_chapter_simulation_bad_input(history, kwargs, message):
    with pytest.raises(ValueError, match=message):
        chapter_power_simulation(history, **({"effect_sizes": [1.0], "calls_per_rep": [10]} | kwargs))


# ------------------------------------------------------------------ design-stage simulation
def test_size_and_power_of_the_mixed_model_analysis_match_theory():
    # equal cluster sizes, no covariates: the LMM t test on clusters - 2 df is the cluster-means
    # t test, whose power crt_power computes exactly; 400 trials give MC SE <= 0.025
    null = design_power_simulation(n_clusters=20, cluster_size=30, icc=0.05, effect=0.0, n_covariates=0,
                                   n_trials=400, seed=1)
    assert null.table.power.iloc[0] == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / 400))
    alt = design_power_simulation(n_clusters=20, cluster_size=30, icc=0.05, effect=0.4, n_covariates=0,
                                  n_trials=400, seed=2)
    theory = crt_power(0.4, icc=0.05, cluster_size=30, clusters_per_arm=10).power
    assert alt.table.power.iloc[0] == pytest.approx(theory, abs=3 * np.sqrt(theory * (1 - theory) / 400))


def test_design_simulation_independent_of_workers_and_chunks():
    kwargs = dict(n_clusters=10, cluster_size=(5, 15), icc=0.1, effect=0.5, n_trials=40, seed=7)
    a = design_power_simulation(**kwargs)
    b = design_power_simulation(n_jobs=2, chunk_size=7, **kwargs)
    pd.testing.assert_frame_equal(a.pvalues, b.pvalues)
    assert list(a.table.allocation) == ["simple", "stratified", "pair-matched", "constrained q=0.3", "constrained q=0.1"]
    assert not a.pvalues.equals(design_power_simulation(**(kwargs | {"seed": 8})).pvalues)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_result():
    distributed = pytest.importorskip("distributed")
    kwargs = dict(n_clusters=8, cluster_size=10, icc=0.1, effect=0.5, n_trials=20, seed=3, chunk_size=5)
    local = design_power_simulation(**kwargs)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        on_dask = design_power_simulation(client=client, **kwargs)
    pd.testing.assert_frame_equal(local.pvalues, on_dask.pvalues)


def test_constrained_randomization_with_adjusted_analysis_gains_power():
    # Li et al. (2016): when cluster covariates predict the outcome, constrained randomization with
    # an adjusted analysis has more power than simple randomization. Common random numbers make
    # the per-trial rejections paired; the gain must exceed 2 paired standard errors.
    res = design_power_simulation(n_clusters=12, cluster_size=20, icc=0.2, effect=0.5, covariate_r2=0.9,
                                  n_covariates=2, n_trials=300, seed=4,
                                  allocations={"simple": simple_randomization,
                                               "constrained": constrained_randomization(0.1)})
    reject = (res.pvalues < 0.05).astype(int)
    gain = reject["constrained"] - reject["simple"]
    assert gain.mean() > 2 * gain.std(ddof=1) / np.sqrt(len(gain))
    # reproducible by seed, whatever the workers; trial i's seed does not depend on n_trials
    again = design_power_simulation(n_clusters=12, cluster_size=20, icc=0.2, effect=0.5, covariate_r2=0.9,
                                    n_covariates=2, n_trials=30, seed=4, n_jobs=2,
                                    allocations={"simple": simple_randomization,
                                                 "constrained": constrained_randomization(0.1)})
    pd.testing.assert_frame_equal(again.pvalues, res.pvalues.iloc[:30])


def test_unadjusted_analysis_after_balancing_is_conservative():
    # the other half of Li et al.'s finding: balancing by design without adjusting for the
    # covariates in the analysis gives a test smaller than its nominal size
    res = design_power_simulation(n_clusters=12, cluster_size=20, icc=0.2, effect=0.0, covariate_r2=0.9,
                                  n_covariates=2, n_trials=300, seed=6,
                                  allocations={"constrained": constrained_randomization(0.1)},
                                  analysis=cluster_level_analysis(adjust=False))
    assert res.table.power.iloc[0] < 0.05 - 2 * np.sqrt(0.05 * 0.95 / 300)


def test_binary_and_count_outcomes_gain_power_with_the_effect():
    for outcome in ("binary", "count"):
        weak = design_power_simulation(n_clusters=16, cluster_size=40, icc=0.05, effect=0.0, outcome=outcome,
                                       n_covariates=0, n_trials=150, seed=1)
        strong = design_power_simulation(n_clusters=16, cluster_size=40, icc=0.05, effect=1.0, outcome=outcome,
                                         n_covariates=0, n_trials=150, seed=1)
        assert weak.table.power.iloc[0] <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 150)
        assert strong.table.power.iloc[0] > 0.9


def test_allocation_methods():
    rng = np.random.default_rng(0)
    clusters = pd.DataFrame({"x1": np.arange(10.0), "x2": np.r_[np.zeros(5), np.ones(5)]})
    assert simple_randomization(clusters, rng).sum() == 5
    strat = stratified_randomization("x1", 2)(clusters, rng).arm
    assert {int(strat[:5].sum()), int(strat[5:].sum())} <= {2, 3}  # each stratum of 5: 2 or 3 treated
    pairs = pair_matching(["x1"])(clusters, rng).arm
    # optimal pairs on x1 are (0,1), (2,3), ...: exactly one treated in each
    assert pairs.reshape(5, 2).sum(axis=1).tolist() == [1] * 5
    analyse = mixed_model_analysis(adjust=False)
    assert analyse.__name__ == "mixed"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_clusters=3), "n_clusters"),
        (dict(icc=1.0), "icc"),
        (dict(outcome="ordinal"), "outcome"),
        (dict(cluster_size=0), "cluster_size"),
        (dict(cluster_size=(9, 2)), "cluster_size"),
        (dict(allocations={"bad": lambda c, r: np.ones(3)}), "one 0/1 value per cluster"),
        (dict(allocations={}), "at least one"),
    ],
)
def test_design_simulation_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        design_power_simulation(**({"n_trials": 2, "seed": 1} | kwargs))


def test_progress_bar_reports_on_stderr(capsys):
    design_power_simulation(n_clusters=6, cluster_size=5, icc=0.1, effect=0.0, n_covariates=0, n_trials=4,
                            seed=1, chunk_size=2, progress=True)
    err = capsys.readouterr().err
    assert "design power" in err and "2/2" in err


def test_chapter_simulation_accepts_an_analysis_callable(history):
    from scipy import stats

    def one_sided_wald(trial: pd.DataFrame) -> float:
        fit = mixed_model("call_CSAT ~ reason + age + group", trial, groups=["center_ID", "rep_ID"])
        return float(stats.norm.sf(fit.tvalues["group[T.treat]"]))

    kwargs = dict(effect_sizes=[0.0, 1.2], calls_per_rep=[15], assignments=6, month=None, seed=21)
    custom = chapter_power_simulation(history, analysis=one_sided_wald, **kwargs)
    builtin = chapter_power_simulation(history, **kwargs)
    # same samples and assignments; a one-sided 5% Wald test decides like the 90% Wald interval
    np.testing.assert_array_equal(custom.trials.decision, builtin.trials.decision)
    assert custom.trials.estimate.isna().all() and custom.settings["analysis"] == "one_sided_wald"
    assert 0 < builtin.trials.decision.sum() < len(builtin.trials)


@pytest.mark.parametrize("n_jobs", [0, -0.5, 2.5, "2"])
def test_a_worker_count_that_means_nothing_is_named(n_jobs):
    """n_jobs=0 (or --jobs 0) ended in joblib's "n_jobs == 0 in Parallel has no meaning"; the check is made before
    any trial runs, with the argument's name."""
    from crt_widgets.core.parallel import run_tasks

    with pytest.raises(ValueError, match=r"^n_jobs: .*1 or more workers, or -1 for every core"):
        run_tasks(lambda task, rng: task, [1, 2], seed=1, n_jobs=n_jobs)
    with pytest.raises(ValueError, match=r"^n_jobs: "):
        design_power_simulation(n_clusters=8, cluster_size=5, icc=0.05, effect=0.3, n_trials=2, seed=1, n_jobs=n_jobs)
