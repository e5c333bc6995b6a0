"""The analysis of a stepped-wedge (or other multi-period, cross-sectional) trial: the mixed model with period
fixed effects, and the permutation test over the randomized orders.

- Hussey and Hughes (2007): ``y_ijk = mu + beta_j + theta x_ij + c_i + e_ijk``, period fixed effects and a
  cluster random intercept (``nested=False``);
- Hooper, Teerenstra, de Hoop and Eldridge (2016): with a cluster-period random intercept ``cp_ij`` nested in
  the cluster besides (``nested=True``, the default): the correlation of two individuals in one cluster-period is
  the ICC, in two periods the ICC times the cluster autocorrelation (CAC); ``nested=False`` is CAC = 1.

The model is fitted by REML on the fast engine (:func:`crt_widgets.mixed_model` with the cluster and the period
nested in it as the groups; lme4's ``lmer(y ~ treatment + factor(period) + (1 | cluster/period))``); its tests and
intervals use t distributions with Satterthwaite's degrees of freedom (``ddf="satterthwaite"``, lmerTest's default),
Kenward and Roger's adjusted covariance and degrees of freedom (``"kenward-roger"``, pbkrtest's; advised with few
clusters) or the normal distribution (``"z"``, as lme4 prints them). The permutation test (``space=``) is exact
whatever the number of clusters.

>>> import crt_widgets as crt
>>> from crt_widgets.datasets import simulate_stepped_wedge_clusters, simulate_stepped_wedge_outcomes
>>> clusters = simulate_stepped_wedge_clusters(12, seed=1)
>>> matrix = crt.stepped_wedge(4, 3).cluster_matrix()
>>> data = simulate_stepped_wedge_outcomes(clusters, matrix, effect=0.5, icc=0.1, cac=0.6, seed=2)
>>> result = stepped_wedge_analysis(data, "y", "cluster", "period", "treatment")
>>> round(result.effect, 4), round(result.se, 4), sorted(result.variance_components)
(0.5055, 0.1234, ['cluster', 'cluster_period', 'residual'])
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.models.mixed import MixedResult, mixed_model
from crt_widgets.core.multiperiod.designs import MultiPeriodDesign
from crt_widgets.core.permutation.stepped_wedge import (SteppedWedgePermutationResult,
                                                        stepped_wedge_permutation_test)

METHODS = ("reml", "ml")


def _term(name: str) -> str:
    """A column name as a patsy term (quoted when it is not a plain identifier)."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else f"Q({name!r})"


@dataclass(frozen=True, eq=False)
class SteppedWedgeAnalysis:
    """The mixed-model analysis of a multi-period trial (and its permutation test, when a space was given).

    ``params``, ``bse``, ``pvalues`` and ``conf_int()`` are the model's fixed effects (statsmodels' layout); the
    treatment effect is ``effect`` (``params[treatment]``) with ``se``, ``pvalue`` and ``ci``.
    ``variance_components``: ``cluster``, ``cluster_period`` (nested model) and ``residual``; ``icc`` the
    correlation of two individuals in one cluster-period, ``cac`` the cluster autocorrelation (1 without the
    cluster-period effect). ``fit`` is the full :class:`~crt_widgets.core.models.mixed.MixedResult`.
    """

    fit: MixedResult
    treatment: str
    nested: bool
    n_clusters: int
    n_periods: int
    permutation: SteppedWedgePermutationResult | None = None

    @property
    def params(self) -> pd.Series:
        return self.fit.fe_params

    @property
    def bse(self) -> pd.Series:
        return self.fit.bse

    @property
    def pvalues(self) -> pd.Series:
        return self.fit.pvalues

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Wald intervals of the fixed effects."""
        return self.fit.conf_int(alpha)

    @property
    def _name(self) -> str:
        return _term(self.treatment)

    @property
    def effect(self) -> float:
        return float(self.params[self._name])

    @property
    def se(self) -> float:
        return float(self.bse[self._name])

    @property
    def df(self) -> float:
        """The treatment effect's degrees of freedom (infinite for ``ddf="z"``)."""
        return float(self.fit.df[self._name])

    @property
    def pvalue(self) -> float:
        return float(self.pvalues[self._name])

    @property
    def ci(self) -> tuple[float, float]:
        row = self.conf_int().loc[self._name]
        return float(row.iloc[0]), float(row.iloc[1])

    @property
    def variance_components(self) -> dict[str, float]:
        vc = self.fit.variance_components
        groups = self.fit.groups
        out = {"cluster": vc[groups[0]]}
        if self.nested:
            out["cluster_period"] = vc[groups[1]]
        out["residual"] = vc["residual"]
        return out

    @property
    def icc(self) -> float:
        """Correlation of two individuals in the same cluster-period."""
        v = self.variance_components
        between = v["cluster"] + v.get("cluster_period", 0.0)
        return between / (between + v["residual"])

    @property
    def cac(self) -> float:
        """Cluster autocorrelation: the correlation of a cluster's population means in two periods."""
        v = self.variance_components
        between = v["cluster"] + v.get("cluster_period", 0.0)
        return v["cluster"] / between if between > 0 else float("nan")

    def table(self) -> pd.DataFrame:
        """One row per method: the effect, its SE, interval and p-value."""
        lo, hi = self.ci
        reference = {"satterthwaite": "Satterthwaite t", "kenward-roger": "Kenward-Roger t", "z": "Wald z"}
        effects = "cluster + cluster-period effects" if self.nested else "cluster effect"
        model = f"mixed model, {effects} ({self.fit.method.upper()}, {reference.get(self.fit.ddf, self.fit.ddf)})"
        rows = [{"method": model, "effect": self.effect, "se": self.se, "ci_low": lo, "ci_high": hi,
                 "p_value": self.pvalue}]
        p = self.permutation
        if p is not None:
            low, high = p.conf_int if p.conf_int is not None else (np.nan, np.nan)
            rows.append({"method": f"permutation test over {p.n_schemes:,} assignments",
                         "effect": p.estimate if p.estimate is not None else p.statistic, "se": np.nan,
                         "ci_low": low, "ci_high": high, "p_value": p.p_value})
        return pd.DataFrame(rows).set_index("method")

    def summary(self) -> str:
        """The model's summary, the correlations and the permutation test's statement."""
        lines = [str(self.fit.summary()), f"ICC (same cluster-period) {self.icc:.4f}; CAC {self.cac:.4f}; "
                 f"{self.n_clusters} clusters, {self.n_periods} periods"]
        if self.permutation is not None:
            lines.append(self.permutation.statement)
        return "\n".join(lines)

    def __repr__(self) -> str:
        lo, hi = self.ci
        perm = "" if self.permutation is None else f", permutation p={self.permutation.p_value:.4g}"
        return (f"SteppedWedgeAnalysis(effect={self.effect:.4g}, se={self.se:.4g}, CI=({lo:.4g}, {hi:.4g}), "
                f"p={self.pvalue:.4g}, icc={self.icc:.4g}, cac={self.cac:.4g}{perm})")


