"""Linear mixed models with nested random intercepts: ``mixed_model(formula, data, groups)``.

The fast engine (:mod:`crt_widgets.core.models.mixed_fast`) fits random intercepts for one grouping
level, or two nested levels (e.g. representatives within centres), by REML or ML from per-group
sufficient statistics; it reaches lme4's optimum and fits Buisson's (2021, ch. 10) 695,205 calls in well
under two seconds. ``engine="statsmodels"`` (also chosen automatically for ``re_formula``, i.e.
random slopes) fits the same call with statsmodels' MixedLM.

Tests and intervals of the fixed effects use t distributions on denominator degrees of freedom
(:mod:`crt_widgets.core.models.ddf`): ``ddf="satterthwaite"`` (lmerTest's default), ``"kenward-roger"``
(pbkrtest's adjusted covariance and df; REML only) or ``"z"`` (normal, statsmodels' choice).

>>> from crt_widgets.datasets import load_callcenter
>>> fit = mixed_model("call_CSAT ~ reason + age", load_callcenter(), groups=["center_ID", "rep_ID"])
>>> list(fit.fe_params.index)
['Intercept', 'reason[T.property]', 'age']
>>> sorted(fit.variance_components)
['center_ID', 'rep_ID', 'residual']
>>> fit.ddf, round(float(fit.df["Intercept"]), 1)     # 10 centres: about 9 df for the intercept
('satterthwaite', 9.1)
"""
from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import patsy
from scipy import stats as sps

from crt_widgets.core.models import mixed_fast
from crt_widgets.core.models.ddf import NestedDdf, check_ddf
from crt_widgets.core.models.residuals import constant_outcome_note

ENGINES = ("auto", "fast", "statsmodels")
METHODS = ("reml", "ml")

# names patsy formulas may use that are not data columns
_FORMULA_BUILTINS = {
    "C", "I", "Q", "np", "log", "log2", "log10", "exp", "sqrt", "abs", "center", "standardize", "scale",
    "bs", "cr", "cc", "te", "Treatment", "Sum", "Poly", "Diff", "Helmert", "True", "False", "None",
}


