"""Model-based companions of the permutation test: GEE and a random-intercept mixed model.

One call (:func:`analyze_trial`) answers "what is the effect and how sure are we": the clustered
permutation test with its inverted interval, a GEE with an exchangeable working correlation (robust
and bias-reduced small-sample standard errors), and a mixed model with a random cluster intercept,
all adjusted for the same covariates.

* Continuous outcomes: the mixed model is :func:`crt_widgets.mixed_model` (REML, exact optimum).
* Binary and count outcomes: a maximum-likelihood GLMM by adaptive Gauss-Hermite quadrature
  (:mod:`crt_widgets.core.models.glmm`, the likelihood of lme4's ``glmer(..., nAGQ = 10)``), because
  statsmodels' variational Bayesian mixed GLMs understate the standard error several-fold.
* Every interval and p-value uses a t on (clusters - 2) degrees of freedom: with the few clusters
  of a typical trial, normal (z) intervals are too narrow.

>>> from crt_widgets.datasets import load_dickinson_outcome, dickinson_cvcrand_space_path
>>> report = analyze_trial(load_dickinson_outcome(), "outcome", "county", dickinson_cvcrand_space_path(),
...     covariates=["inciis"], family="binomial", models=("gee",))
>>> report.gee.method
'GEE (exchangeable), bias-reduced SE'
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crt_widgets.core.permutation.test import ALTERNATIVES, PermutationResult, prepare_test, run_test
from crt_widgets.core.models.residuals import check_family

MODELS = ("gee", "mixed")


@dataclass(frozen=True)
class ModelEstimate:
    """A model-based treatment effect on the link scale."""

    method: str
    effect: float
    se: float
    conf_int: tuple[float, float]
    p_value: float
    detail: str = ""
    icc: float = float("nan")  # the model's intracluster correlation (see latent_icc and the GEE's working correlation)

    def one_sided(self, alternative: str) -> float:
        """The p-value for ``"greater"`` (treatment > control) or ``"less"`` from the two-sided Wald
        p-value of a symmetric t or z test (half of it in the effect's direction, 1 - half against).

        >>> m = ModelEstimate("m", 0.5, 0.2, (0.1, 0.9), 0.04)
        >>> m.one_sided("greater"), m.one_sided("less")
        (0.02, 0.98)
        """
        if alternative == "two-sided":
            return self.p_value
        with_effect = (self.effect > 0) == (alternative == "greater")
        return self.p_value / 2 if with_effect else 1 - self.p_value / 2

    def __repr__(self) -> str:
        return (f"ModelEstimate({self.method}: effect={self.effect:.4g}, se={self.se:.3g}, "
                f"CI=({self.conf_int[0]:.4g}, {self.conf_int[1]:.4g}), p={self.p_value:.3g})")


def _design(prep) -> np.ndarray:
    """Intercept, treatment, then the covariates that are not linear combinations of the others.

    Cluster-level dummies can be collinear among themselves (they are dropped quietly, as R's lm
    would alias them); a treatment collinear with the covariates is an error (no effect to estimate).
    """
    candidates = np.column_stack([prep.x, prep.treated])  # intercept, covariates, treatment last
    keep = _independent_columns(candidates)
    if keep[-1] != candidates.shape[1] - 1:
        raise ValueError("covariates: the treatment is collinear with them (a cluster-level covariate that "
                         "is the arm, or as many cluster-level covariates as clusters); drop one")
    covariates = [j for j in keep[:-1] if j != 0]
    return np.column_stack([prep.x[:, :1], prep.treated, prep.x[:, covariates]])


def _independent_columns(x: np.ndarray, tol: float = 1e-9) -> list[int]:
    """Greedy left-to-right choice of linearly independent columns, from the cross-product (any n)."""
    gram = x.T @ x
    keep: list[int] = []
    for j in range(x.shape[1]):
        if keep:
            g_kk, g_kj = gram[np.ix_(keep, keep)], gram[keep, j]
            residual = gram[j, j] - g_kj @ np.linalg.solve(g_kk, g_kj)
        else:
            residual = gram[j, j]
        if residual > tol * max(gram[j, j], 1e-300):
            keep.append(j)
    return keep


def gee_estimate(prep, alpha: float = 0.05) -> ModelEstimate:
    """GEE, exchangeable working correlation; bias-reduced (Mancl-DeRouen) SE with a t on clusters - 2 df."""
    import statsmodels.api as sm

    family = {"gaussian": sm.families.Gaussian(), "binomial": sm.families.Binomial(),
              "poisson": sm.families.Poisson()}[prep.family]
    x = _design(prep)
    model = sm.GEE(prep.y, x, groups=prep.cluster_index, family=family, cov_struct=sm.cov_struct.Exchangeable())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        robust = model.fit(cov_type="robust")
        reduced = model.fit(cov_type="bias_reduced")
    effect = float(reduced.params[1])
    se = float(np.sqrt(reduced.cov_params()[1, 1]))
    df = max(len(prep.cluster_sizes) - 2, 1)
    q = stats.t.ppf(1 - alpha / 2, df)
    p = float(2 * stats.t.sf(abs(effect / se), df))
    robust_se = float(np.sqrt(robust.cov_params()[1, 1]))
    # the exchangeable working correlation: the ICC on the response scale
    icc = float(np.ravel(reduced.model.cov_struct.dep_params)[0])
    return ModelEstimate("GEE (exchangeable), bias-reduced SE", effect, se, (effect - q * se, effect + q * se), p,
                         f"robust (sandwich) SE {robust_se:.4g}; t on {df} df", icc)


def mixed_estimate(prep, alpha: float = 0.05) -> ModelEstimate:
    """Random-intercept model for the cluster: REML LMM, or a maximum-likelihood GLMM for binary/count."""
    x = _design(prep)
    if prep.family == "gaussian":
        from crt_widgets.core.models.mixed import mixed_model

        cols = {f"x{j}": x[:, j] for j in range(2, x.shape[1])}
        frame = pd.DataFrame({"y": prep.y, "treat": prep.treated, "cluster": prep.cluster_index, **cols})
        formula = "y ~ treat" + "".join(f" + {c}" for c in cols)
        fit = mixed_model(formula, frame, groups=["cluster"], method="reml")
        effect, se = float(fit.fe_params["treat"]), float(fit.bse["treat"])
        df = max(len(prep.cluster_sizes) - 2, 1)
        q = stats.t.ppf(1 - alpha / 2, df)
        p = float(2 * stats.t.sf(abs(effect / se), df))
        icc = list(fit.icc.values())[0] if fit.icc else float("nan")
        return ModelEstimate("Mixed model (random cluster intercept, REML)", effect, se,
                             (effect - q * se, effect + q * se), p, f"ICC {icc:.3g}; t on {df} df", icc)
    from crt_widgets.core.models.glmm import fit_random_intercept_glmm

    fit = fit_random_intercept_glmm(prep.y, x, prep.cluster_index, prep.family, n_quad=10)
    effect, se = float(fit.coef[1]), float(fit.se[1])
    # a t on clusters - 2 df, as for the other companions: with few clusters a Wald z is anti-conservative
    df = max(len(prep.cluster_sizes) - 2, 1)
    q = stats.t.ppf(1 - alpha / 2, df)
    p = float(2 * stats.t.sf(abs(effect / se), df))
    icc = latent_icc(fit.sigma**2, prep.family, float(np.mean(prep.y)))
    return ModelEstimate("Mixed model (random cluster intercept, ML, adaptive quadrature)", effect, se,
                         (effect - q * se, effect + q * se), p,
                         f"cluster SD {fit.sigma:.3g}, latent-scale ICC {icc:.3g}; Wald t on {df} df", icc)


def latent_icc(cluster_variance: float, family: str, mean_outcome: float) -> float:
    """The ICC of a random-intercept GLMM on the latent scale: the cluster variance over itself plus the
    distribution's variance on the link scale, pi^2/3 for the logit (binary), and for the log link the
    log-normal approximation ln(1 + 1/lambda) with lambda the mean count (Nakagawa, Johnson and
    Schielzeth 2017).

    >>> round(latent_icc(1.0, "binomial", 0.3), 4)
    0.2331
    """
    if family == "binomial":
        return cluster_variance / (cluster_variance + np.pi**2 / 3)
    if family == "poisson":
        return cluster_variance / (cluster_variance + np.log1p(1 / mean_outcome)) if mean_outcome > 0 else float("nan")
    raise ValueError(f"family: latent-scale ICC is for binomial or poisson, got {family!r}")


@dataclass(frozen=True, eq=False)
class TrialAnalysis:
    """The permutation test and its model-based companions for one trial."""

    permutation: PermutationResult
    gee: ModelEstimate | None
    mixed: ModelEstimate | None

    def table(self) -> pd.DataFrame:
        """One row per method: effect, two-sided interval, and the p-value for the permutation test's
        alternative (one-sided model p-values from their Wald tests), on the link scale; and the ICC each
        model estimates (GEE: its exchangeable working correlation, on the response scale; mixed model:
        response scale for continuous outcomes, latent scale for binary and count ones), as CONSORT's
        extension for cluster trials asks to report."""
        rows = []
        p = self.permutation
        if p.conf_int is not None:
            rows.append(("Clustered permutation test (inverted)", p.estimate, np.nan, *p.conf_int, p.p_value, np.nan))
        else:
            rows.append(("Clustered permutation test", np.nan, np.nan, np.nan, np.nan, p.p_value, np.nan))
        for m in (self.gee, self.mixed):
            if m is not None:
                rows.append((m.method, m.effect, m.se, *m.conf_int, m.one_sided(p.alternative), m.icc))
        column = "p_value" if p.alternative == "two-sided" else f"p_value ({p.alternative})"
        return pd.DataFrame(rows, columns=["method", "effect", "se", "ci_low", "ci_high", column, "icc"]).set_index("method")

    def to_dict(self) -> dict[str, Any]:
        """The test and every method's estimate as plain values (JSON with :func:`~crt_widgets.core.spaceio.json_ready`)."""
        return {"permutation": self.permutation.to_dict(),
                "estimates": self.table().reset_index().to_dict(orient="records")}

    def __repr__(self) -> str:
        return f"TrialAnalysis(\n{self.table().to_string()}\n)"


def analyze_trial(data: pd.DataFrame, outcome: str, cluster: str, space: Any, covariates: Sequence[str] = (),
                  categorical: Sequence[str] = (), family: str = "gaussian", *, alternative: str = "two-sided",
                  alpha: float = 0.05,
                  models: Sequence[str] = MODELS, cluster_ids: Sequence | None = None,
                  observed: Any = None, simple_size: int = 50_000, seed: int | None = None,
                  audit: Any = None) -> TrialAnalysis:
    """Permutation test with its interval, plus GEE and mixed-model estimates of the same effect.

    Arguments as :func:`crt_widgets.permutation_test`; ``models`` picks the companions
    (``"gee"``, ``"mixed"``); ``alternative`` sets the permutation test's side, and the table gives
    the models' Wald p-values for the same side (intervals stay two-sided). Every effect is on the link scale (mean difference, log odds ratio,
    log rate ratio). Note the estimands differ for binary and count outcomes: the GEE's effect is
    population-averaged, the mixed model's is cluster-specific (larger in size when clusters vary).
    """
    family = check_family(family)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative: must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    perm_space, prep = prepare_test(data, outcome, cluster, space, covariates, categorical, family,
                                    cluster_ids=cluster_ids, observed=observed, simple_size=simple_size, seed=seed,
                                    audit=audit)
    perm = run_test(prep, perm_space, alternative=alternative, ci=True, alpha=alpha)
    if perm_space.control is not None:  # the models compare the same two groups: the clusters of the others go
        prep = prep.clusters((perm_space.observed_arm + perm_space.observed_control) > 0)
    gee = gee_estimate(prep, alpha) if "gee" in models else None
    mixed = mixed_estimate(prep, alpha) if "mixed" in models else None
    return TrialAnalysis(perm, gee, mixed)
