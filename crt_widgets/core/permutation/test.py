"""The clustered permutation test over a (constrained) randomization space, with its confidence interval.

Step 1 regresses the outcome on the adjustment covariates ignoring clustering (linear, logistic or
Poisson) and takes residuals on the response scale. Step 2 averages them by cluster and computes

    U = mean over treated clusters - mean over control clusters          (formula (5) of cvcrand's paper)

for the observed scheme and for every scheme of the space, in one pass (per-scheme sums of the
cluster means come from the packed schemes by table look-ups). The two-sided p-value is the share of
schemes with |U_s| >= |U|. With equal arms this is cvcrand's ``cptest`` exactly; with unequal arms
cptest codes arms +1/-1, which is not formula (5): we use (5).

The confidence interval inverts the test (the steps (i)-(iv) of the paper's Summary): a hypothesised
effect delta is removed from the treated clusters on the link scale (an offset in the regression),
and the interval is every delta whose p-value is at least alpha; its limits are found by root
finding on a bracket, and the point estimate is the delta at which the observed U is zero.

Rows with a missing outcome, cluster or covariate are dropped, and the result says how many.

>>> from crt_widgets.datasets import load_dickinson_outcome, dickinson_cvcrand_space_path
>>> result = permutation_test(load_dickinson_outcome(), "outcome", "county", dickinson_cvcrand_space_path(),
...     covariates=["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"],
...     categorical=["location", "incomecat"], family="binomial")
>>> round(result.p_value, 3)
0.042
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.permutation.interval import (MAX_LINK_EFFECT, Inverter, confidence_interval, effect_scale,
                                             point_estimate)
from crt_widgets.core.permutation.data import (PreparedData, as_extreme, binned_distribution, check_columns,
                                               column_names, p_values, prepare_data, scheme_statistics)
from crt_widgets.core.permutation.space import (PermutationSpace, resolve_space, simple_from_observed, simple_space,
                                                smallest_p_value)
from crt_widgets.core.models.residuals import check_family, constant_outcome_note

__all__ = ["permutation_test", "PermutationResult", "prepare_test", "run_test", "resolve_space", "simple_space",
           "PermutationSpace", "PreparedData", "prepare_data", "scheme_statistics", "p_values", "smallest_p_value"]

ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True, eq=False)
class PermutationResult:
    """A clustered permutation test.

    Attributes
    ----------
    statistic : the observed U (treated minus control mean of cluster-mean residuals).
    distribution : U for every scheme of the space (for histograms).
    p_value : p-value for ``alternative``; ``p_values`` has all three.
    n_schemes, n_clusters, n_individuals, n_dropped : sizes (rows dropped for missing values).
    observed_scheme : each cluster's group in the scheme used: 1 treated, 0 control, -1 left out of the
        comparison (a multi-arm comparison against a control arm).
    estimate, conf_int : the effect on the link scale and its interval (when requested).
    """

    statistic: float
    distribution: np.ndarray
    p_value: float
    p_values: dict[str, float]
    alternative: str
    family: str
    n_schemes: int
    n_clusters: int
    n_individuals: int
    n_dropped: int
    observed_scheme: np.ndarray
    cluster_ids: np.ndarray
    estimate: float | None = None
    conf_int: tuple[float, float] | None = None
    conf_level: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def statement(self) -> str:
        """One sentence, like cptest's pvalue_statement."""
        side = {"two-sided": "two-sided", "greater": "one-sided (treatment > control)",
                "less": "one-sided (treatment < control)"}[self.alternative]
        text = (f"Clustered permutation test ({self.family}, {side}) over {self.n_schemes:,} schemes: "
                f"p-value = {self.p_value:.4g}")
        if self.conf_int is not None:
            text += (f"; effect {self.estimate:.4g} ({self.conf_level:.0%} CI {self.conf_int[0]:.4g} to "
                     f"{self.conf_int[1]:.4g}) on the {_SCALE[self.family]} scale")
        return text + "."

    def histogram(self, bins: int = 40) -> pd.DataFrame:
        """The permutation distribution binned in numpy: per bin (``left``, ``right``) the number of
        schemes (``total``) and of those at least as extreme as the observed statistic under the
        alternative (``extreme``; exact per scheme, so ``extreme.sum() / n_schemes`` is the p-value).

        >>> import numpy as np
        >>> r = PermutationResult(1.0, np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), 4 / 6, {}, "two-sided",
        ...                       "gaussian", 6, 4, 40, 0, np.array([1, 1, 0, 0]), np.arange(4))
        >>> h = r.histogram(bins=5)
        >>> int(h.total.sum()), int(h.extreme.sum())
        (6, 4)
        """
        return binned_distribution(self.distribution, self.statistic, self.alternative, bins)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python values (JSON-ready); the distribution is left out (``n_schemes`` long)."""
        doc = {"statistic": self.statistic, "p_value": self.p_value, "p_values": dict(self.p_values),
               "alternative": self.alternative, "family": self.family, "n_schemes": self.n_schemes,
               "n_clusters": self.n_clusters, "n_individuals": self.n_individuals, "n_dropped": self.n_dropped,
               "FinalScheme": {str(k): int(v) for k, v in zip(self.cluster_ids.tolist(), self.observed_scheme)},
               "statement": self.statement, "notes": list(self.notes)}
        if self.conf_int is not None:
            doc.update(estimate=self.estimate, conf_int=list(self.conf_int), conf_level=self.conf_level)
        return doc

    @property
    def n_extreme(self) -> int:
        """The number of schemes at least as extreme as the observed one under ``alternative`` (the
        p-value's numerator: ``n_extreme / n_schemes == p_value``)."""
        values = np.asarray(self.distribution, dtype=float)
        return int(np.count_nonzero(as_extreme(values, self.statistic)[self.alternative]))

    def summary(self) -> str:
        """A plain-text report in the layout of statsmodels' summaries: the sizes, the statistic, the
        p-value with its exact count of schemes, every alternative's p-value, the estimate and interval
        (when requested) and the notes.

        >>> import numpy as np
        >>> r = PermutationResult(1.0, np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), 4 / 6, {"two-sided": 4 / 6,
        ...     "greater": 2 / 6, "less": 5 / 6}, "two-sided", "gaussian", 6, 4, 40, 0, np.array([1, 1, 0, 0]),
        ...     np.arange(4))
        >>> [line for line in r.summary().splitlines() if line.startswith("p-value")]
        ['p-value (two-sided):        0.6667 (4 of 6 schemes at least as extreme)']
        """
        treated = int(np.count_nonzero(self.observed_scheme == 1))
        control = int(np.count_nonzero(self.observed_scheme == 0))
        left_out = int(np.count_nonzero(self.observed_scheme == -1))
        clusters = f"{self.n_clusters} ({treated} treated, {control} control" + (
            f", {left_out} left out)" if left_out else ")")
        rows = [("Family:", f"{self.family} (effects on the {_SCALE[self.family]} scale)"),
                ("Randomization space:", f"{self.n_schemes:,} schemes"),
                ("Clusters:", clusters),
                ("Individuals:", f"{self.n_individuals:,}" + (f" ({self.n_dropped:,} dropped: missing values)"
                                                               if self.n_dropped else "")),
                ("Statistic U:", f"{self.statistic:.6g} (treated minus control mean of cluster-mean residuals)"),
                (f"p-value ({self.alternative}):",
                 f"{self.p_value:.4f} ({self.n_extreme:,} of {self.n_schemes:,} schemes at least as extreme)")]
        rows += [(f"  {side}:", f"{value:.4f}") for side, value in self.p_values.items() if side != self.alternative]
        if self.conf_int is not None:
            rows.append(("Estimate:", f"{self.estimate:.6g}"))
            rows.append((f"{self.conf_level:.0%} interval:", f"{self.conf_int[0]:.6g} to {self.conf_int[1]:.6g} "
                                                               "(the test inverted)"))
        body = [f"{name:<28}{value}" for name, value in rows]
        width = max(len(line) for line in body)
        lines = ["Clustered Permutation Test".center(width).rstrip(), "=" * width, *body, "=" * width]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def __repr__(self) -> str:
        ci = "" if self.conf_int is None else f", estimate={self.estimate:.4g}, conf_int=({self.conf_int[0]:.4g}, {self.conf_int[1]:.4g})"
        return (f"PermutationResult(statistic={self.statistic:.4g}, p_value={self.p_value:.4g}, "
                f"n_schemes={self.n_schemes}, family={self.family!r}{ci})")


_SCALE = {"gaussian": "mean difference", "binomial": "log odds ratio", "poisson": "log rate ratio"}


def _constant_outcome_interval(inv: Inverter, prep: PreparedData, alpha: float) -> tuple[float, tuple[float, float], str]:
    """The point estimate, interval and explanation when the outcome does not vary. The estimate is 0 (the
    observed U is 0 at no effect). With no events (or only events) every effect on the log odds or log rate
    scale leaves the outcomes as they are, so none is rejected: the interval is unbounded. A constant
    continuous (or non-zero count) outcome makes U(delta) the same for every delta != 0: the interval is the
    point 0 when that p-value is below alpha, else unbounded."""
    scale = _SCALE[prep.family]
    if prep.family != "gaussian" and (prep.y[0] == 0 or prep.family == "binomial"):
        return 0.0, (-np.inf, np.inf), (f"point estimate 0 and no finite interval: with an outcome of {prep.y[0]:g} "
                                        f"for everyone, every {scale} is consistent with the data")
    shifted = max(inv.p_value(-1.0), inv.p_value(1.0))  # the p-value of any non-zero shift (exact when gaussian)
    if shifted < alpha:
        return 0.0, (0.0, 0.0), (f"point estimate 0 with the degenerate interval [0, 0]: an outcome that is the same "
                                 f"for everyone rejects every non-zero {scale} (p = {shifted:.3g} for any shift)")
    return 0.0, (-np.inf, np.inf), (f"point estimate 0 and no finite interval: no shift is rejected either "
                                    f"(p = {shifted:.3g} >= alpha for any shift in this space)")


def permutation_test(
    data: pd.DataFrame,
    outcome: str,
    cluster: str,
    space: Any,
    covariates: Sequence[str] = (),
    categorical: Sequence[str] = (),
    family: str = "gaussian",
    *,
    alternative: str = "two-sided",
    ci: bool = False,
    alpha: float = 0.05,
    cluster_ids: Sequence | None = None,
    observed: Any = None,
    simple_size: int = 50_000,
    seed: int | None = None,
    audit: Any = None,
) -> PermutationResult:
    """Clustered permutation test of the treatment effect over the randomization space.

    Parameters
    ----------
    data : one row per individual.
    outcome, cluster : column names of the outcome and the cluster id.
    space : the randomization space (see :func:`resolve_space`): a saved space file, an Allocation,
        a design with ``observed``, a SchemeSet or 0/1 matrix with ``cluster_ids`` and ``observed``,
        or ``"simple"`` with ``observed`` for the unconstrained space.
    covariates, categorical : adjustment covariates, and which are categorical.
    family : ``"gaussian"`` (continuous), ``"binomial"`` (binary 0/1) or ``"poisson"`` (counts).
    alternative : ``"two-sided"`` (default), ``"greater"`` or ``"less"``.
    ci : also invert the (two-sided) test for the effect estimate and its (1 - alpha) interval, on
        the link scale (mean difference, log odds ratio, log rate ratio).
    cluster_ids : labels of the space's columns, when the space has none (a SchemeSet or matrix, or
        cvcrand's CSV; without them the CSV's columns are the data's clusters in sorted order).
    observed : the scheme that was used, when the space does not mark it: a scheme index, a 0/1 arm
        per cluster, or a mapping cluster -> arm.
    simple_size, seed : ``space="simple"`` enumerates every scheme with the observed number of treated
        clusters when there are at most ``simple_size``, else samples that many from ``seed``
        (the observed scheme included; the seed used is in ``notes``).
    audit : the audit record to verify a space file against (a path or the record); by default the one
        saved beside it. A space file changed since the design saved it is refused; a CSV space with no
        audit is used with a note that it could not be verified.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative: must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    perm_space, prep = prepare_test(data, outcome, cluster, space, covariates, categorical, family,
                                    cluster_ids=cluster_ids, observed=observed, simple_size=simple_size, seed=seed,
                                    audit=audit)
    return run_test(prep, perm_space, alternative=alternative, ci=ci, alpha=alpha)


def prepare_test(data: pd.DataFrame, outcome: str, cluster: str, space: Any, covariates: Sequence[str] = (),
                 categorical: Sequence[str] = (), family: str = "gaussian", *, cluster_ids: Sequence | None = None,
                 observed: Any = None, simple_size: int = 50_000, seed: int | None = None,
                 audit: Any = None) -> tuple[PermutationSpace, PreparedData]:
    """Resolve the space and validate the data once (the test and the model-based companions share them)."""
    family = check_family(family)
    covariates, categorical = column_names(covariates, "covariates"), column_names(categorical, "categorical")
    check_columns(data, outcome, cluster, covariates, categorical)
    if isinstance(space, str) and space == "simple":
        perm_space = simple_from_observed(data, cluster, observed, cluster_ids, simple_size, seed)
    else:
        perm_space = resolve_space(space, cluster_ids=cluster_ids, observed=observed,
                                   data_clusters=data[cluster].dropna().to_numpy(), audit=audit)
    return perm_space, prepare_data(data, outcome, cluster, perm_space, covariates, categorical, family)


def run_test(prep: PreparedData, perm_space: PermutationSpace, *, alternative: str = "two-sided", ci: bool = False,
             alpha: float = 0.05) -> PermutationResult:
    """The test (and, with ``ci``, its inverted interval) on prepared data."""
    inv = Inverter(prep, perm_space)
    u = inv.statistics(0.0)
    degenerate = constant_outcome_note(prep.y, prep.family)
    if degenerate:  # every residual is 0 up to rounding: every scheme's U is exactly 0
        u = np.zeros_like(u)
    observed_u = float(u[perm_space.observed])
    pv = p_values(u, observed_u)
    notes = list(perm_space.notes) + ([perm_space.note] if perm_space.note else [])
    if prep.n_dropped:
        notes.append(f"{prep.n_dropped} row(s) with missing values were dropped")
    arm = perm_space.observed_arm
    if arm.sum() != perm_space.observed_control.sum():
        notes.append("unequal arms: U is formula (5) of the cvcrand paper, not cptest's +1/-1 coding")
    if degenerate:
        notes.append(f"{degenerate.split(':')[0]}: every scheme gives U = 0, so p = 1")
    estimate = interval = None
    if ci and degenerate:
        estimate, interval, why = _constant_outcome_interval(inv, prep, alpha)
        notes.append(why)
    elif ci:
        scale = effect_scale(prep, u)
        estimate = point_estimate(inv, scale)
        interval = confidence_interval(inv, estimate, alpha, scale)
        if smallest_p_value(perm_space) >= alpha:
            notes.append(f"the space ({len(perm_space.schemes):,} schemes) is too small for a {1 - alpha:.0%} "
                         f"interval: its smallest p-value is {smallest_p_value(perm_space):.3g}, so no effect "
                         f"value is rejected at alpha = {alpha:g}")
        elif not np.all(np.isfinite(interval)):
            reach = "" if prep.family == "gaussian" else f" (searched to {MAX_LINK_EFFECT:g} on the link scale)"
            notes.append(f"no effect value is rejected on one side{reach}: that limit is infinite"
                         + (" (all or no events in an arm?)" if not np.isfinite(estimate) else ""))
    return PermutationResult(
        statistic=observed_u, distribution=u, p_value=pv[alternative], p_values=pv, alternative=alternative,
        family=prep.family, n_schemes=len(perm_space.schemes), n_clusters=len(perm_space.cluster_ids),
        n_individuals=len(prep.y), n_dropped=prep.n_dropped,
        observed_scheme=2 * arm.astype(np.int8) + perm_space.observed_control.astype(np.int8) - 1,  # 1, 0, -1 left out
        cluster_ids=perm_space.cluster_ids, estimate=estimate, conf_int=interval,
        conf_level=1 - alpha if ci else None, notes=notes)