@dataclass(frozen=True, repr=False)
class MixedResult:
    """A fitted linear mixed model with nested random intercepts.

    Attributes: ``fe_params`` (fixed effects, named as statsmodels/patsy name terms), ``bse``,
    ``tvalues``, ``df`` (denominator degrees of freedom per coefficient; infinite for ``ddf="z"``),
    ``pvalues`` (two-sided t tests on ``df``), ``cov_params`` (DataFrame; for ``ddf="kenward-roger"``
    the Kenward-Roger adjusted covariance, pbkrtest's ``vcovAdj``, with the model-based one in
    ``cov_params_model``), ``variance_components`` (dict keyed
    by the grouping column names and ``"residual"``), ``variance_se`` (same keys; fast engine:
    inverse observed information of the (RE)ML likelihood in the variances, NaN when
    unavailable; statsmodels engine: the values statsmodels' summary prints, which follow its own
    scaled parametrisation and run larger), ``llf`` (log-likelihood; the REML one for REML),
    ``icc`` (intra-class correlations: for the outer level, two rows in the same outer group but
    different inner groups; for the inner level, two rows in the same inner group), plus
    bookkeeping (``formula``, ``groups``, ``method``, ``engine``, ``nobs``, ``n_groups``,
    ``converged``).
    """

    formula: str
    groups: tuple[str, ...]
    method: str
    engine: str
    nobs: int
    n_groups: dict[str, int]
    group_sizes: dict[str, tuple[int, int, float]]
    outcome: str
    fe_params: pd.Series
    cov_params: pd.DataFrame
    variance_components: dict[str, float]
    variance_se: dict[str, float]
    llf: float
    converged: bool
    alpha: float = 0.05
    ddf: str = "z"
    df: pd.Series | None = None
    cov_params_model: pd.DataFrame | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.df is None:  # the normal reference: infinite df
            object.__setattr__(self, "df", pd.Series(np.inf, index=self.fe_params.index, name="df"))
        if self.cov_params_model is None:
            object.__setattr__(self, "cov_params_model", self.cov_params)

    @property
    def params(self) -> pd.Series:
        """The fixed effects (``fe_params``; statsmodels' MixedLM also lists the variance parameters in its
        ``params``, here they are in ``variance_components``)."""
        return self.fe_params

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov_params.to_numpy())), index=self.fe_params.index, name="bse")

    @property
    def tvalues(self) -> pd.Series:
        return (self.fe_params / self.bse).rename("z" if self.ddf == "z" else "t")

    @property
    def pvalues(self) -> pd.Series:
        p = 2 * sps.t.sf(np.abs(self.tvalues.to_numpy()), self.df.to_numpy())
        return pd.Series(p, index=self.fe_params.index, name="pvalue")

    @property
    def scale(self) -> float:
        """The residual variance (statsmodels' ``scale``)."""
        return self.variance_components["residual"]

    @property
    def icc(self) -> dict[str, float]:
        total = sum(self.variance_components.values())
        out, cumulative = {}, 0.0
        for name in self.groups:
            cumulative += self.variance_components[name]
            out[name] = cumulative / total if total > 0 else float("nan")
        return out

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Confidence intervals of the fixed effects: t quantiles on ``df`` (normal ones for ``ddf="z"``)."""
        a = self.alpha if alpha is None else alpha
        if not 0 < a < 1:
            raise ValueError(f"alpha must be in (0, 1), got {a}")
        q = sps.t.ppf(1 - a / 2, self.df.to_numpy())
        lo, hi = self.fe_params - q * self.bse, self.fe_params + q * self.bse
        return pd.DataFrame({f"[{a / 2:g}": lo, f"{1 - a / 2:g}]": hi})

    def summary(self):
        """statsmodels' ``summary2.Summary``: model information, the fixed effects with their df, and the
        variance components (``str()`` of it is the printed table)."""
        from statsmodels.iolib.summary2 import Summary

        sizes = self.group_sizes[self.groups[0]]
        method = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger", "z": "normal (z)"}[self.ddf]
        info = {"Model:": "MixedLM", "Dependent Variable:": self.outcome, "No. Observations:": str(self.nobs),
                "Method:": self.method.upper(), "No. Groups:": str(self.n_groups[self.groups[0]]),
                "Scale:": f"{self.scale:.4f}", "Min. group size:": str(sizes[0]),
                "Log-Likelihood:": f"{self.llf:.4f}", "Max. group size:": str(sizes[1]),
                "Converged:": "Yes" if self.converged else "No", "Mean group size:": f"{sizes[2]:.1f}",
                "Denominator df:": method}
        if len(self.groups) == 2:
            info["No. inner groups:"] = str(self.n_groups[self.groups[1]])
        info["Engine:"] = self.engine
        ci = self.conf_int()
        stat = "z" if self.ddf == "z" else "t"
        columns = ["Coef.", "Std.Err.", stat, "df", f"P>|{stat}|", ci.columns[0], ci.columns[1]]
        rows = [[f"{b:.4f}", f"{se:.4f}", f"{t:.3f}", f"{d:.2f}", f"{p:.4f}", f"{lo:.4f}", f"{hi:.4f}"]
                for b, se, t, d, p, lo, hi in zip(self.fe_params, self.bse, self.tvalues, self.df, self.pvalues,
                                                  ci.iloc[:, 0], ci.iloc[:, 1])]
        # the variance components below the fixed effects, as statsmodels' MixedLM summary lays them out
        labels = {self.groups[0]: "Group Var"} | {g: f"{g} Var" for g in self.groups[1:]}
        for name in self.groups:
            se = self.variance_se.get(name, float("nan"))
            rows.append([f"{self.variance_components[name]:.4f}", f"{se:.4f}" if np.isfinite(se) else "",
                         *[""] * 5])
        fixed = pd.DataFrame(rows, index=[*self.fe_params.index, *(labels[g] for g in self.groups)], columns=columns)
        if self.ddf == "z":
            fixed = fixed.drop(columns="df")
        out = Summary()
        out.add_title("Mixed Linear Model Regression Results")
        out.add_dict(info)
        out.add_df(fixed)
        if self.ddf == "kenward-roger":
            out.add_text("Std.Err. from the Kenward-Roger adjusted covariance (pbkrtest's vcovAdj); "
                         "df by Kenward and Roger (1997).")
        elif self.ddf == "satterthwaite":
            out.add_text("df by Satterthwaite's approximation (as lmerTest).")
        return out

    def __repr__(self) -> str:
        fe = ", ".join(f"{k}={v:.4g}" for k, v in self.fe_params.items())
        vc = ", ".join(f"{k}={v:.4g}" for k, v in self.variance_components.items())
        return (f"MixedResult({self.method.upper()}, engine={self.engine!r}, nobs={self.nobs}, "
                f"groups={list(self.groups)}, fe_params: {fe}; variances: {vc}; llf={self.llf:.4f}, ddf={self.ddf!r})")

    def __str__(self) -> str:
        return str(self.summary())


def mixed_model(
    formula: str,
    data: pd.DataFrame,
    groups: str | Sequence[str],
    method: str = "reml",
    *,
    engine: str = "auto",
    re_formula: str | None = None,
    alpha: float = 0.05,
    variance_se: bool = True,
    ddf: str | None = None,
) -> MixedResult:
    """Fit ``formula`` with random intercepts for ``groups`` ([outer] or [outer, inner], nested).

    The inner level is nested in the outer one: inner labels are taken within each outer group
    (as lme4's ``(1 | outer/inner)`` and statsmodels' ``vc_formula={inner: "0 + C(inner)"}``).
    ``method`` is ``"reml"`` or ``"ml"``. ``engine="auto"`` uses the fast engine unless
    ``re_formula`` (statsmodels' random-effects formula for the outer groups, e.g. ``"1 + age"``)
    asks for random slopes, which only statsmodels fits. Rows with a missing value in a used
    column are dropped (as statsmodels does). ``variance_se=False`` skips the observed information
    of the variance components (a few dozen more deviance evaluations).

    ``ddf`` picks the reference distribution of the fixed-effect tests and intervals:
    ``"satterthwaite"`` (the default for random intercepts, lmerTest's), ``"kenward-roger"``
    (pbkrtest's adjusted covariance and df, REML only; recommended with few clusters) or ``"z"``
    (normal, infinite df; the default with random slopes, where the closed forms do not apply).

    >>> from crt_widgets.datasets import load_callcenter
    >>> fit = mixed_model("call_CSAT ~ reason + age", load_callcenter(), groups=["center_ID", "rep_ID"])
    >>> round(float(fit.fe_params["age"]), 3)
    0.019
    """
    outcome, X, names, group_codes, group_names, frame = _prepare(formula, data, groups, re_formula)
    method = str(method).lower()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if re_formula is not None and re_formula.strip() not in ("1", "") and engine == "fast":
        raise ValueError(f"the fast engine fits random intercepts only; re_formula={re_formula!r} needs engine='statsmodels'")
    slopes = re_formula is not None and re_formula.strip() not in ("1", "")
    use_statsmodels = engine == "statsmodels" or (engine == "auto" and slopes)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    ddf = check_ddf("z" if ddf is None and slopes else "satterthwaite" if ddf is None else ddf, method)
    if slopes and ddf != "z":
        raise ValueError(f"ddf={ddf!r} is computed for nested random intercepts; with random slopes "
                         f"(re_formula={re_formula!r}) use ddf='z'")
    y, codes = outcome[1], group_codes
    common = dict(formula=formula, groups=tuple(group_names), method=method, nobs=int(y.size),
                  n_groups={g: int(c.max()) + 1 for g, c in zip(group_names, codes)},
                  group_sizes={g: _sizes(c) for g, c in zip(group_names, codes)}, outcome=outcome[0], alpha=alpha)
    if use_statsmodels:
        result = _fit_statsmodels(X, y, names, codes, group_names, re_formula, common, frame)
    else:
        result = _fit_fast(X, y, names, codes, group_names, common, variance_se)
    return _with_ddf(result, X, y, codes, ddf)


def _nested_stats(X, y, codes) -> mixed_fast.NestedStats:
    return mixed_fast.nested_stats(X, y, codes[-1], codes[0] if len(codes) == 2 else None)


def _with_ddf(result: MixedResult, X, y, codes, ddf: str) -> MixedResult:
    """The result with its denominator df (and, for Kenward-Roger, the adjusted covariance)."""
    stats = result.extra.pop("stats", None)
    if ddf == "z":
        return result
    stats = stats or _nested_stats(X, y, codes)
    variances = np.array([result.variance_components[g] for g in (*result.groups, "residual")])
    names = result.fe_params.index
    with np.errstate(all="ignore"):
        algebra = NestedDdf(stats, np.maximum(variances, 0.0), reml=result.method == "reml")
        if ddf == "satterthwaite":
            df, cov = algebra.satterthwaite(), result.cov_params
        else:
            adjusted, df = algebra.kenward_roger()
            cov = pd.DataFrame(adjusted, index=names, columns=names)
    return replace(result, ddf=ddf, df=pd.Series(df, index=names, name="df"), cov_params=cov,
                   cov_params_model=result.cov_params)


def _fit_fast(X, y, names, codes, group_names, common, variance_se) -> MixedResult:
    stats = _nested_stats(X, y, codes)
    p = stats.n_fe
    if np.linalg.matrix_rank(stats.cross[:p, :p]) < p:
        raise ValueError(f"the fixed-effects design of {common['formula']!r} is rank deficient (collinear terms)")
    fit = mixed_fast.fit_nested(stats, reml=common["method"] == "reml")
    keys = [*group_names, "residual"]
    values = [*fit.variances.tolist(), fit.sigma2]
    se = np.full(len(keys), np.nan)
    if variance_se:
        with np.errstate(all="ignore"):
            cov = mixed_fast.variance_covariance(stats, fit)
            diag = np.diag(cov)
            se = np.where(diag > 0, np.sqrt(np.abs(diag)), np.nan)
    return MixedResult(
        engine="fast",
        fe_params=pd.Series(fit.beta, index=names, name="fe_params"),
        cov_params=pd.DataFrame(fit.cov_beta, index=names, columns=names),
        variance_components=dict(zip(keys, map(float, values))),
        variance_se=dict(zip(keys, map(float, se))),
        llf=-0.5 * fit.deviance,
        converged=fit.converged,
        extra={"theta": fit.theta, "n_evaluations": fit.n_evaluations, "stats": stats},
        **common,
    )


def _fit_statsmodels(X, y, names, codes, group_names, re_formula, common, frame) -> MixedResult:
    import statsmodels.api as sm

    kwargs = {"exog_re": np.ones((len(y), 1))}  # the outer random intercept (statsmodels drops it when exog_vc is given)
    if len(codes) == 2:
        # inner groups as a variance component within each outer group (Buisson's (2021) vc_formula)
        kwargs["exog_vc"] = _vc_design(codes[0], codes[1], group_names[1])
    if re_formula is not None and re_formula.strip() not in ("1", ""):
        kwargs["exog_re"] = patsy.dmatrix(re_formula, frame, return_type="dataframe", NA_action="raise")
    model = sm.MixedLM(y, pd.DataFrame(X, columns=names), groups=codes[0], **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; reported through .converged
        res = model.fit(reml=common["method"] == "reml")
    cov_re = np.asarray(res.cov_re, dtype=float)
    k_fe, k_re2 = len(names), cov_re.shape[0] * (cov_re.shape[0] + 1) // 2
    bse = np.asarray(res.bse, dtype=float)
    root_scale = float(np.sqrt(res.scale))
    variances, se = [float(cov_re[0, 0])], [root_scale * bse[k_fe]]  # as statsmodels' summary reports them
    if len(codes) == 2:
        variances.append(float(res.vcomp[0]))
        se.append(root_scale * bse[k_fe + k_re2])
    variances.append(float(res.scale))
    se.append(float("nan"))
    keys = [*group_names, "residual"]
    fe = pd.Series(np.asarray(res.fe_params), index=names, name="fe_params")
    cov = pd.DataFrame(np.asarray(res.cov_params())[:k_fe, :k_fe], index=names, columns=names)
    return MixedResult(engine="statsmodels", fe_params=fe, cov_params=cov,
                       variance_components=dict(zip(keys, variances)), variance_se=dict(zip(keys, map(float, se))),
                       llf=float(res.llf), converged=bool(res.converged),
                       extra={"statsmodels_result": res, "cov_re": cov_re}, **common)


def _vc_design(outer: np.ndarray, inner: np.ndarray, name: str):
    """statsmodels' ``exog_vc``: per outer group, a sparse-free 0/1 matrix of its inner groups."""
    from statsmodels.regression.mixed_linear_model import VCSpec

    order = np.argsort(outer, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(outer[order]) != 0])
    mats, colnames = [], []
    for rows in np.split(order, starts[1:]):  # one small matrix per outer group (statsmodels' layout)
        labels, local = np.unique(inner[rows], return_inverse=True)
        mats.append((np.arange(labels.size) == local[:, None]).astype(float))
        colnames.append([f"{name}[{v}]" for v in labels])
    return VCSpec([name], [colnames], [mats])


def _prepare(formula: str, data: pd.DataFrame, groups, re_formula: str | None = None):
    """Validate the inputs once and build y, the fixed-effects design and integer group codes."""
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("data is empty (0 rows)")
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a string 'outcome ~ terms', got {formula!r}")
    group_names = [groups] if isinstance(groups, str) else list(groups)
    if len(group_names) not in (1, 2):
        raise ValueError(f"groups must name one or two nested grouping columns ([outer] or [outer, inner]), got {group_names}")
    for g in group_names:
        if g not in data.columns:
            raise ValueError(f"grouping column {g!r} is not a column of data")
    lhs, _ = formula.split("~", 1)
    outcome_name = lhs.strip()
    for name in _formula_names(formula):
        if name not in data.columns:
            raise ValueError(f"formula {formula!r} names {name!r}, which is not a column of data")
    if outcome_name in data.columns:
        col = data[outcome_name]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise ValueError(f"outcome column {outcome_name!r} must be numeric, got dtype {col.dtype}")
    # patsy is ~60x faster on categoricals than on object/string columns; sorted categories give
    # the same levels (and term names) as patsy's own sorting
    wanted = _formula_names(formula) | (_formula_names("~" + re_formula) if re_formula else set())
    for name in wanted:
        if name not in data.columns:
            raise ValueError(f"re_formula {re_formula!r} names {name!r}, which is not a column of data")
    used = [c for c in data.columns if c in wanted]
    frame = data[used].copy()
    for c in used:
        if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c]):
            frame[c] = frame[c].astype("category")
    try:
        y_df, X_df = patsy.dmatrices(formula, frame, return_type="dataframe", NA_action="drop")
    except patsy.PatsyError as exc:
        raise ValueError(f"formula {formula!r} could not be built: {exc}") from None
    if X_df.shape[0] == 0:
        raise ValueError(f"data has no complete rows for formula {formula!r}")
    if y_df.shape[1] != 1:
        raise ValueError(f"outcome of formula {formula!r} must be one numeric column")
    rows = y_df.index
    codes = []
    for g in group_names:
        col = data[g].loc[rows] if len(rows) != len(data) else data[g]
        if col.isna().any():
            raise ValueError(f"grouping column {g!r} has missing values")
        codes.append(pd.factorize(col, sort=True)[0].astype(np.int64))
    if codes[0].max() < 1:
        raise ValueError(f"grouping column {group_names[0]!r} has one level; a random intercept needs at least two groups")
    if len(codes) == 2:
        inner_raw = codes[1]
        combined = codes[0] * (int(inner_raw.max()) + 1) + inner_raw
        codes[1] = pd.factorize(combined, sort=True)[0].astype(np.int64)
        if codes[1].max() <= codes[0].max():
            raise ValueError(f"grouping column {group_names[1]!r} has one level within every {group_names[0]!r} group; "
                             "the inner random intercept cannot be told apart from the outer one")
    X, y = X_df.to_numpy(dtype=float), y_df.to_numpy(dtype=float).ravel()
    infinite = [name for name, column in zip([outcome_name, *X_df.columns], [y, *X.T]) if np.isinf(column).any()]
    if infinite:
        raise ValueError(f"infinite values in {', '.join(map(repr, infinite))}; fix or drop those rows first")
    _check_outcome_varies(y, codes[-1], outcome_name, group_names[-1])
    return (outcome_name, y), X, list(X_df.columns), codes, group_names, frame.loc[rows]


