"""Model-based companions of the permutation test: GEE and a random-intercept mixed model.

One call (:func:`analyze_trial`) answers "what is the effect and how sure are we": the clustered
permutation test with its inverted interval, a GEE with an exchangeable working correlation
(:func:`crt_widgets.gee`: small-sample corrected sandwich, Mancl-DeRouen by default, t on K - p df),
and a mixed model with a random cluster intercept, all adjusted for the same covariates; with
``estimands=True`` also the cluster-average and individual-average effects (difference, and ratio for
binary and count outcomes) by standardization, each with its permutation test
(:mod:`crt_widgets.core.analysis.estimands`).

* Continuous outcomes: the mixed model is :func:`crt_widgets.mixed_model` (REML, exact optimum), with
  Kenward-Roger's adjusted SE and df below 40 clusters and Satterthwaite's df from 40.
* Binary and count outcomes: a maximum-likelihood GLMM by adaptive Gauss-Hermite quadrature
  (:mod:`crt_widgets.core.models.glmm`, the likelihood of lme4's ``glmer(..., nAGQ = 10)``), because
  statsmodels' variational Bayesian mixed GLMs understate the standard error several-fold.
* Model intervals and p-values use t distributions (the GEE's on clusters minus coefficients, the linear
  mixed model's on its Kenward-Roger or Satterthwaite df, the GLMM's on clusters - 2): with the few clusters
  of a typical trial, normal (z) intervals are too narrow.
* An outcome that does not vary (all 0, all 1, one value) gets the permutation result that exists
  (p = 1, estimate 0, the interval explained in a note) and no model rows' numbers: each says why.

>>> from crt_widgets.datasets import load_dickinson_outcome, dickinson_cvcrand_space_path
>>> report = analyze_trial(load_dickinson_outcome(), "outcome", "county", dickinson_cvcrand_space_path(),
...     covariates=["inciis"], family="binomial", models=("gee",))
>>> report.gee.method, report.gee.df
('GEE (exchangeable), Mancl-DeRouen SE', 13)
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crt_widgets.core.analysis.estimands import EstimandEstimate, estimate_estimands
from crt_widgets.core.models.ddf import between_within_df
from crt_widgets.core.models.gee import SE_LABELS, SEPARATION_NOTE, fit_gee_arrays, gee_notes, sandwich_covariances
from crt_widgets.core.models.icc import latent_icc
from crt_widgets.core.models.residuals import check_family, constant_outcome_note
from crt_widgets.core.permutation.test import ALTERNATIVES, PermutationResult, prepare_test, run_test

__all__ = ["analyze_trial", "TrialAnalysis", "ModelEstimate", "gee_estimate", "mixed_estimate", "latent_icc", "MODELS"]

MODELS = ("gee", "mixed")
KENWARD_ROGER_BELOW = 40  # clusters: the linear mixed model uses Kenward-Roger below, Satterthwaite from here


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
    df: float = float("nan")   # the t reference degrees of freedom
    note: str = ""             # why the estimate is absent or to be read with care

    @classmethod
    def absent(cls, method: str, reason: str) -> "ModelEstimate":
        """A row with no numbers and the reason (an outcome that does not vary, a fit that failed).

        >>> ModelEstimate.absent("GEE", "not fitted: the outcome is 0 for everyone").note
        'not fitted: the outcome is 0 for everyone'
        """
        nan = float("nan")
        return cls(method, nan, nan, (nan, nan), nan, note=reason)

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
    """Intercept, treatment, then the covariates that are not linear combinations of the others."""
    return _design_with_names(prep)[0]


def _design_with_names(prep) -> tuple[np.ndarray, list[str]]:
    """Intercept, treatment, then the covariates that are not linear combinations of the others, with the
    columns' names ("Intercept", "arm", the covariates' terms).

    Cluster-level dummies can be collinear among themselves (they are dropped quietly, as R's lm
    would alias them); a treatment collinear with the covariates is an error (no effect to estimate).
    """
    candidates = np.column_stack([prep.x, prep.treated])  # intercept, covariates, treatment last
    keep = _independent_columns(candidates)
    if keep[-1] != candidates.shape[1] - 1:
        raise ValueError("covariates: the treatment is collinear with them (a cluster-level covariate that "
                         "is the arm, or as many cluster-level covariates as clusters); drop one")
    covariates = [j for j in keep[:-1] if j != 0]
    names = ["Intercept", "arm", *[prep.x_names[j] for j in covariates]]
    return np.column_stack([prep.x[:, :1], prep.treated, prep.x[:, covariates]]), names


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


def gee_estimate(prep, alpha: float = 0.05, se: str = "md") -> ModelEstimate:
    """GEE, exchangeable working correlation (geepack's moment estimators), the ``se`` sandwich correction
    (Mancl-DeRouen by default) and a t on K - p df (clusters minus coefficients): :func:`crt_widgets.gee`."""
    method = f"GEE (exchangeable), {SE_LABELS[se]}"
    x, _ = _design_with_names(prep)
    k, p = len(prep.cluster_sizes), x.shape[1]
    df = k - p
    if df < 1:
        return ModelEstimate.absent(method, f"not fitted: {p} coefficients from {k} clusters leave no degrees of "
                                            f"freedom for the t reference (K - p = {df})")
    fit = fit_gee_arrays(prep.y, x, prep.cluster_index, prep.family, "exchangeable")
    if fit.boundary:
        return ModelEstimate.absent(method, f"not reported: {SEPARATION_NOTE}")
    covariances, top = sandwich_covariances(fit.cluster_information, fit.cluster_scores)
    effect = float(fit.beta[1])
    ses = {kind: float(np.sqrt(cov[1, 1])) for kind, cov in covariances.items()}
    se_value = ses[se]
    q = stats.t.ppf(1 - alpha / 2, df)
    p_value = float(2 * stats.t.sf(abs(effect / se_value), df))
    others = ", ".join(f"{kind} {value:.4g}" for kind, value in ses.items() if kind != se)
    # the same notes as crt.gee's (a leverage of 1 matters only to the corrections that divide by 1 - leverage)
    notes = gee_notes(fit, top if se in ("md", "kc", "avg") else 0.0)
    # the exchangeable working correlation: the ICC on the response scale
    return ModelEstimate(method, effect, se_value, (effect - q * se_value, effect + q * se_value), p_value,
                         f"SE with the other corrections: {others}; t on {df} df (K - p)", fit.corr_param, df,
                         "; ".join(notes))


def mixed_estimate(prep, alpha: float = 0.05) -> ModelEstimate:
    """Random-intercept model for the cluster: REML LMM, or a maximum-likelihood GLMM for binary/count."""
    x = _design(prep)
    # the arm is a cluster-level term: with as many cluster-level coefficients as clusters (one cluster per arm)
    # no between-cluster df remain and the cluster variance cannot be told from the arm effect
    between = int(between_within_df(x, prep.cluster_index)[1])
    if between < 1:
        k = len(prep.cluster_sizes)
        method = ("Mixed model (random cluster intercept, REML)" if prep.family == "gaussian"
                  else "Mixed model (random cluster intercept, ML, adaptive quadrature)")
        return ModelEstimate.absent(method, f"not fitted: {k} clusters and {k - between} cluster-level coefficients "
                                            "leave no between-cluster degrees of freedom (the cluster variance "
                                            "cannot be told from the arm effect)")
    if prep.family == "gaussian":
        from crt_widgets.core.models.mixed import mixed_model

        cols = {f"x{j}": x[:, j] for j in range(2, x.shape[1])}
        frame = pd.DataFrame({"y": prep.y, "treat": prep.treated, "cluster": prep.cluster_index, **cols})
        formula = "y ~ treat" + "".join(f" + {c}" for c in cols)
        # Kenward-Roger (adjusted SE and df) with fewer than 40 clusters, where the model-based SE is too
        # small (Kenward and Roger 1997; Leyrat et al. 2018 for cluster trials); Satterthwaite above
        few = len(prep.cluster_sizes) < KENWARD_ROGER_BELOW
        ddf = "kenward-roger" if few else "satterthwaite"
        fit = mixed_model(formula, frame, groups=["cluster"], method="reml", ddf=ddf, alpha=alpha)
        effect, se, df = float(fit.fe_params["treat"]), float(fit.bse["treat"]), float(fit.df["treat"])
        low, high = fit.conf_int().loc["treat"]
        icc = list(fit.icc.values())[0] if fit.icc else float("nan")
        name = "Kenward-Roger SE and df" if few else "Satterthwaite df"
        return ModelEstimate(f"Mixed model (random cluster intercept, REML, {name})", effect, se,
                             (float(low), float(high)), float(fit.pvalues["treat"]),
                             f"ICC {icc:.3g}; t on {df:.2f} df ({ddf}: "
                             f"{'fewer than' if few else 'at least'} {KENWARD_ROGER_BELOW} clusters)", icc, df)
    from crt_widgets.core.models.glmm import fit_random_intercept_glmm

    fit = fit_random_intercept_glmm(prep.y, x, prep.cluster_index, prep.family, n_quad=10)
    effect, se = float(fit.coef[1]), float(fit.se[1])
    # a Wald t on the between-within df (Li and Redden 2015): the arm is a cluster-level term, so clusters minus
    # the cluster-level parameters; with few clusters a Wald z is anti-conservative
    df = int(fit.df[1])  # at least 1: checked above
    q = stats.t.ppf(1 - alpha / 2, df)
    p = float(2 * stats.t.sf(abs(effect / se), df))
    icc = latent_icc(fit.sigma**2, prep.family, float(np.mean(prep.y)))
    return ModelEstimate("Mixed model (random cluster intercept, ML, adaptive quadrature)", effect, se,
                         (effect - q * se, effect + q * se), p,
                         f"cluster SD {fit.sigma:.3g}, latent-scale ICC {icc:.3g}; Wald t on {df} df", icc, df)


@dataclass(frozen=True, eq=False)
class TrialAnalysis:
    """The permutation test and its model-based companions for one trial (and, when asked, the
    cluster-average and individual-average estimands); ``notes`` says what the reader should know."""

    permutation: PermutationResult
    gee: ModelEstimate | None
    mixed: ModelEstimate | None
    estimands: list[EstimandEstimate] | None = None
    notes: list[str] = field(default_factory=list)
    space_sha256: str = ""  # the SHA-256 of the randomization space analysed over (the design's commitment)

    def table(self) -> pd.DataFrame:
        """One row per method: effect, two-sided interval, the p-value for the permutation test's
        alternative (one-sided model p-values from their Wald tests), the t reference df, and the ICC
        each model estimates (GEE: its exchangeable working correlation, on the response scale; mixed
        model: response scale for continuous outcomes, latent scale for binary and count ones), as
        CONSORT's extension for cluster trials asks to report; ``note`` says why a row has no numbers.
        Effects are on the link scale, except the estimands' rows (their scale is in the method: a
        difference, or a ratio with the SE of its log), followed by the permutation test of the
        individual-average statistic (the first row tests the cluster-average one)."""
        nan = np.nan
        rows = []
        p = self.permutation
        if p.conf_int is not None:
            rows.append(("Clustered permutation test (inverted)", p.estimate, nan, *p.conf_int, p.p_value, nan, nan, ""))
        elif p.estimate is not None:  # an outcome that does not vary: the estimate 0, no interval
            rows.append(("Clustered permutation test", p.estimate, nan, nan, nan, p.p_value, nan, nan, ""))
        else:
            rows.append(("Clustered permutation test", nan, nan, nan, nan, p.p_value, nan, nan, ""))
        for m in (self.gee, self.mixed):
            if m is not None:
                rows.append((m.method, m.effect, m.se, *m.conf_int, m.one_sided(p.alternative), m.df, m.icc, m.note))
        for e in self.estimands or ():
            rows.append((e.method, e.estimate, e.se, *e.conf_int, e.one_sided(p.alternative), e.df, nan, e.note))
        if self.estimands:
            weighted = next(e for e in self.estimands if e.estimand == "individual-average")
            rows.append(("Clustered permutation test, individual-average (size-weighted) statistic", nan, nan, nan,
                         nan, weighted.permutation_p_value, nan, nan, ""))
        column = "p_value" if p.alternative == "two-sided" else f"p_value ({p.alternative})"
        columns = ["method", "effect", "se", "ci_low", "ci_high", column, "df", "icc", "note"]
        return pd.DataFrame(rows, columns=columns).set_index("method")

    def estimands_table(self) -> pd.DataFrame:
        """The estimands alone: estimate, interval, Wald t p-value (two-sided), the permutation p-value of the
        estimand's statistic (for the analysis' alternative) and the standardized arm means."""
        if not self.estimands:
            raise ValueError("estimands: this analysis was run without them (analyze_trial(..., estimands=True))")
        return pd.DataFrame([{"estimand": e.estimand, "scale": e.scale, "estimate": e.estimate, "se": e.se,
                              "ci_low": e.conf_int[0], "ci_high": e.conf_int[1], "p_value": e.p_value, "df": e.df,
                              "permutation_p_value": e.permutation_p_value, "treated_mean": e.treated_mean,
                              "control_mean": e.control_mean} for e in self.estimands]).set_index(["estimand", "scale"])

    def to_dict(self) -> dict[str, Any]:
        """The test and every method's estimate as plain values (JSON with :func:`~crt_widgets.core.spaceio.json_ready`)."""
        return {"space_sha256": self.space_sha256, "permutation": self.permutation.to_dict(),
                "estimates": self.table().reset_index().to_dict(orient="records"), "notes": list(self.notes)}

    def __repr__(self) -> str:
        return f"TrialAnalysis(\n{self.table().to_string()}\n)"


