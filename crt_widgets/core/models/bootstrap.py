"""Bootstrap confidence intervals for a fixed effect of the nested mixed model.

Two resampling schemes, both refitting :func:`crt_widgets.mixed_model`'s fast engine from
sufficient statistics (no copy of the data per replicate):

- ``method="cluster"`` (default): resample whole outer clusters with replacement *within each
  arm* (a cluster drawn twice enters as two clusters). With few clusters this reflects the
  design's real uncertainty, which lies between clusters.
- ``method="calls"``: Buisson's (2021) bootstrap, resampling rows (calls) with replacement within
  every inner group (representative), optionally ``rows_per_group`` of them (Buisson 2021 draws
  1,200). It keeps the clusters fixed, so it ignores between-cluster uncertainty; it is here to
  reproduce Buisson (2021).

Percentile intervals; replicate ``b`` uses its own seed from ``SeedSequence(seed).spawn``, so the
result depends only on ``seed``, not on ``n_jobs``, the Dask ``client`` or ``chunk_size``.

>>> from crt_widgets.datasets import load_callcenter
>>> res = bootstrap_ci("call_CSAT ~ reason + age + group", load_callcenter("experimental"),
...                    ["center_ID", "rep_ID"], "group[T.treat]", arm="group", n_boot=50, seed=1)
>>> res.ci[0] < res.estimate < res.ci[1]
True
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crt_widgets.core.models import mixed_fast
from crt_widgets.core.models.mixed import _prepare
from crt_widgets.core.parallel import run_tasks, spawn_generators
from crt_widgets.core.seeds import check_seed

METHODS = ("cluster", "calls")


@dataclass(frozen=True, repr=False)
class BootstrapResult:
    """A percentile bootstrap interval: ``estimate`` (from the data), ``ci`` (lower, upper),
    ``draws`` (the replicate estimates; NaN for replicates whose design was degenerate), ``se``
    (SD of the draws), and the settings."""

    term: str
    estimate: float
    ci: tuple[float, float]
    conf_level: float
    method: str
    n_boot: int
    draws: np.ndarray
    n_failed: int

    @property
    def se(self) -> float:
        return float(np.nanstd(self.draws, ddof=1))

    def __repr__(self) -> str:
        return (f"BootstrapResult({self.term}: {self.estimate:.4g}, {self.conf_level:.0%} CI "
                f"[{self.ci[0]:.4g}, {self.ci[1]:.4g}], method={self.method!r}, n_boot={self.n_boot}"
                + (f", {self.n_failed} degenerate replicates" if self.n_failed else "") + ")")


def bootstrap_ci(
    formula: str,
    data: pd.DataFrame,
    groups: str | Sequence[str],
    term: str,
    *,
    method: str = "cluster",
    arm: str | None = None,
    n_boot: int = 1000,
    conf_level: float = 0.95,
    rows_per_group: int | None = None,
    reml: bool = True,
    seed: int = 0,
    n_jobs: int = 1,
    client=None,
    progress: bool = False,
    chunk_size: int = 50,
) -> BootstrapResult:
    """Percentile bootstrap interval for fixed effect ``term`` (a statsmodels/patsy name).

    ``arm``: for ``method="cluster"``, a column constant within outer clusters (the treatment
    arm); clusters are resampled within its levels, keeping the arms' sizes. Without it, all
    clusters are resampled together. ``rows_per_group``: for ``method="calls"``, rows drawn per
    inner group (default: each group's own size).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if int(n_boot) < 10:
        raise ValueError(f"n_boot must be at least 10, got {n_boot}")
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    if rows_per_group is not None and int(rows_per_group) < 1:
        raise ValueError(f"rows_per_group must be positive, got {rows_per_group}")
    outcome, X, names, codes, group_names, frame = _prepare(formula, data, groups)
    if term not in names:
        raise ValueError(f"term {term!r} is not a fixed effect of {formula!r}; terms are {names}")
    column = names.index(term)
    two_level = len(codes) == 2
    order = np.lexsort((codes[-1], codes[0]))  # rows grouped by cluster, then inner group
    X, y = X[order], outcome[1][order]
    outer, inner = codes[0][order], codes[-1][order]
    stats = mixed_fast.nested_stats(X, y, inner, outer if two_level else None)
    fit = mixed_fast.fit_nested(stats, reml=reml)
    params = dict(column=column, reml=reml, start=fit.theta, method=method, two_level=two_level)
    if method == "calls":
        params |= dict(X=X, y=y, inner=inner, outer=outer, shift=stats.shift, rows_per_group=rows_per_group)
    else:
        arms = _arms(data, frame.index, order, arm, outer)
        params |= _cluster_pieces(X, y, outer, inner, stats.shift, two_level) | dict(arms=arms)
    seed = check_seed(seed)  # one checked seed: the replicates' and the tasks' streams both come from it
    seeds = spawn_generators(seed, int(n_boot))
    chunks = [(params, seeds[a: a + chunk_size]) for a in range(0, int(n_boot), chunk_size)]
    draws = np.concatenate(run_tasks(_chunk, chunks, seed=seed, n_jobs=n_jobs, client=client,
                                     progress=progress, desc=f"{method} bootstrap"))
    ok = draws[np.isfinite(draws)]
    lo, hi = np.quantile(ok, [(1 - conf_level) / 2, (1 + conf_level) / 2])
    return BootstrapResult(term=term, estimate=float(fit.beta[column]), ci=(float(lo), float(hi)),
                           conf_level=conf_level, method=method, n_boot=int(n_boot), draws=draws,
                           n_failed=int(draws.size - ok.size))


def _arms(data, rows, order, arm, outer) -> np.ndarray:
    """Arm code of every outer cluster (all zeros without ``arm``)."""
    n_outer = int(outer.max()) + 1
    if arm is None:
        return np.zeros(n_outer, dtype=np.int64)
    if arm not in data.columns:
        raise ValueError(f"arm column {arm!r} is not a column of data")
    arm_code = pd.factorize(data[arm].loc[rows].to_numpy()[order], sort=True)[0]
    per_cluster = np.full(n_outer, -1)
    per_cluster[outer] = arm_code
    if np.any(per_cluster[outer] != arm_code):
        raise ValueError(f"arm column {arm!r} must be constant within every cluster")
    return per_cluster


def _cluster_pieces(X, y, outer, inner, shift, two_level) -> dict:
    """Per-cluster cross products and per-inner-group counts and sums (centred like the fit)."""
    D = np.column_stack([X, y]) - shift
    n_outer = int(outer.max()) + 1
    k = D.shape[1]
    bounds = np.flatnonzero(np.r_[True, np.diff(outer) != 0, True])
    cross = np.empty((n_outer, k, k))
    for a, b in zip(bounds[:-1], bounds[1:]):  # one BLAS product per cluster (rows are grouped)
        cross[outer[a]] = D[a:b].T @ D[a:b]
    level = inner if two_level else outer
    n_level = int(level.max()) + 1
    counts = np.bincount(level, minlength=n_level).astype(float)
    sums = np.column_stack([np.bincount(level, weights=D[:, j], minlength=n_level) for j in range(k)])
    level_outer = np.zeros(n_level, dtype=np.int64)
    level_outer[level] = outer
    # groups are numbered in cluster order (rows sorted by cluster, then group): contiguous ranges
    first = np.searchsorted(level_outer, np.arange(n_outer))
    size = np.bincount(level_outer, minlength=n_outer)
    return dict(cross=cross, counts=counts, sums=sums, first=first, size=size, shift=shift,
                intercept=mixed_fast._intercept_column(X))


def _chunk(task, _rng) -> np.ndarray:
    params, seeds = task
    out = np.empty(len(seeds))
    for i, ss in enumerate(seeds):  # each replicate from its own seed
        rng = np.random.default_rng(ss)
        try:
            stats = _calls_stats(params, rng) if params["method"] == "calls" else _cluster_stats(params, rng)
            if np.linalg.matrix_rank(stats.cross[:-1, :-1]) < stats.n_fe:
                raise np.linalg.LinAlgError
            beta, _, _ = mixed_fast.coefficient_test(stats, params["column"], reml=params["reml"],
                                                     start=params["start"])
            out[i] = beta
        except np.linalg.LinAlgError:  # a resample without one arm or level: no estimate
            out[i] = np.nan
    return out


def _calls_stats(params, rng) -> mixed_fast.NestedStats:
    inner = params["inner"]
    starts = np.flatnonzero(np.r_[True, np.diff(inner) != 0])
    sizes = np.diff(np.r_[starts, inner.size])
    per_group = sizes if params["rows_per_group"] is None else np.full(sizes.size, int(params["rows_per_group"]))
    group_of_draw = np.repeat(np.arange(sizes.size), per_group)
    draws = starts[group_of_draw] + np.floor(rng.random(group_of_draw.size) * sizes[group_of_draw]).astype(np.int64)
    weights = np.bincount(draws, minlength=inner.size).astype(float)
    return mixed_fast.nested_stats(params["X"], params["y"], inner,
                                   params["outer"] if params["two_level"] else None,
                                   weights=weights, shift=params["shift"])


def _cluster_stats(params, rng) -> mixed_fast.NestedStats:
    arms = params["arms"]
    chosen = []
    for a in np.unique(arms):  # a loop over the arms (two, usually)
        members = np.flatnonzero(arms == a)
        chosen.append(members[rng.integers(0, members.size, members.size)])
    chosen = np.concatenate(chosen)
    sizes = params["size"][chosen]
    groups = np.repeat(params["first"][chosen], sizes) + _ranges(sizes)
    new_outer = np.repeat(np.arange(chosen.size), sizes)
    counts = params["counts"][groups]
    return mixed_fast.stats_from_groups(
        int(counts.sum()), params["cross"][chosen].sum(axis=0), counts, params["sums"][groups],
        new_outer if params["two_level"] else None, params["shift"], params["intercept"])


def _ranges(sizes: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s) for s in sizes])`` without the loop."""
    ends = np.cumsum(sizes)
    return np.arange(ends[-1]) - np.repeat(ends - sizes, sizes)
