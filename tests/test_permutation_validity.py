"""The permutation test's size and its interval's coverage, by simulation.

Null outcomes from a random-intercept model; the observed scheme is drawn uniformly from the space,
as the trial would draw it. 1,000 replicates give a Monte Carlo SE of 0.0069 at the 5% level, so the
band below (3.3 SE) separates 5% from 8%.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crt_widgets import ConstrainedDesign, permutation_test
from crt_widgets.core.permutation import simple_space

N_CLUSTERS, M = 16, 15
REPS = 1000
BAND = 3.3 * np.sqrt(0.05 * 0.95 / REPS)


def _clusters(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"cluster": np.arange(1, N_CLUSTERS + 1), "x": rng.normal(size=N_CLUSTERS).round(3),
                         "size": rng.normal(size=N_CLUSTERS).round(3)})


def _space(clusters, n_treat, constrained):
    if constrained:
        design = ConstrainedDesign(clusters, ["x", "size"], n_treat, cluster_id="cluster", cutoff=0.1)
        return design.space, design.cluster_ids
    s = simple_space(clusters["cluster"].to_numpy(), n_treat, np.r_[np.ones(n_treat), np.zeros(N_CLUSTERS - n_treat)].astype(int))
    return s.schemes, s.cluster_ids


def _trial(clusters, rng, effect=0.0, arm=None):
    cl = np.repeat(np.arange(N_CLUSTERS), M)
    b = rng.normal(0, 0.5, N_CLUSTERS)
    x = clusters["x"].to_numpy()
    y = 0.8 * x[cl] + b[cl] + rng.normal(size=len(cl)) + effect * (arm[cl] if arm is not None else 0)
    return pd.DataFrame({"y": y, "cluster": cl + 1, "x": x[cl]})


@pytest.mark.slow
@pytest.mark.parametrize("n_treat,constrained", [(8, True), (8, False), (5, True), (5, False)])
def test_size_is_nominal(n_treat, constrained):
    clusters = _clusters(1)
    schemes, ids = _space(clusters, n_treat, constrained)
    rng = np.random.default_rng(100 + n_treat + constrained)
    observed = rng.integers(len(schemes), size=REPS)
    rejections = 0
    for r in range(REPS):
        data = _trial(clusters, rng)
        result = permutation_test(data, "y", "cluster", schemes, ["x"], cluster_ids=ids, observed=int(observed[r]))
        rejections += result.p_value <= 0.05
    size = rejections / REPS
    assert abs(size - 0.05) < BAND, size


@pytest.mark.slow
def test_interval_covers_the_true_effect():
    clusters = _clusters(2)
    schemes, ids = _space(clusters, 8, True)
    rng = np.random.default_rng(7)
    reps, effect, covered = 400, 0.6, 0
    for _ in range(reps):
        pick = int(rng.integers(len(schemes)))
        arm = schemes.matrix(np.array([pick]))[0]
        data = _trial(clusters, rng, effect, arm)
        r = permutation_test(data, "y", "cluster", schemes, ["x"], cluster_ids=ids, observed=pick, ci=True)
        covered += r.conf_int[0] <= effect <= r.conf_int[1]
    coverage = covered / reps
    assert abs(coverage - 0.95) < 3.3 * np.sqrt(0.95 * 0.05 / reps), coverage
