"""Benchmark of ``crt.gee``: 12 clusters x 100,000 people, per family, time and peak memory.

The whole call is timed (formula, design matrix, fit, the five sandwich corrections). Peak memory is
the largest Python allocation traced by ``tracemalloc`` during the call (numpy registers its arrays
with it) beside the data frame's own size; the process's peak resident set (``resource``) is printed
too. The requirement is under 1 GB: statsmodels' bias-reduced covariance forms an n_i x n_i matrix per
cluster (80 GB for one cluster of 100,000).

    python bench/bench_gee.py [--clusters 12] [--size 100000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
import pandas as pd


def simulate(clusters: int, size: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(clusters), size)
    arm = (np.arange(clusters) % 2)[cluster]
    x = rng.normal(size=cluster.size)
    eta = -0.5 + 0.3 * arm + 0.2 * x + rng.normal(0, 0.3, clusters)[cluster]
    return pd.DataFrame({"cluster": cluster, "arm": arm, "x": x, "y": eta + rng.normal(size=cluster.size),
                         "b": (rng.random(cluster.size) < 1 / (1 + np.exp(-eta))).astype(np.int8),
                         "n": rng.poisson(np.exp(eta)).astype(np.int32)})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=12)
    parser.add_argument("--size", type=int, default=100_000, help="people per cluster")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per family (best reported)")
    args = parser.parse_args(argv)

    from crt_widgets.core.models.gee import gee

    data = simulate(args.clusters, args.size)
    frame_mb = data.memory_usage(deep=True).sum() / 2**20
    rows = []
    for outcome, family in (("y", "gaussian"), ("b", "binomial"), ("n", "poisson")):
        best = np.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fit = gee(f"{outcome} ~ arm + x", data, "cluster", family=family)
            best = min(best, time.perf_counter() - t0)
        tracemalloc.start()
        gee(f"{outcome} ~ arm + x", data, "cluster", family=family)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        estimate = f"arm {fit.params['arm']:.4f} (MD SE {fit.bse['arm']:.4f}), rho {fit.corr_param:.4f}"
        rows.append((family, best, peak, fit.iterations, estimate))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"crt.gee, {args.clusters} clusters x {args.size:,} people ({len(data):,} rows; data frame {frame_mb:.0f} MB)")
    print(f"{'family':<10}{'best s':>8}{'peak MB':>9}{'iter':>6}  estimate")
    for family, seconds, peak, iterations, text in rows:
        print(f"{family:<10}{seconds:>8.2f}{peak:>9.0f}{iterations:>6}  {text}")
    print(f"process peak resident set: {rss:.0f} MB (includes Python, numpy, pandas, the data)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
