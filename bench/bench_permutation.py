"""Benchmark of the clustered permutation test. Prints a table.

A space of 1,000,000 schemes (40 clusters, 20 treated, sampled) and 1,000,000 individuals
(25,000 per cluster on average) with two individual-level covariates, for continuous, binary and
count outcomes. Times include validating the data, the outcome regression(s) and, for the CI,
every p-value evaluated by the root finding (one regression with an offset and one pass over the
1,000,000 schemes each; the continuous case is closed-form in delta).

    python bench/bench_permutation.py
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from crt_widgets import permutation_test
from crt_widgets.core.spaces.schemes import sample_schemes

N_CLUSTERS, N_SCHEMES, N_PEOPLE = 40, 1_000_000, 1_000_000


def make_trial(family: str, rng: np.random.Generator):
    schemes, _ = sample_schemes(N_CLUSTERS, N_CLUSTERS // 2, N_SCHEMES + 5_000, rng)
    schemes = schemes.take(np.arange(N_SCHEMES))
    arm = schemes.matrix(np.array([0]))[0]
    cl = rng.integers(N_CLUSTERS, size=N_PEOPLE)
    x1, x2 = rng.normal(size=N_PEOPLE), rng.random(N_PEOPLE)
    eta = -0.5 + 0.3 * x1 + 0.2 * x2 + 0.25 * arm[cl] + rng.normal(0, 0.2, N_CLUSTERS)[cl]
    y = {"binomial": lambda: (rng.random(N_PEOPLE) < 1 / (1 + np.exp(-eta))).astype(float),
         "poisson": lambda: rng.poisson(np.exp(eta)).astype(float),
         "gaussian": lambda: eta + rng.normal(size=N_PEOPLE)}[family]()
    return pd.DataFrame({"y": y, "cluster": cl, "x1": x1, "x2": x2}), schemes


def main() -> None:
    rng = np.random.default_rng(2026)
    print(f"{'case':<46} {'seconds':>8} {'target':>7}  result")
    for family in ("gaussian", "binomial", "poisson"):
        data, schemes = make_trial(family, rng)
        for ci, target in ((False, 2.0), (True, 30.0)):
            t0 = time.perf_counter()
            r = permutation_test(data, "y", "cluster", schemes, ["x1", "x2"], family=family,
                                 cluster_ids=np.arange(N_CLUSTERS), observed=0, ci=ci)
            dt = time.perf_counter() - t0
            what = f"{family}, {'p-value + CI' if ci else 'p-value'}, 1M schemes x 1M people"
            detail = f"p={r.p_value:.4f}" + (f", CI=({r.conf_int[0]:.3f}, {r.conf_int[1]:.3f})" if ci else "")
            print(f"{what:<46} {dt:>8.2f} {target:>7.0f}  {'OK  ' if dt <= target else 'MISS'} {detail}")


if __name__ == "__main__":
    main()