def _check_outcome_varies(y: np.ndarray, finest: np.ndarray, outcome: str, group: str) -> None:
    """A ValueError when the residual variance is 0 by construction: an outcome that is one value for everyone,
    or one value within every group of the finest level (a group-level outcome repeated on its rows), where the
    likelihood has no maximum and the df algebra divides by the residual variance."""
    note = constant_outcome_note(y, "gaussian")
    if note:
        raise ValueError(f"outcome {outcome!r}: {note}")
    sizes = np.bincount(finest)
    spread = np.abs(y - (np.bincount(finest, y) / np.maximum(sizes, 1))[finest])
    if spread.max() <= 1e-12 * max(np.abs(y).max(), 1.0):
        raise ValueError(f"outcome {outcome!r} does not vary within any {group!r} group (one value repeated on each "
                         f"group's rows): the residual variance is 0 and a random-intercept model is not "
                         f"identified; analyse the {group!r} means, one row per group, instead")


def _formula_names(formula: str) -> set[str]:
    """Variable names a patsy formula reads from the data (Python names in its factor expressions)."""
    try:
        desc = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError as exc:
        raise ValueError(f"formula {formula!r} could not be read: {exc}") from None
    names: set[str] = set()
    for term in [*desc.lhs_termlist, *desc.rhs_termlist]:
        for factor in term.factors:
            code = getattr(factor, "code", str(factor))
            try:
                tree = ast.parse(code, mode="eval")
            except SyntaxError:  # pragma: no cover - patsy would reject it too
                continue
            called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
            names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - called - _FORMULA_BUILTINS
    return names


def _sizes(codes: np.ndarray) -> tuple[int, int, float]:
    counts = np.bincount(codes)
    return int(counts.min()), int(counts.max()), float(counts.mean())