def stepped_wedge_analysis(data: pd.DataFrame, outcome: str, cluster: str, period: str, treatment: str, *,
                           nested: bool = True, covariates: Sequence[str] = (), method: str = "reml",
                           ddf: str = "satterthwaite", alpha: float = 0.05, space: Any = None, design: MultiPeriodDesign | None = None,
                           observed: Any = None, ci: bool = True, seed: int | None = None) -> SteppedWedgeAnalysis:
    """Fit the mixed model of a cross-sectional multi-period trial, and test over its space of orders.

    Parameters
    ----------
    data : one row per individual.
    outcome, cluster, period, treatment : column names (the treatment 0/1, or the fraction of the effect).
    nested : a cluster-period random effect besides the cluster's (Hooper et al. 2016); False: Hussey and Hughes.
    covariates : further fixed effects (columns; text columns enter as categories).
    method : ``"reml"`` (default) or ``"ml"``.
    ddf : the reference distribution of the tests and intervals: ``"satterthwaite"``, ``"kenward-roger"`` (REML
        only) or ``"z"`` (see :func:`crt_widgets.mixed_model`).
    alpha : 1 - the confidence level.
    space, design, observed : with a space (the allocation drawn from a :class:`SteppedWedgeDesign`, or ``"simple"``
        with the :class:`MultiPeriodDesign` and ``observed`` = cluster -> sequence number), the permutation test too
        (see :func:`stepped_wedge_permutation_test`), with its interval when ``ci``.
    seed : the seed of a sampled simple space.
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    names = {"outcome": outcome, "cluster": cluster, "period": period, "treatment": treatment}
    for argument, column in names.items():
        if not isinstance(column, str) or column not in data.columns:
            raise ValueError(f"{argument}: column {column!r} is not in the data")
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    missing = [c for c in covariates if c not in data.columns]
    if missing:
        raise ValueError(f"covariates: column(s) not in the data: {', '.join(map(str, missing))}")
    if method not in METHODS:
        raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    if not isinstance(nested, (bool, np.bool_)):
        raise ValueError(f"nested: True or False, got {nested!r}")
    x = data[treatment]
    if not pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x):
        raise ValueError(f"treatment: column {treatment!r} must be numeric (0/1 or a fraction of the effect)")
    cell = data.groupby([data[cluster], data[period]], observed=True, sort=False)[treatment]
    varying = int((cell.nunique() > 1).sum())
    if varying:
        raise ValueError(f"treatment: column {treatment!r} varies within {varying} cluster-period(s); a cluster is "
                         "in one condition per period")
    terms = " + ".join([_term(treatment), f"C({_term(period)})", *map(_term, covariates)])
    groups = [cluster, period] if nested else [cluster]
    fit = mixed_model(f"{_term(outcome)} ~ {terms}", data, groups=groups, method=method, alpha=alpha, ddf=ddf)
    permutation = None
    if space is not None:
        permutation = stepped_wedge_permutation_test(data, outcome, cluster, period, space, design=design,
                                                     observed=observed, treatment=treatment, nested=bool(nested),
                                                     ci=ci, alpha=alpha, seed=seed)
    return SteppedWedgeAnalysis(fit, treatment, bool(nested), int(data[cluster].nunique()),
                                int(data[period].nunique()), permutation)
