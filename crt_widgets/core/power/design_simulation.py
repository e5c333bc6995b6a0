"""Design-stage power by simulation: which allocation method and analysis give the most power?

Each simulated trial draws cluster-level covariates, cluster sizes and a random intercept of
which the covariates explain a share ``covariate_r2``; individual outcomes (continuous, binary or
count) follow a random-intercept model with the given ICC. Every allocation method then randomizes
the *same* simulated clusters (common random numbers, so differences between methods are not
noise between populations), the treatment effect is added, and the analysis returns a p-value.
Li et al. (2016, Stat Med 35:1565; 2017, Stat Med 36:3791) found that constrained randomization
analysed with an adjusted permutation test gains power over simple randomization; this tool lets
users see that for their own trial.

Allocation methods are callables ``(clusters: DataFrame, rng) -> 0/1 array`` (``clusters`` holds
the covariates ``x1..xq`` and ``size``), or ``-> Randomized`` when they also know their randomization
space (which the permutation-test analysis then uses); analyses are callables ``(individuals:
DataFrame, clusters: DataFrame) -> p-value`` (``individuals`` has ``cluster``, ``y``, ``treat``;
``clusters.attrs["randomization"]`` holds the ``Randomized`` when there is one).

>>> res = design_power_simulation(n_clusters=12, cluster_size=20, icc=0.05, effect=0.0, n_trials=20, seed=1)
>>> list(res.table.allocation)
['simple', 'stratified', 'pair-matched', 'constrained q=0.3', 'constrained q=0.1']
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.special import expit

from crt_widgets.core.models import mixed_fast
from crt_widgets.core.parallel import run_tasks, spawn_generators
from crt_widgets.core.permutation.space import simple_space
from crt_widgets.core.permutation.test import permutation_test
from crt_widgets.core.randomization.constrained import ConstrainedDesign
from crt_widgets.core.randomization.matching import MatchedDesign, optimal_match
from crt_widgets.core.randomization.protocol import Design
from crt_widgets.core.seeds import check_seed

OUTCOMES = ("continuous", "binary", "count")


@dataclass(frozen=True, eq=False)
class Randomized:
    """An allocation with the space it was drawn from (``schemes`` over the clusters, ``observed`` row)."""

    arm: np.ndarray
    schemes: object  # crt_widgets.core.spaces.schemes.SchemeSet
    observed: int

    @classmethod
    def drawn(cls, design: Design) -> "Randomized":
        """Draw from a real two-arm design (its own seed): the allocation and the design's space."""
        allocation = design.draw()
        space = allocation.to_permutation_space()
        return cls(space.chosen_scheme.astype(int), space.schemes, space.chosen)


Allocation = Callable[[pd.DataFrame, np.random.Generator], "np.ndarray | Randomized"]
Analysis = Callable[[pd.DataFrame, pd.DataFrame], float]


def _design_seed(rng: np.random.Generator) -> int:
    """A design's seed from the trial's stream, so each simulated trial randomizes reproducibly."""
    return int(rng.integers(2**63 - 1))


