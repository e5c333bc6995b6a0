"""Design-stage power analysed by the clustered permutation test over each design's own space."""
from __future__ import annotations

import numpy as np
import pytest

from crt_widgets.cli import main
from crt_widgets.core.power.design_simulation import (Randomized, constrained_randomization, design_power_simulation,
                                              pair_matching, permutation_analysis, stratified_randomization)


@pytest.mark.slow
def test_size_is_nominal_for_every_design():
    # 5 designs x 400 null trials: the pooled rejection rate has Monte Carlo SE 0.0049
    r = design_power_simulation(n_clusters=14, cluster_size=15, icc=0.1, effect=0.0, n_trials=400, seed=11,
                                analysis=permutation_analysis())
    pooled = (r.pvalues < 0.05).to_numpy().mean()
    assert abs(pooled - 0.05) < 3.3 * np.sqrt(0.05 * 0.95 / r.pvalues.size), pooled
    assert (r.table["power"] < 0.05 + 3.3 * np.sqrt(0.05 * 0.95 / 400)).all()


def test_designs_report_their_spaces():
    import pandas as pd

    rng = np.random.default_rng(1)
    clusters = pd.DataFrame({"x1": rng.normal(size=10), "x2": rng.normal(size=10)})
    # pairs: 2^5 flips; two strata of 5 with 5 treated in all: 2 and 3 or 3 and 2, C(5, 2) C(5, 3) each way
    for allocate, expected in ((pair_matching(), 2**5), (stratified_randomization("x1", 2), 2 * 10 * 10)):
        drawn = allocate(clusters, np.random.default_rng(2))
        assert isinstance(drawn, Randomized)
        m = drawn.schemes.matrix()
        assert len(m) == expected and (m[drawn.observed] == drawn.arm).all()
    drawn = constrained_randomization(0.1)(clusters, np.random.default_rng(3))
    assert (drawn.schemes.matrix()[drawn.observed] == drawn.arm).all()


def test_reproducible_and_on_the_command_line(capsys):
    a = design_power_simulation(n_clusters=10, cluster_size=10, icc=0.05, effect=0.8, n_trials=20, seed=4,
                                analysis=permutation_analysis())
    b = design_power_simulation(n_clusters=10, cluster_size=10, icc=0.05, effect=0.8, n_trials=20, seed=4,
                                analysis=permutation_analysis(), n_jobs=2, chunk_size=3)
    np.testing.assert_array_equal(a.pvalues.to_numpy(), b.pvalues.to_numpy())
    assert main(["power", "design", "--effect", "0.5", "--icc", "0.05", "--cluster-size", "10", "--n-clusters", "10",
                 "--trials", "10", "--test", "permutation"]) == 0
    assert "permutation" in capsys.readouterr().out