def _separation_note(prep) -> str | None:
    """For a binary or count outcome, an arm where it does not vary (no events, or only events): the
    model's arm effect is infinite (separation), so the model rows are left empty and say so."""
    if prep.family == "gaussian":
        return None
    for flag, name in ((1.0, "treated"), (0.0, "control")):
        y = prep.y[prep.treated == flag]
        if len(y) and np.ptp(y) == 0 and (y[0] == 0 or prep.family == "binomial"):
            what = "no events" if y[0] == 0 else "an event for everyone"
            scale = "log odds ratio" if prep.family == "binomial" else "log rate ratio"
            return (f"the outcome is {y[0]:g} for everyone in the {name} arm ({what}): the {scale} is infinite "
                    f"(separation), a model cannot estimate it")
    return None


def _fit_quietly(method: str, fit) -> ModelEstimate:
    """A model fit with its numerical warnings kept out of the user's output (the row says to take care) and
    a failure turned into a row that says so, never a traceback or a library's warning text."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            estimate = fit()
        except ValueError as error:  # the models' own messages say what is wrong with these data
            return ModelEstimate.absent(method, f"not fitted: {error}")
        except (np.linalg.LinAlgError, ArithmeticError):
            return ModelEstimate.absent(method, "not fitted: the fitting routine failed on these data")
    if caught and not estimate.note:
        estimate = replace(estimate, note="the fitting routine reported a numerical problem: treat with caution")
    return estimate


def analyze_trial(data: pd.DataFrame, outcome: str, cluster: str, space: Any, covariates: Sequence[str] = (),
                  categorical: Sequence[str] = (), family: str = "gaussian", *, alternative: str = "two-sided",
                  alpha: float = 0.05, models: Sequence[str] = MODELS, gee_se: str = "md", estimands: bool = False,
                  cluster_ids: Sequence | None = None, observed: Any = None, simple_size: int = 50_000,
                  seed: int | None = None, audit: Any = None) -> TrialAnalysis:
    """Permutation test with its interval, plus GEE and mixed-model estimates of the same effect.

    Arguments as :func:`crt_widgets.permutation_test`; ``models`` picks the companions
    (``"gee"``, ``"mixed"``); ``gee_se`` the GEE's sandwich correction (``"md"``, ``"kc"``, ``"fg"``,
    ``"avg"``, ``"robust"``; see :func:`crt_widgets.gee`), also used for the estimands' intervals;
    ``estimands=True`` adds the cluster-average and individual-average effects (difference, and ratio for
    binary and count outcomes) with their permutation tests. ``alternative`` sets the permutation test's
    side, and the table gives the models' Wald p-values for the same side (intervals stay two-sided).
    Model effects are on the link scale (mean difference, log odds ratio, log rate ratio). Note the
    estimands differ for binary and count outcomes: the GEE's effect is population-averaged, the mixed
    model's is cluster-specific (larger in size when clusters vary).
    """
    family = check_family(family)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative: must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    if gee_se not in SE_LABELS:
        raise ValueError(f"gee_se: must be one of {', '.join(SE_LABELS)}, got {gee_se!r}")
    perm_space, prep = prepare_test(data, outcome, cluster, space, covariates, categorical, family,
                                    cluster_ids=cluster_ids, observed=observed, simple_size=simple_size, seed=seed,
                                    audit=audit)
    perm = run_test(prep, perm_space, alternative=alternative, ci=True, alpha=alpha)
    full = prep
    if perm_space.control is not None:  # the models compare the same two groups: the clusters of the others go
        prep = prep.clusters((perm_space.observed_arm + perm_space.observed_control) > 0)
    if models or estimands:
        _design_with_names(prep)  # a treatment collinear with the covariates is the user's error: say so first
    constant = constant_outcome_note(prep.y, family)
    degenerate = constant or _separation_note(prep)  # the models' arm effect does not exist or is infinite
    notes = [] if degenerate is None else [degenerate]
    gee = mixed = found = None
    if "gee" in models:
        method = f"GEE (exchangeable), {SE_LABELS[gee_se]}"
        gee = (ModelEstimate.absent(method, f"not fitted: {degenerate}") if degenerate
               else _fit_quietly(method, lambda: gee_estimate(prep, alpha, gee_se)))
    if "mixed" in models:
        method = ("Mixed model (random cluster intercept, REML)" if family == "gaussian"
                  else "Mixed model (random cluster intercept, ML, adaptive quadrature)")
        mixed = (ModelEstimate.absent(method, f"not fitted: {degenerate}") if degenerate
                 else _fit_quietly(method, lambda: mixed_estimate(prep, alpha)))
    if estimands:
        if constant:
            notes.append("estimands: not estimated, the outcome does not vary")
        else:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                found = estimate_estimands(prep, _design(prep), perm_space, full, alpha=alpha, se=gee_se,
                                           alternative=alternative)
    return TrialAnalysis(perm, gee, mixed, found, notes, space_sha256=perm_space.sha256())