# ---------------------------------------------------------------- allocation methods
def simple_randomization(clusters: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Half the clusters (rounded down) treated, chosen completely at random.

    >>> int(simple_randomization(pd.DataFrame({"x1": range(6)}), np.random.default_rng(0)).sum())
    3
    """
    n = len(clusters)
    treat = np.zeros(n, dtype=int)
    treat[rng.permutation(n)[: n // 2]] = 1
    return treat


def stratified_randomization(covariate: str = "x1", n_strata: int = 2, size: int = 20_000) -> Allocation:
    """Strata by quantiles of ``covariate``; each stratum balanced exactly (half treated, an odd stratum
    one more or one fewer, the total half): :class:`~crt_widgets.core.randomization.constrained.ConstrainedDesign`
    with ``stratify`` and no covariate constraint, the design a user would declare.

    >>> alloc = stratified_randomization("x1", 2)
    >>> alloc(pd.DataFrame({"x1": [0, 1, 2, 3, 10, 11, 12, 13]}), np.random.default_rng(0)).arm.reshape(2, 4).sum(axis=1).tolist()
    [2, 2]
    """
    def allocate(clusters: pd.DataFrame, rng: np.random.Generator) -> Randomized:
        if covariate not in clusters.columns:
            raise ValueError(f"stratification covariate {covariate!r} is not a cluster column")
        ranks = clusters[covariate].rank(method="first").to_numpy() - 1
        table = clusters.assign(stratum=np.floor(ranks * n_strata / len(clusters)).astype(int))
        design = ConstrainedDesign(table, ["stratum"], len(clusters) // 2, categorical=["stratum"], stratify=["stratum"],
                                   cutoff=1.0, size=size, seed=_design_seed(rng))
        return Randomized.drawn(design)

    allocate.__name__ = f"stratified_{covariate}_{n_strata}"
    return allocate


def pair_matching(covariates: Sequence[str] | None = None) -> Allocation:
    """Optimal pairs on the covariates (:func:`~crt_widgets.core.randomization.matching.optimal_match`, minimum
    total distance) randomized within pairs (:class:`~crt_widgets.core.randomization.matching.MatchedDesign`);
    with an odd number of clusters the one left over gets a coin."""
    def allocate(clusters: pd.DataFrame, rng: np.random.Generator) -> Randomized:
        cols = list(covariates) if covariates else [c for c in clusters.columns if c.startswith("x")]
        return Randomized.drawn(MatchedDesign(optimal_match(clusters, cols), seed=_design_seed(rng)))

    allocate.__name__ = "pair_matching"
    return allocate


def constrained_randomization(cutoff: float = 0.1, covariates: Sequence[str] | None = None, metric: str = "l2",
                              size: int = 20_000) -> Allocation:
    """Covariate-constrained randomization (:class:`~crt_widgets.core.randomization.constrained.ConstrainedDesign`):
    among all (or ``size`` sampled) half/half schemes, keep the best ``cutoff`` share by balance
    score on the covariates (default ``x1..xq``) and draw one; its seed comes from ``rng``."""
    def allocate(clusters: pd.DataFrame, rng: np.random.Generator) -> Randomized:
        cols = list(covariates) if covariates else [c for c in clusters.columns if c.startswith("x")]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small-space advice is for a real trial, not each simulated one
            design = ConstrainedDesign(clusters, covariates=cols, n_treat=len(clusters) // 2, cutoff=cutoff,
                                       metric=metric, size=size, seed=_design_seed(rng))
            return Randomized.drawn(design)

    allocate.__name__ = f"constrained_{cutoff:g}"
    return allocate


def default_allocations(n_covariates: int = 2) -> dict[str, Allocation]:
    """Simple randomization, stratification on ``x1`` (2 strata), pair matching on all covariates,
    and constrained randomization at cutoffs 0.3 and 0.1 (simple only when there are no covariates)."""
    if n_covariates == 0:
        return {"simple": simple_randomization}
    return {"simple": simple_randomization, "stratified": stratified_randomization("x1", 2),
            "pair-matched": pair_matching(), "constrained q=0.3": constrained_randomization(0.3),
            "constrained q=0.1": constrained_randomization(0.1)}


# ---------------------------------------------------------------- analyses
def mixed_model_analysis(adjust: bool = True) -> Analysis:
    """Random-intercept LMM ``y ~ treat (+ covariates)`` by REML (fast engine); t test of ``treat``
    on ``clusters - 2 - covariates`` degrees of freedom (the between-cluster df, which keeps the
    size of the test with few clusters where the Wald z test is liberal)."""
    def analyse(individuals: pd.DataFrame, clusters: pd.DataFrame) -> float:
        cols = [c for c in clusters.columns if c.startswith("x")] if adjust else []
        cl = individuals["cluster"].to_numpy()
        X = np.column_stack([np.ones(len(cl)), individuals["treat"].to_numpy(float),
                             *(clusters[c].to_numpy(float)[cl] for c in cols)])
        stats = mixed_fast.nested_stats(X, individuals["y"].to_numpy(float), cl, None)
        est, se, _ = mixed_fast.coefficient_test(stats, 1)
        df = max(len(clusters) - 2 - len(cols), 1)
        return float(2 * sps.t.sf(abs(est / se), df))

    analyse.__name__ = "mixed_adjusted" if adjust else "mixed"
    return analyse


def cluster_level_analysis(adjust: bool = True) -> Analysis:
    """Least squares on cluster means ``mean(y) ~ treat (+ covariates)``, t test of ``treat``."""
    def analyse(individuals: pd.DataFrame, clusters: pd.DataFrame) -> float:
        cl = individuals["cluster"].to_numpy()
        means = np.bincount(cl, weights=individuals["y"].to_numpy(float)) / np.bincount(cl)
        cols = [c for c in clusters.columns if c.startswith("x")] if adjust else []
        X = np.column_stack([np.ones(len(means)), clusters["treat"].to_numpy(float),
                             *(clusters[c].to_numpy(float) for c in cols)])
        beta, *_ = np.linalg.lstsq(X, means, rcond=None)
        df = len(means) - X.shape[1]
        resid = means - X @ beta
        cov = (resid @ resid / df) * np.linalg.inv(X.T @ X)
        return float(2 * sps.t.sf(abs(beta[1] / np.sqrt(cov[1, 1])), df))

    analyse.__name__ = "cluster_level_adjusted" if adjust else "cluster_level"
    return analyse


def permutation_analysis(adjust: bool = True, family: str | None = None, size: int = 5_000) -> Analysis:
    """The clustered permutation test (:func:`crt_widgets.permutation_test`) over the space the
    allocation was drawn from (constrained, stratified with its realised counts per stratum, pairs);
    for a method that does not report its space (simple randomization, or a user's own method), over
    the simple space with the same number treated, enumerated when small and else ``size`` sampled:
    a valid test for simple randomization, conservative for a restricted one. ``family`` defaults
    from the outcome (binary 0/1, counts, else continuous)."""
    def analyse(individuals: pd.DataFrame, clusters: pd.DataFrame) -> float:
        cols = [c for c in clusters.columns if c.startswith("x")] if adjust else []
        data = individuals.assign(**{c: clusters[c].to_numpy(float)[individuals["cluster"].to_numpy()] for c in cols})
        y = individuals["y"].to_numpy()
        fam = family or ("binomial" if np.isin(y, (0, 1)).all() else
                         "poisson" if (y >= 0).all() and (y == np.round(y)).all() and not np.isin(y, (0, 1)).all()
                         and individuals.attrs.get("outcome") == "count" else "gaussian")
        randomized = clusters.attrs.get("randomization")
        ids = np.arange(len(clusters))
        arm = clusters["treat"].to_numpy(int)
        if randomized is not None:
            space, observed = randomized.schemes, randomized.observed
        else:
            s = simple_space(ids, int(arm.sum()), arm, size=size, seed=int(arm @ (2 ** np.arange(len(arm)) % 1_000_003)))
            space, observed = s.schemes, s.observed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = permutation_test(data, "y", "cluster", space, cols, family=fam, cluster_ids=ids, observed=observed)
        return result.p_value

    analyse.__name__ = "permutation_adjusted" if adjust else "permutation"
    return analyse


# ---------------------------------------------------------------- the simulation
@dataclass(frozen=True, repr=False)
class DesignPower:
    """Power of each allocation method (``table``: power, ``mcse``, ``n_trials``) and the
    per-trial p-values (``pvalues``: one column per allocation method)."""

    table: pd.DataFrame
    pvalues: pd.DataFrame
    settings: dict

    def __repr__(self) -> str:
        s = self.settings
        return (f"DesignPower({s['n_trials']} trials, {s['n_clusters']} clusters, ICC={s['icc']}, "
                f"effect={s['effect']}, {s['outcome']}, analysis={s['analysis']})\n{self.table.to_string(index=False)}")


def design_power_simulation(
    *,
    n_clusters: int = 20,
    cluster_size: int | tuple[int, int] | Sequence[int] = 50,
    icc: float = 0.05,
    effect: float = 0.3,
    outcome: str = "continuous",
    baseline: float | None = None,
    n_covariates: int = 2,
    covariate_r2: float = 0.5,
    allocations: Mapping[str, Allocation] | None = None,
    analysis: Analysis | None = None,
    n_trials: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    n_jobs: int = 1,
    client=None,
    progress: bool = False,
    chunk_size: int = 25,
) -> DesignPower:
    """Power of each allocation method for a two-arm CRT, by simulation.

    ``cluster_size``: an int (equal sizes), ``(low, high)`` (uniform integers, varying sizes), or
    one size per cluster. ``effect``: mean difference in SD units of the total variance
    (continuous), log odds ratio (binary, ``baseline`` = control proportion, default 0.3) or log
    rate ratio (count, ``baseline`` = control mean, default 2). ICC: of the outcome (continuous)
    or on the latent scale (binary: pi^2/3 residual; count: log scale, residual 1).
    ``analysis``: default :func:`mixed_model_analysis` (adjusted for the covariates) for continuous
    outcomes, :func:`cluster_level_analysis` (adjusted) for binary and count ones. Trials run in
    chunks of ``chunk_size`` through joblib (``n_jobs``) or Dask (``client``); each trial's
    random numbers come from its own spawned seed, so results do not depend on workers or chunks.
    """
    sizes = _check(n_clusters, cluster_size, icc, outcome, n_covariates, covariate_r2, n_trials, alpha)
    seed = check_seed(seed)  # recorded in the result's settings
    allocations = dict(allocations) if allocations is not None else default_allocations(int(n_covariates))
    if not allocations:
        raise ValueError("allocations must name at least one allocation method")
    if analysis is None:
        analysis = mixed_model_analysis(True) if outcome == "continuous" else cluster_level_analysis(True)
    if baseline is None:
        baseline = {"continuous": 0.0, "binary": 0.3, "count": 2.0}[outcome]
    params = dict(n_clusters=int(n_clusters), sizes=sizes, icc=float(icc), effect=float(effect), outcome=outcome,
                  baseline=float(baseline), n_covariates=int(n_covariates), covariate_r2=float(covariate_r2),
                  allocations=allocations, analysis=analysis)
    seeds = spawn_generators(seed, n_trials)
    chunks = [(params, list(range(a, min(a + chunk_size, n_trials))), seeds[a: a + chunk_size])
              for a in range(0, n_trials, chunk_size)]
    results = run_tasks(_chunk, chunks, seed=seed, n_jobs=n_jobs, client=client, progress=progress,
                        desc="design power")
    pvalues = pd.DataFrame(np.vstack(results), columns=list(allocations))
    pvalues.index.name = "trial"
    power = (pvalues < alpha).mean()
    table = pd.DataFrame({"allocation": list(allocations), "power": power.to_numpy(),
                          "mcse": np.sqrt(power.to_numpy() * (1 - power.to_numpy()) / n_trials),
                          "n_trials": n_trials})
    settings = {k: v for k, v in params.items() if k not in ("allocations", "analysis", "sizes")}
    settings |= dict(n_trials=n_trials, alpha=alpha, seed=seed, analysis=getattr(analysis, "__name__", str(analysis)),
                     cluster_size=cluster_size)
    return DesignPower(table=table, pvalues=pvalues, settings=settings)


def simulate_design_trial(params: dict, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One simulated population: cluster table (``x1..xq``, ``size``), and every individual's
    cluster index and outcome under control and under treatment (common random numbers)."""
    n, q, outcome = params["n_clusters"], params["n_covariates"], params["outcome"]
    sizes = params["sizes"]
    sizes = rng.integers(sizes[0], sizes[1] + 1, n) if isinstance(sizes, tuple) else np.asarray(sizes)
    X = rng.standard_normal((n, q))
    icc = params["icc"]
    residual_var = {"continuous": 1.0 - icc, "binary": np.pi**2 / 3, "count": 1.0}[outcome]
    between_var = icc if outcome == "continuous" else icc * residual_var / (1.0 - icc)
    explained = X.sum(axis=1) / np.sqrt(q) if q else np.zeros(n)
    r2 = params["covariate_r2"] if q else 0.0
    u = np.sqrt(between_var) * (np.sqrt(r2) * explained + np.sqrt(1.0 - r2) * rng.standard_normal(n))
    cluster = np.repeat(np.arange(n), sizes)
    effect, base = params["effect"], params["baseline"]
    if outcome == "continuous":
        y0 = base + u[cluster] + rng.normal(0.0, np.sqrt(residual_var), cluster.size)
        y1 = y0 + effect
    elif outcome == "binary":
        v = rng.random(cluster.size)
        eta = np.log(base / (1 - base)) + u[cluster]
        y0, y1 = (v < expit(eta)).astype(float), (v < expit(eta + effect)).astype(float)
    else:
        v = rng.random(cluster.size)
        mu = base * np.exp(u[cluster])
        y0, y1 = sps.poisson.ppf(v, mu), sps.poisson.ppf(v, mu * np.exp(effect))
    clusters = pd.DataFrame(X, columns=[f"x{i + 1}" for i in range(q)])
    clusters["size"] = sizes
    return clusters, cluster, np.column_stack([y0, y1])


def _chunk(task, _rng) -> np.ndarray:
    params, trials, seeds = task
    out = np.empty((len(trials), len(params["allocations"])))
    for row, ss in enumerate(seeds):  # one trial per spawned seed: results independent of chunking
        rng = np.random.default_rng(ss)
        clusters, cluster, y = simulate_design_trial(params, rng)
        for col, allocate in enumerate(params["allocations"].values()):
            drawn = allocate(clusters, rng)
            treat = np.asarray(drawn.arm if isinstance(drawn, Randomized) else drawn).astype(int)
            if treat.shape != (len(clusters),) or not set(np.unique(treat)) <= {0, 1}:
                raise ValueError("an allocation method must return one 0/1 value per cluster")
            individuals = pd.DataFrame({"cluster": cluster, "treat": treat[cluster],
                                        "y": y[np.arange(cluster.size), treat[cluster]]})
            individuals.attrs["outcome"] = params["outcome"]
            table = clusters.assign(treat=treat)
            if isinstance(drawn, Randomized):
                table.attrs["randomization"] = drawn
            out[row, col] = params["analysis"](individuals, table)
    return out


def _check(n_clusters, cluster_size, icc, outcome, n_covariates, covariate_r2, n_trials, alpha):
    if int(n_clusters) < 4:
        raise ValueError(f"n_clusters must be at least 4, got {n_clusters}")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    if not 0.0 <= icc < 1.0:
        raise ValueError(f"icc must be in [0, 1), got {icc}")
    if int(n_covariates) < 0:
        raise ValueError(f"n_covariates must be non-negative, got {n_covariates}")
    if not 0.0 <= covariate_r2 <= 1.0:
        raise ValueError(f"covariate_r2 must be in [0, 1], got {covariate_r2}")
    if int(n_trials) < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if isinstance(cluster_size, (int, np.integer)):
        if cluster_size < 1:
            raise ValueError(f"cluster_size must be at least 1, got {cluster_size}")
        return np.full(int(n_clusters), int(cluster_size))
    sizes = tuple(int(s) for s in cluster_size)
    if len(sizes) == 2 and len(sizes) != int(n_clusters):
        if not 1 <= sizes[0] <= sizes[1]:
            raise ValueError(f"cluster_size range must be (low, high) with 1 <= low <= high, got {cluster_size}")
        return sizes
    if len(sizes) != int(n_clusters) or min(sizes) < 1:
        raise ValueError(f"cluster_size must be an int, (low, high), or {n_clusters} positive sizes")
    return np.array(sizes)
