"""Simulated power of a design as made: its own clusters and constrained space, progress and stopping."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import PAPER_CATEGORICAL, PAPER_COVARIATES

from crt_widgets import ConstrainedDesign
from crt_widgets.core.power.design_simulation import (design_power_simulation, design_space_power, random_allocation,
                                                      simulate_design_trial, space_allocation)


@pytest.fixture(scope="module")
def design():
    from crt_widgets.datasets import load_dickinson

    return ConstrainedDesign(load_dickinson(), PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL, cluster_id="county",
                             seed=12345)


def test_size_under_the_null_is_nominal(design):
    """No effect: both allocations reject about 5% (the permutation test over each one's own space is exact)."""
    res = design_space_power(design, effect=0.0, icc=0.05, cluster_size=20, n_trials=400, seed=3)
    mcse = np.sqrt(0.05 * 0.95 / 400)
    for power in res.table["power"]:
        assert abs(power - 0.05) < 3.3 * mcse


def test_the_design_draws_from_its_own_space(design):
    allocate = space_allocation(design.space.schemes)
    clusters = pd.DataFrame({"x1": np.zeros(16)})
    rows = {tuple(allocate(clusters, np.random.default_rng(s)).arm) for s in range(200)}
    members = {tuple(r) for r in design.space.schemes.matrix()}
    assert rows <= members and len(rows) > 150  # uniform over 1,288 schemes: few repeats in 200 draws
    drawn = allocate(clusters, np.random.default_rng(1))
    np.testing.assert_array_equal(design.space.schemes.matrix(np.array([drawn.observed]))[0], drawn.arm)
    assert int(random_allocation(8)(clusters, np.random.default_rng(0)).sum()) == 8


def test_fixed_clusters_keep_their_covariates_and_explained_share(design):
    X = pd.DataFrame(design.covariate_matrix.raw, columns=[f"x{i + 1}" for i in range(6)])
    res = design_power_simulation(clusters=X, cluster_size=5, icc=0.1, effect=0.2, n_trials=2, seed=1,
                                  allocations={"simple": random_allocation(8)})
    assert res.settings["n_clusters"] == 16 and res.settings["n_covariates"] == 6 and res.settings["fixed_clusters"]
    # covariate_r2 = 1: the random intercept is the covariates' part, the same in every trial
    from crt_widgets.core.power import design_simulation as sim

    fixed = sim._fixed_covariates(X)
    params = dict(n_clusters=16, sizes=np.full(16, 20_000), icc=0.5, effect=0.0, outcome="continuous", baseline=0.0,
                  n_covariates=6, covariate_r2=1.0, fixed_covariates=fixed, fixed_explained=sim._explained(fixed))
    for seed in (1, 2):
        clusters, cluster, y = simulate_design_trial(params, np.random.default_rng(seed))
        np.testing.assert_allclose(clusters[[f"x{i + 1}" for i in range(6)]].to_numpy(), fixed)
        means = np.bincount(cluster, weights=y[:, 0]) / np.bincount(cluster)
        np.testing.assert_allclose(means, np.sqrt(0.5) * params["fixed_explained"], atol=0.03)  # noise sd 0.005
    assert np.std(params["fixed_explained"]) == pytest.approx(1.0)


def test_progress_and_stop_give_the_first_trials_of_the_full_run(design):
    full = design_space_power(design, effect=0.4, icc=0.05, cluster_size=10, n_trials=30, seed=4)
    seen = []
    again = design_space_power(design, effect=0.4, icc=0.05, cluster_size=10, n_trials=30, seed=4,
                               on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(10, 30), (20, 30), (30, 30)]
    pd.testing.assert_frame_equal(again.pvalues, full.pvalues)  # chunk by chunk: the same trials
    chunks_done: list[int] = []
    stop_after_two = design_space_power(design, effect=0.4, icc=0.05, cluster_size=10, n_trials=30, seed=4,
                                        stop=lambda: len(chunks_done) >= 2, on_progress=lambda d, t: chunks_done.append(d))
    assert stop_after_two.settings["stopped"] and stop_after_two.settings["n_trials"] == 20
    assert stop_after_two.settings["n_trials_planned"] == 30 and (stop_after_two.table["n_trials"] == 20).all()
    pd.testing.assert_frame_equal(stop_after_two.pvalues, full.pvalues.iloc[:20])
    with pytest.raises(ValueError, match="stop: the simulation was stopped before its first trials finished"):
        design_space_power(design, effect=0.4, icc=0.05, cluster_size=10, n_trials=30, seed=4, stop=lambda: True)


@pytest.mark.parametrize("kwargs,match", [
    ({"clusters": pd.DataFrame({"x": [1.0, 2.0, 3.0]})}, "clusters: at least 4 clusters"),
    ({"clusters": pd.DataFrame({"x": ["a", "b", "c", "d"]})}, "covariates must be numeric"),
    ({"clusters": pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0]})}, "missing or infinite"),
    ({"clusters": np.zeros((5, 2))}, "clusters: expected a DataFrame"),
    ({"clusters": pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), "n_clusters": 6}, "n_clusters: 6 clusters asked for"),
])
def test_bad_fixed_clusters_are_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        design_power_simulation(n_trials=2, seed=1, **kwargs)


def test_only_two_arm_designs_and_matching_spaces(design):
    from crt_widgets import MultiArmDesign
    from crt_widgets.datasets import load_dickinson

    three = MultiArmDesign(load_dickinson(), ["inciis"], 3, cluster_id="county", size=2000, seed=1)
    with pytest.raises(ValueError, match="design: the simulation of a design's own space is for two-arm designs"):
        design_space_power(three, effect=0.3, icc=0.05, cluster_size=10, n_trials=2)
    with pytest.raises(ValueError, match="space_allocation: the space has 16 clusters, the trial 4"):
        space_allocation(design.space.schemes)(pd.DataFrame({"x1": range(4)}), np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_treat: must be between 1 and 3"):
        random_allocation(4)(pd.DataFrame({"x1": range(4)}), np.random.default_rng(0))
