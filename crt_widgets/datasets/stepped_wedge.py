"""Simulated stepped-wedge trials: clusters with covariates, and individual outcomes for a treatment matrix.

- :func:`simulate_stepped_wedge_clusters`: one row per cluster: ``cluster`` (C01, ...), ``size`` (individuals
  measured per period), ``baseline`` (a baseline outcome level) and ``location`` (rural or urban; urban clusters
  are larger).
- :func:`simulate_stepped_wedge_outcomes`: a cross-sectional sample in every observed cluster-period of a
  clusters x periods treatment matrix, from the nested exchangeable model of Hooper et al. (2016):
  ``y = mean + period effect + theta x + baseline effect + cluster effect + cluster-period effect + error``,
  with total variance 1 split by ``icc`` (two individuals of one cluster-period) and ``cac`` (the correlation
  of a cluster's period means in two periods).

>>> from crt_widgets.datasets import simulate_stepped_wedge_clusters, simulate_stepped_wedge_outcomes
>>> clusters = simulate_stepped_wedge_clusters(6, seed=1)
>>> list(clusters.columns), len(clusters)
(['cluster', 'size', 'baseline', 'location'], 6)
>>> matrix = [[0, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 1], [0, 0, 0], [0, 0, 0]]
>>> y = simulate_stepped_wedge_outcomes(clusters, matrix, effect=0.5, seed=2)
>>> list(y.columns), int(y.groupby("cluster").period.nunique().min())
(['cluster', 'period', 'treatment', 'y'], 3)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.seeds import generator


def simulate_stepped_wedge_clusters(n_clusters: int = 12, seed: int | np.random.Generator | None = None, *,
                                    median_size: float = 20.0, urban_share: float = 0.5) -> pd.DataFrame:
    """Simulate cluster-level covariates for a stepped-wedge trial.

    Parameters
    ----------
    n_clusters : number of clusters (at least 2).
    seed : seed or Generator (same seed, same data).
    median_size : median number of individuals per cluster-period of a rural cluster (urban: twice as many).
    urban_share : probability that a cluster is urban.
    """
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or n_clusters < 2:
        raise ValueError(f"n_clusters: expected a whole number of at least 2, got {n_clusters!r}")
    if not median_size > 0:
        raise ValueError(f"median_size: must be > 0, got {median_size!r}")
    if not 0 <= urban_share <= 1:
        raise ValueError(f"urban_share: must be a probability in [0, 1], got {urban_share!r}")
    rng = generator(seed)
    urban = rng.random(n_clusters) < urban_share
    size = np.maximum(2, np.rint(median_size * np.exp(np.log(2.0) * urban + rng.normal(0, 0.35, n_clusters))))
    baseline = np.round(50 + 5 * urban + rng.normal(0, 8, n_clusters), 1)
    width = max(2, len(str(n_clusters)))
    return pd.DataFrame({
        "cluster": [f"C{i:0{width}d}" for i in range(1, n_clusters + 1)],
        "size": size.astype(int),
        "baseline": baseline,
        "location": pd.Categorical(np.where(urban, "urban", "rural"), categories=["rural", "urban"]),
    })


def simulate_stepped_wedge_outcomes(clusters: pd.DataFrame, treatment: Any, effect: float = 0.0, *,
                                    icc: float = 0.05, cac: float = 0.8, cluster_id: str = "cluster",
                                    size: str | int | Sequence[int] = "size", period_effects: Any = None,
                                    baseline_effect: float = 0.0, mean: float = 0.0,
                                    seed: int | np.random.Generator | None = None) -> pd.DataFrame:
    """Individual outcomes of a cross-sectional multi-period trial (one row per individual).

    Parameters
    ----------
    clusters : one row per cluster, in the order of the rows of ``treatment``.
    treatment : clusters x periods matrix (0 control, a fraction or level treated, NaN not observed).
    effect : the treatment effect ``theta`` (multiplied by the cell's value).
    icc, cac : correlation of two individuals in one cluster-period, and of a cluster's period means in two
        periods (1 = exchangeable); the total variance is 1.
    cluster_id : the column of cluster labels.
    size : individuals per cluster-period: a column of ``clusters``, one number, or one per cluster.
    period_effects : one mean shift per period (default: a linear secular trend of 0.1 per period).
    baseline_effect : change of the outcome per SD of the ``baseline`` column (0: not used).
    mean : the outcome's mean in the first period under control.
    seed : seed or Generator.
    """
    x = np.asarray(treatment, dtype=float)
    if x.ndim != 2 or x.shape[0] != len(clusters):
        raise ValueError(f"treatment: expected a {len(clusters)} x periods matrix (one row per cluster), got shape "
                         f"{x.shape}")
    if cluster_id not in clusters.columns:
        raise ValueError(f"cluster_id: column {cluster_id!r} is not in clusters")
    if not 0 <= icc < 1 or not 0 <= cac <= 1:
        raise ValueError(f"icc must be in [0, 1) and cac in [0, 1], got icc={icc!r}, cac={cac!r}")
    n_clusters, n_periods = x.shape
    if isinstance(size, str):
        if size not in clusters.columns:
            raise ValueError(f"size: column {size!r} is not in clusters")
        m = clusters[size].to_numpy()
    else:
        m = np.broadcast_to(np.asarray(size), (n_clusters,))
    if not np.issubdtype(np.asarray(m).dtype, np.number) or (np.asarray(m) < 1).any() \
            or (np.asarray(m) != np.round(m)).any():
        raise ValueError("size: individuals per cluster-period must be whole numbers of at least 1")
    m = np.asarray(m, dtype=np.int64)
    trend = 0.1 * np.arange(n_periods) if period_effects is None else np.asarray(period_effects, dtype=float)
    if trend.shape != (n_periods,):
        raise ValueError(f"period_effects: expected one value per period ({n_periods}), got shape {trend.shape}")
    rng = generator(seed)
    cluster_effect = rng.normal(0.0, np.sqrt(icc * cac), n_clusters)
    cell_effect = rng.normal(0.0, np.sqrt(icc * (1 - cac)), (n_clusters, n_periods))
    shift = np.zeros(n_clusters)
    if baseline_effect:
        b = clusters["baseline"].to_numpy(dtype=float)
        shift = baseline_effect * (b - b.mean()) / b.std(ddof=1)
    observed = ~np.isnan(x)
    cell_mean = (mean + trend[None, :] + effect * np.nan_to_num(x) + (cluster_effect + shift)[:, None]
                 + cell_effect)
    counts = np.where(observed, m[:, None], 0).ravel()
    rows = np.repeat(np.arange(n_clusters * n_periods), counts)
    ci, pj = np.divmod(rows, n_periods)
    y = cell_mean.ravel()[rows] + rng.normal(0.0, np.sqrt(1 - icc), len(rows))
    return pd.DataFrame({"cluster": clusters[cluster_id].to_numpy()[ci], "period": pj + 1,
                         "treatment": x.ravel()[rows], "y": y})
