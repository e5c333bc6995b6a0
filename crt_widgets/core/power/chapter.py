"""The chapter's power simulation, from historical data, fast.

For every month of historical data (one simulated trial base per month, as in Buisson (2021)) and
every number of calls per representative: sample that many calls with replacement from each
representative; for every within-pair treatment assignment (all ``2^pairs`` of them, or a random
sample), add the effect to the calls of treated centres, cap the outcome, fit the nested mixed
model ``formula + group`` and decide "the effect is positive" when the lower end of the
``conf_level`` interval of the ``group`` coefficient is above 0 (Wald interval of the mixed model,
or Buisson's (2021) percentile bootstrap of calls within representatives). Power is the share of
positive decisions, with its Monte Carlo standard error.

Speed: the sampled calls enter only through per-representative sums and per-centre cross
products, computed once per sample for the untreated and every treated version of the outcome;
each assignment and effect is then a fit from those statistics (milliseconds), never a new pass
over the calls.

>>> from crt_widgets.datasets import simulate_callcenter
>>> hist = simulate_callcenter(20_000, n_months=2, seed=1)
>>> sim = chapter_power_simulation(hist, effect_sizes=[0.0, 2.0], calls_per_rep=[20], seed=1)
>>> sim.table.power.tolist()
[0.0, 1.0]
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from crt_widgets.core.models import mixed_fast
from crt_widgets.core.parallel import run_tasks
from crt_widgets.core.seeds import check_seed

TREATMENT_TERM = "group[T.treat]"


@dataclass(frozen=True, repr=False)
class PowerSimulation:
    """Result of a power simulation: ``table`` (one row per grid cell: power, ``mcse``,
    ``n_trials``) and ``trials`` (one row per simulated trial: estimate, interval, decision).

    The Monte Carlo SE is ``sqrt(p (1 - p) / n_trials)``; trials that share a month's sample are
    not independent, so read it as a lower bound.
    """

    table: pd.DataFrame
    trials: pd.DataFrame
    settings: dict

    def curve(self) -> pd.DataFrame:
        """Power-curve data: effect size by rows, one column per number of calls per representative."""
        return self.table.pivot(index="effect", columns="calls_per_rep", values="power")

    def __repr__(self) -> str:
        return (f"PowerSimulation({len(self.trials)} trials, analysis={self.settings['analysis']!r}, "
                f"conf_level={self.settings['conf_level']})\n{self.table.to_string(index=False)}")


def chapter_power_simulation(
    historical: pd.DataFrame,
    *,
    effect_sizes: Sequence[float] = (0.5, 1.0),
    calls_per_rep: Sequence[int] = (100, 1000),
    formula: str = "call_CSAT ~ reason + age",
    cluster: str = "center_ID",
    rep: str = "rep_ID",
    month: str | None = "month",
    pairs: np.ndarray | Sequence[Sequence] | None = None,
    assignments: str | int = "all",
    cap: float | None = 10.0,
    analysis: str | Callable[[pd.DataFrame], float] = "wald",
    conf_level: float = 0.9,
    n_boot: int = 20,
    samples_per_month: int = 1,
    seed: int = 0,
    n_jobs: int = 1,
    client=None,
    progress: bool = False,
) -> PowerSimulation:
    """Power over a grid of effect sizes and calls per representative (Buisson's (2021) design).

    ``pairs``: (n_pairs, 2) cluster ids randomized within pairs; default: clusters sorted by their
    mean outcome, consecutive ones paired (an odd one out stays control). ``assignments``:
    ``"all"`` within-pair assignments, or an int for that many random ones per sample.
    ``analysis``: ``"wald"`` (mixed-model Wald interval, one fit per trial) or ``"bootstrap"``
    (Buisson's (2021): ``n_boot`` resamples of calls within representatives, percentile interval),
    or a callable given each simulated trial as a DataFrame (the history's columns for the sampled
    calls, the capped outcome, and ``group`` = ``"ctrl"``/``"treat"``) that returns a one-sided
    p-value for "the effect is positive" (e.g. a clustered permutation test); the decision is then
    ``p < (1 - conf_level) / 2``, the same rule as the intervals'. Callables see every trial's
    rows, so they are much slower than the built-in analyses.
    ``month=None`` treats the whole history as one month. Parallel over (month, sample, calls per
    rep) tasks with joblib (``n_jobs``) or Dask (``client``); reproducible by ``seed``.
    """
    prep = _prepare_history(historical, formula, cluster, rep, month, pairs, effect_sizes, calls_per_rep,
                            analysis, conf_level, n_boot, assignments, samples_per_month, cap)
    seed = check_seed(seed)
    tasks = [(prep, m, n, s) for m in range(len(prep["months"])) for n in calls_per_rep
             for s in range(samples_per_month)]
    results = run_tasks(_sample_task, tasks, seed=seed, n_jobs=n_jobs, client=client, progress=progress,
                        desc="power simulation")
    trials = pd.concat(results, ignore_index=True)
    table = (trials.groupby(["effect", "calls_per_rep"], as_index=False)
             .agg(power=("decision", "mean"), n_trials=("decision", "size")))
    table["mcse"] = np.sqrt(table.power * (1 - table.power) / table.n_trials)
    settings = dict(formula=formula, analysis=getattr(analysis, "__name__", analysis), conf_level=conf_level, n_boot=n_boot, cap=cap,
                    pairs=prep["pair_ids"].tolist(), seed=seed)
    return PowerSimulation(table=table[["effect", "calls_per_rep", "power", "mcse", "n_trials"]],
                           trials=trials, settings=settings)


def _prepare_history(data, formula, cluster, rep, month, pairs, effect_sizes, calls_per_rep, analysis,
                     conf_level, n_boot, assignments, samples_per_month, cap):
    """Validate once; the design matrix of the history, sorted by (month, cluster, rep)."""
    if not isinstance(data, pd.DataFrame) or len(data) == 0:
        raise ValueError("historical must be a non-empty DataFrame")
    for name, col in (("cluster", cluster), ("rep", rep)) + ((("month", month),) if month else ()):
        if col not in data.columns:
            raise ValueError(f"{name} column {col!r} is not a column of historical")
    if not callable(analysis) and analysis not in ("wald", "bootstrap"):
        raise ValueError(f"analysis must be 'wald', 'bootstrap' or a callable, got {analysis!r}")
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    if not len(effect_sizes) or not len(calls_per_rep) or min(int(n) for n in calls_per_rep) < 1:
        raise ValueError("effect_sizes and calls_per_rep must be non-empty, calls_per_rep positive")
    if analysis == "bootstrap" and int(n_boot) < 10:
        raise ValueError(f"n_boot must be at least 10 for a bootstrap interval, got {n_boot}")
    if int(samples_per_month) < 1:
        raise ValueError(f"samples_per_month must be at least 1, got {samples_per_month}")
    # validate the formula against the data with the mixed model's own checks
    from crt_widgets.core.models.mixed import _prepare

    outcome, X, names, codes, _, frame = _prepare(formula, data, [cluster, rep])
    rows = frame.index
    clusters = data[cluster].loc[rows].to_numpy()
    cluster_ids = np.unique(clusters)
    pair_ids = _pairs(pairs, cluster_ids, clusters, outcome[1])
    cluster_code = np.searchsorted(cluster_ids, clusters)
    months_raw = data[month].loc[rows].to_numpy() if month else np.zeros(len(rows))
    months, month_code = np.unique(months_raw, return_inverse=True)
    order = np.lexsort((codes[1], cluster_code, month_code))
    pair_code = np.searchsorted(cluster_ids, pair_ids)  # (n_pairs, 2) cluster codes
    n_pairs = len(pair_code)
    if assignments == "all":
        if n_pairs > 16:
            raise ValueError(f"{n_pairs} pairs give 2^{n_pairs} assignments; pass assignments=<int> to sample some")
        bits = np.array(list(itertools.product([0, 1], repeat=n_pairs)), dtype=int).reshape(-1, n_pairs)
    elif isinstance(assignments, (int, np.integer)) and assignments >= 1:
        bits = None
    else:
        raise ValueError(f"assignments must be 'all' or a positive int, got {assignments!r}")
    intercept = mixed_fast._intercept_column(X)
    if intercept is None:
        raise ValueError(f"formula {formula!r} needs an intercept for the power simulation")
    y = outcome[1]
    return dict(
        X=X[order], y=y[order], month=month_code[order], cluster=cluster_code[order], rep=codes[1][order],
        months=months, n_clusters=len(cluster_ids), pair_code=pair_code, pair_ids=pair_ids, bits=bits,
        n_assign=None if bits is not None else int(assignments), effects=np.asarray(effect_sizes, float),
        shift=np.r_[X.mean(axis=0), 0.0, y.mean()], intercept=intercept, analysis=analysis,
        conf_level=conf_level, n_boot=int(n_boot), cap_value=cap, names=names,
        frame=data.loc[rows[order]].reset_index(drop=True) if callable(analysis) else None, outcome=outcome[0],
        cluster_name=cluster,
    )


def _pairs(pairs, cluster_ids, clusters, y) -> np.ndarray:
    if pairs is None:
        means = pd.Series(y).groupby(clusters).mean().reindex(cluster_ids).to_numpy()
        ranked = cluster_ids[np.argsort(means, kind="stable")]
        n_pairs = len(ranked) // 2
        return ranked[: 2 * n_pairs].reshape(n_pairs, 2)
    arr = np.asarray(pairs)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"pairs must have shape (n_pairs, 2), got {arr.shape}")
    missing = set(arr.ravel().tolist()) - set(cluster_ids.tolist())
    if missing:
        raise ValueError(f"pairs name clusters not in the data: {sorted(missing)}")
    if len(set(arr.ravel().tolist())) != arr.size:
        raise ValueError("pairs must not repeat a cluster")
    return arr


def _sample_task(task, rng: np.random.Generator) -> pd.DataFrame:
    prep, month_index, n_calls, sample_index = task
    rows = np.flatnonzero(prep["month"] == month_index)
    sample = _sample_down(rows, prep["rep"][rows], int(n_calls), rng)
    bits = prep["bits"]
    if bits is None:
        bits = rng.integers(0, 2, size=(prep["n_assign"], len(prep["pair_code"])))
    treated = _treated_clusters(bits, prep["pair_code"], prep["n_clusters"])  # (A, C) bool
    if callable(prep["analysis"]):
        est, lo, hi, decision = _callable_decisions(prep, sample, treated)
    else:
        est, lo, hi = _SamplePieces(prep, sample).intervals(treated, rng)
        decision = lo > 0
    A, E = treated.shape[0], len(prep["effects"])
    return pd.DataFrame({
        "month": np.repeat(prep["months"][month_index], A * E),
        "sample": sample_index,
        "calls_per_rep": int(n_calls),
        "assignment": np.repeat(np.arange(A), E),
        "effect": np.tile(prep["effects"], A),
        "estimate": est.ravel(), "lower": lo.ravel(), "upper": hi.ravel(),
        "decision": decision.ravel().astype(int),
    })


def _callable_decisions(prep: dict, sample: np.ndarray, treated: np.ndarray):
    """Materialise every trial of one sample and ask the user's analysis for a p-value."""
    base = prep["frame"].iloc[sample].reset_index(drop=True)
    cluster = prep["cluster"][sample]
    y = base[prep["outcome"]].to_numpy(float)
    cap = prep["cap_value"]
    A, E = treated.shape[0], len(prep["effects"])
    pvalues = np.empty((A, E))
    for a in range(A):  # one user analysis per trial: the loop is the point of a callable
        g = treated[a][cluster]
        for e, effect in enumerate(prep["effects"]):
            shifted = np.where(g, y + effect, y)
            trial = base.assign(**{prep["outcome"]: np.minimum(shifted, cap) if cap is not None else shifted,
                                   "group": np.where(g, "treat", "ctrl")})
            pvalues[a, e] = float(prep["analysis"](trial))
    nan = np.full((A, E), np.nan)
    return nan, nan, nan, pvalues < (1 - prep["conf_level"]) / 2


def _sample_down(rows: np.ndarray, rep_of_row: np.ndarray, n_calls: int, rng) -> np.ndarray:
    """``n_calls`` rows with replacement from every rep (rows are sorted by rep), vectorised."""
    starts = np.flatnonzero(np.r_[True, np.diff(rep_of_row) != 0])
    sizes = np.diff(np.r_[starts, rows.size])
    offsets = np.floor(rng.random((starts.size, n_calls)) * sizes[:, None]).astype(np.int64)
    return rows[(starts[:, None] + offsets).ravel()]


def _treated_clusters(bits: np.ndarray, pair_code: np.ndarray, n_clusters: int) -> np.ndarray:
    treated = np.zeros((bits.shape[0], n_clusters), dtype=bool)
    chosen = pair_code[np.arange(pair_code.shape[0])[None, :], bits]  # (A, pairs): the treated member
    np.put_along_axis(treated, chosen, True, axis=1)
    return treated


class _SamplePieces:
    """Per-rep sums and per-cluster cross products of one sample, for every outcome version."""

    def __init__(self, prep: dict, sample: np.ndarray):
        self.prep = prep
        self.sample = sample
        X = prep["X"][sample]
        y = prep["y"][sample]
        cap = prep["cap_value"]
        versions = [y] + [np.minimum(y + e, cap) if cap is not None else y + e for e in prep["effects"]]
        self.p = X.shape[1]
        shift = prep["shift"]
        # columns: X (centred but the intercept), then one centred outcome per version
        base_shift = shift[: self.p].copy()
        base_shift[prep["intercept"]] = 0.0
        self.D = np.column_stack([X - base_shift, *(v - shift[-1] for v in versions)])
        self.rep = prep["rep"][sample]
        self.cluster = prep["cluster"][sample]

    def statistics(self, weights: np.ndarray | None = None):
        D, rep, cluster = self.D, self.rep, self.cluster
        w = np.ones(len(D)) if weights is None else weights
        rep_codes, rep_index = np.unique(rep, return_inverse=True)
        n_rep = rep_codes.size
        counts = np.bincount(rep_index, weights=w, minlength=n_rep)
        sums = np.column_stack([np.bincount(rep_index, weights=w * D[:, j], minlength=n_rep) for j in range(D.shape[1])])
        rep_cluster = np.zeros(n_rep, dtype=np.int64)
        rep_cluster[rep_index] = cluster
        # rows are sorted by cluster: one product per cluster (a handful of clusters). einsum,
        # not BLAS: multithreaded BLAS on these thin matrices is 10x slower on a busy machine
        bounds = np.flatnonzero(np.r_[True, np.diff(cluster) != 0, True])
        C = self.prep["n_clusters"]
        cross = np.zeros((C, D.shape[1], D.shape[1]))
        for a, b in zip(bounds[:-1], bounds[1:]):
            cross[cluster[a]] = np.einsum("ij,ik->jk", D[a:b] * w[a:b, None], D[a:b])
        keep = counts > 0
        return counts[keep], sums[keep], rep_cluster[keep], cross

    def fit_all(self, treated: np.ndarray, stats, start=None) -> tuple[np.ndarray, np.ndarray, list]:
        """Estimate and SE of the treatment effect for every assignment x effect."""
        counts, sums, rep_cluster, cross = stats
        p = self.p
        A, E = treated.shape[0], len(self.prep["effects"])
        est, se = np.empty((A, E)), np.empty((A, E))
        thetas = []
        shift = np.r_[self.prep["shift"][:p], 0.0, self.prep["shift"][-1]]
        shift[self.prep["intercept"]] = 0.0
        n_obs = int(round(counts.sum()))
        k = p + 2
        for a in range(A):  # loops over assignments and effects: each a fit from statistics only
            g_cluster = treated[a].astype(float)
            g_rep = g_cluster[rep_cluster]
            for e in range(E):
                y_col = np.where(g_rep > 0, p + 1 + e, p)  # the rep's outcome version
                S = np.empty((counts.size, k))
                S[:, :p] = sums[:, :p]
                S[:, p] = g_rep * counts
                S[:, p + 1] = sums[np.arange(counts.size), y_col]
                M = _assemble_cross(cross, g_cluster, p, e, self.prep["intercept"])
                stats = mixed_fast.stats_from_groups(n_obs, M, counts, S, rep_cluster, shift, self.prep["intercept"])
                b, s, fit = mixed_fast.coefficient_test(stats, p, start=start)
                est[a, e], se[a, e] = b, s
                thetas.append(fit.theta)
        return est, se, thetas

    def intervals(self, treated: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        level = self.prep["conf_level"]
        stats = self.statistics()
        est, se, thetas = self.fit_all(treated, stats)
        if self.prep["analysis"] == "wald":
            q = sps.norm.ppf(0.5 + level / 2)
            return est, est - q * se, est + q * se
        start = np.median(np.array(thetas), axis=0)
        boot = np.empty((self.prep["n_boot"], *est.shape))
        for b in range(self.prep["n_boot"]):  # Buisson's (2021) bootstrap: calls resampled within reps
            weights = _within_group_weights(self.rep, rng)
            boot[b] = self.fit_all(treated, self.statistics(weights), start=start)[0]
        lo, hi = np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2], axis=0)
        return est, lo, hi


def _assemble_cross(cross: np.ndarray, g: np.ndarray, p: int, e: int, intercept: int) -> np.ndarray:
    """Total cross products of [X, g, y_version] from per-cluster blocks (g constant in a cluster).

    Control clusters contribute their untreated outcome, treated ones outcome version ``e``; every
    product with ``g`` is a sum over treated rows, i.e. the treated clusters' intercept row.
    """
    k = p + 2
    ctrl = cross[g == 0].sum(axis=0)
    trt = cross[g > 0].sum(axis=0)
    y0, ye = p, p + 1 + e
    M = np.empty((k, k))
    M[:p, :p] = ctrl[:p, :p] + trt[:p, :p]
    M[:p, p] = M[p, :p] = trt[intercept, :p]
    M[p, p] = trt[intercept, intercept]
    M[:p, p + 1] = M[p + 1, :p] = ctrl[:p, y0] + trt[:p, ye]
    M[p, p + 1] = M[p + 1, p] = trt[intercept, ye]
    M[p + 1, p + 1] = ctrl[y0, y0] + trt[ye, ye]
    return M


def _within_group_weights(group: np.ndarray, rng) -> np.ndarray:
    """Multinomial counts: each group's rows resampled with replacement, group sizes kept."""
    starts = np.flatnonzero(np.r_[True, np.diff(group) != 0])
    sizes = np.diff(np.r_[starts, group.size])
    draws = np.repeat(starts, sizes) + np.floor(rng.random(group.size) * np.repeat(sizes, sizes)).astype(np.int64)
    return np.bincount(draws, minlength=group.size).astype(float)
