"""GEE with an exchangeable working correlation and small-sample corrected sandwich variances.

``gee(formula, data, cluster, family, corr="exchangeable", se="md")`` fits the marginal model of
Liang and Zeger (1986) with a canonical link (identity, logit, log) and reports t tests on
K - p degrees of freedom (clusters minus coefficients), with the sandwich variance corrected for
the few clusters of a typical cluster randomized trial:

* ``"robust"``: Liang and Zeger's sandwich, uncorrected;
* ``"md"``: Mancl and DeRouen (2001), residuals premultiplied by (I - H_ii)^-1 (the default);
* ``"kc"``: Kauermann and Carroll (2001), by (I - H_ii)^-1/2;
* ``"fg"``: Fay and Graubard (2001), each cluster's score scaled by diag(1 - min(b, [B_i B^-1]_jj))^-1/2, b = 0.75
  (coordinate-wise, so not invariant to reparametrisation: centre covariates far from 0 before using it);
* ``"avg"``: the average of the MD and KC variances (Ford and Westgate 2017).

Everything is computed from per-cluster sums, never from an n_i x n_i matrix, so memory is linear in
the cluster size (12 clusters of 100,000 people fit in well under 1 GB). With whitened rows
x~ = sqrt(v w) x and Pearson residuals e~ = sqrt(w) (y - mu) / sqrt(v) (v the variance function,
which is also d mu / d eta for a canonical link; w a prior weight, 1 unless given), the working
correlation R_i = (1 - rho) I + rho 11' has the Sherman-Morrison inverse
R_i^-1 = (I - c_i 11') / (1 - rho), c_i = rho / (1 + (n_i - 1) rho), so a cluster's information and
score are

    B_i = (X~_i'X~_i - c_i s_i s_i') / (1 - rho),   U_i = (X~_i'e~_i - c_i s_i t_i) / (1 - rho),

with s_i, t_i the column sums of X~_i and e~_i (the scale phi cancels from every sandwich). The
leverage H_ii = D_i B^-1 D_i' V_i^-1 is similar to the symmetric G_i B^-1 G_i' (G_i = V_i^-1/2 D_i), whose
non-zero eigenvalues are those of the p x p matrix M_i = L^-1 B_i L^-T (B = L L'); by the push-through
identity any function f of it acts on the score as

    D_i'V_i^-1 f(H_ii) e_i = U_i + B_i L^-T h(M_i) L^-1 U_i,   h(l) = (f(l) - 1) / l,

with f(l) = 1 / (1 - l) for MD and (1 - l)^-1/2 for KC (its principal square root), so each
correction costs one p x p eigendecomposition per cluster (batched).

The exchangeable correlation and the scale are geepack's default moment estimators (Yan and Fine
2004), with no degrees-of-freedom correction: phi = sum e~^2 / sum w and rho = the mean over all
within-cluster pairs of e~_j e~_k / phi (pairs weighted by w_j w_k). statsmodels' default divides by
N - p instead, which gives a correlation 0.3-1.5% lower on small trials and moves p-values in the
third decimal.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(3)
>>> cl = np.repeat(np.arange(12), 30)
>>> arm = (np.arange(12) % 2)[cl]
>>> data = pd.DataFrame({"cl": cl, "arm": arm, "y": 0.5 * arm + rng.normal(0, 0.5, 12)[cl] + rng.normal(size=360)})
>>> fit = gee("y ~ arm", data, "cl")
>>> fit.df, list(fit.params.index)
(10, ['Intercept', 'arm'])
>>> bool(fit.bse["arm"] > fit.standard_errors.loc["arm", "robust"])   # MD inflates the sandwich
True
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
from scipy import special, stats

from crt_widgets.core.models.residuals import check_family, check_outcome, constant_outcome_note

__all__ = ["CORRELATIONS", "SE_LABELS", "SE_TYPES", "GEEFit", "GEEResult", "check_se", "corrected_scores",
           "fit_gee_arrays", "gee", "gee_notes", "sandwich_covariances"]

SE_TYPES = ("robust", "md", "kc", "fg", "avg")
SE_LABELS = {"robust": "robust (Liang-Zeger) SE", "md": "Mancl-DeRouen SE", "kc": "Kauermann-Carroll SE",
             "fg": "Fay-Graubard SE", "avg": "MD-KC average SE"}
CORRELATIONS = ("exchangeable", "independence")
FG_BOUND = 0.75  # Fay and Graubard's (2001) default bound b on the leverage
LEVERAGE_TOL = 1e-8  # a leverage eigenvalue within this of 1 counts as 1
BOUNDARY = 1e-10  # a fitted variance mu (1 - mu) or mu below this: the mean sits at 0 or 1 (R's glm warns alike)
SEPARATION_NOTE = ("fitted means numerically 0 or 1 (separation, e.g. no events in an arm): the coefficients "
                   "diverge, and their SEs and tests mean nothing")


@dataclass(frozen=True, eq=False)
class GEEFit:
    """The array-level fit: coefficients, working correlation and scale, and what the sandwiches need.

    ``bread`` is B = sum B_i (scale-free), ``cluster_information`` the B_i (K x p x p) and
    ``cluster_scores`` the U_i (K x p), all at the solution; ``cluster_sizes`` in sorted cluster order.
    """

    beta: np.ndarray
    corr_param: float
    scale: float
    bread: np.ndarray
    cluster_information: np.ndarray
    cluster_scores: np.ndarray
    cluster_sizes: np.ndarray
    iterations: int
    converged: bool
    corr_clipped: bool = False
    boundary: bool = False  # fitted means numerically 0 or 1 (separation): the coefficients diverge


def _in_range(rho: float, rho_low: float) -> tuple[float, bool]:
    """The working correlation used for a moment estimate ``rho``, and whether it had to change: 0 (independence)
    at or below ``rho_low`` (no exchangeable matrix is positive definite in the largest cluster), just under 1
    above it."""
    if rho <= rho_low:
        return 0.0, True
    if rho > 1 - 1e-8:
        return 1 - 1e-8, True
    return float(rho), False


def gee_notes(fit: "GEEFit", top_leverage: float) -> list[str]:
    """What a reader of a GEE fit must know, in words: no convergence, separation, the working correlation
    replaced, a cluster with leverage 1 (shared by :func:`gee` and the trial analysis table)."""
    notes = []
    if not fit.converged:
        notes.append(f"not converged in {fit.iterations} iterations")
    if fit.boundary:
        notes.append(SEPARATION_NOTE)
    if fit.corr_clipped:
        notes.append("rho's moment estimate is outside the range where an exchangeable working correlation is "
                     "positive definite in every cluster (above -1 / (largest size - 1), below 1): fitted with the "
                     "independence working correlation" if fit.corr_param == 0 else
                     "rho's moment estimate is 1 or above: the working correlation was set just below 1")
    if top_leverage >= 1 - LEVERAGE_TOL:
        notes.append("a cluster has leverage 1 (it alone determines a coefficient): the MD, KC and average "
                     "corrections are undefined (NaN)")
    return notes


def _mean_and_variance(eta: np.ndarray, family: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance function at eta; for a canonical link the variance is also d mu / d eta."""
    if family == "gaussian":
        return eta, np.ones_like(eta)
    if family == "binomial":
        mu = special.expit(eta)
        return mu, mu * (1.0 - mu)
    mu = np.exp(np.minimum(eta, 300.0))
    return mu, mu


def _start(y: np.ndarray, x: np.ndarray, w: np.ndarray, family: str) -> np.ndarray:
    """One weighted least-squares step from R's glm starting means (mustart): ordinary least squares
    for a gaussian outcome, otherwise the linearised response around (y + 0.5) / 2 or y + 0.1."""
    if family == "gaussian":
        eta, v, z = np.zeros_like(y), np.ones_like(y), y
    else:
        mu = (y + 0.5) / 2 if family == "binomial" else y + 0.1
        eta = special.logit(mu) if family == "binomial" else np.log(mu)
        v = mu * (1 - mu) if family == "binomial" else mu
        z = eta + (y - mu) / v
    xw = x * (w * v)[:, None]
    return np.linalg.lstsq(xw.T @ x, xw.T @ z, rcond=None)[0]


class _SortedClusters:
    """Rows sorted by cluster (stable), with the cluster boundaries for ``np.add.reduceat``."""

    def __init__(self, codes: np.ndarray):
        codes = np.asarray(codes)
        self.order = None if np.all(codes[1:] >= codes[:-1]) else np.argsort(codes, kind="stable")
        sorted_codes = codes if self.order is None else codes[self.order]
        self.starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        self.sizes = np.diff(np.r_[self.starts, len(sorted_codes)])

    def rows(self, a: np.ndarray) -> np.ndarray:
        return a if self.order is None else a[self.order]

    def sums(self, a: np.ndarray) -> np.ndarray:
        return np.add.reduceat(a, self.starts, axis=0)


def fit_gee_arrays(y: np.ndarray, x: np.ndarray, clusters: np.ndarray, family: str = "gaussian",
                   corr: str = "exchangeable", weights: np.ndarray | None = None, tol: float = 1e-10,
                   max_iter: int = 100) -> GEEFit:
    """Fit the GEE on arrays by Fisher scoring, alternating with the moment estimates of rho and phi
    (geepack's algorithm; the fixed point is the same), in time and memory linear in the rows.

    ``clusters`` are any labels (rows need not be sorted); ``weights`` are prior weights (geepack's
    ``weights``: they scale each row's whitened design and residual by sqrt(w), and its pairs by w_j w_k).

    >>> import numpy as np
    >>> x = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1]])
    >>> fit = fit_gee_arrays(np.array([1.0, 2, 3, 5, 6, 7]), x, np.array([0, 0, 1, 1, 2, 2]), corr="independence")
    >>> np.round(fit.beta, 6).tolist()   # independence: least squares, the arm means 2 and 6
    [2.0, 4.0]
    """
    groups = _SortedClusters(clusters)
    y = groups.rows(np.asarray(y, dtype=float))
    x = groups.rows(np.asarray(x, dtype=float))
    w = np.ones_like(y) if weights is None else groups.rows(np.asarray(weights, dtype=float))
    sizes = groups.sizes.astype(float)
    exchangeable = corr == "exchangeable"
    # An exchangeable working correlation is positive definite in every cluster only for rho > -1 / (n_max - 1).
    # A moment estimate at or below that bound (outcomes negatively correlated within clusters, sizes unequal)
    # has no exchangeable matrix to stand for: clipped to the edge, the largest cluster's matrix is singular to
    # rounding and the fit diverges (SEs of 1e5 were seen), and geepack's indefinite matrix weights clusters
    # negatively. The independence working correlation (rho = 0) is then used: the GEE stays consistent with
    # any working correlation (Liang and Zeger 1986), and the sandwich keeps the SE honest.
    rho_low = -1.0 / (sizes.max() - 1) if sizes.max() > 1 else -np.inf
    pair_weight = float(np.sum((groups.sums(w) ** 2 - groups.sums(w * w)) / 2)) if exchangeable else 0.0
    beta = _start(y, x, w, family)
    rho, clipped, converged, iterations = 0.0, False, False, 0

    def moments(beta):
        mu, v = _mean_and_variance(x @ beta, family)
        resid = np.sqrt(w) * (y - mu) / np.sqrt(v)
        phi = float(resid @ resid / w.sum())
        rho = 0.0
        if exchangeable and pair_weight > 0 and phi > 0:
            totals = groups.sums(resid)
            rho = float(np.sum((totals**2 - groups.sums(resid**2)) / 2) / (phi * pair_weight))
        return v, resid, phi, rho

    for iterations in range(1, max_iter + 1):
        v, resid, phi, rho = moments(beta)
        rho, clipped = _in_range(rho, rho_low)
        xt = x * np.sqrt(w * v)[:, None]
        c = rho / (1 + (sizes - 1) * rho)
        s, t = groups.sums(xt), groups.sums(resid)
        information = (xt.T @ xt - (s.T * c) @ s) / (1 - rho)
        score = (xt.T @ resid - s.T @ (c * t)) / (1 - rho)
        step = np.linalg.lstsq(information, score, rcond=None)[0]
        for _ in range(30):  # a step that sends the means out of range (e.g. exp overflow) is halved
            if np.all(np.isfinite(x @ (beta + step))):
                break
            step = step / 2
        beta = beta + step
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(beta))):
            converged = True
            break
    v, resid, phi, rho = moments(beta)
    rho, clipped = _in_range(rho, rho_low)
    xt = x * np.sqrt(w * v)[:, None]
    c = rho / (1 + (sizes - 1) * rho)
    s, t = groups.sums(xt), groups.sums(resid)
    p = x.shape[1]
    cross = np.empty((len(sizes), p, p))
    for a in range(p):  # per-cluster X~'X~, one column pair at a time (no n x p x p array)
        for b in range(a, p):
            cross[:, a, b] = cross[:, b, a] = groups.sums(xt[:, a] * xt[:, b])
    information = (cross - c[:, None, None] * s[:, :, None] * s[:, None, :]) / (1 - rho)
    scores = (groups.sums(xt * resid[:, None]) - c[:, None] * s * t[:, None]) / (1 - rho)
    boundary = family != "gaussian" and float(v.min()) < BOUNDARY
    return GEEFit(beta, rho if exchangeable else 0.0, phi, information.sum(axis=0), information, scores,
                  groups.sizes, iterations, converged, clipped, boundary)


def corrected_scores(information: np.ndarray, scores: np.ndarray, kind: str,
                     fg_bound: float = FG_BOUND) -> tuple[np.ndarray, float]:
    """Each cluster's score U_i corrected as ``kind`` (``"robust"``: unchanged, ``"md"``, ``"kc"``, ``"fg"``),
    so that B^-1 (sum u_i u_i') B^-1 is that sandwich; also the largest leverage eigenvalue (MD and KC are
    undefined, NaN, for a cluster whose leverage reaches 1: it alone determines a coefficient).

    >>> import numpy as np
    >>> info = np.array([[[1.0]], [[1.0]], [[2.0]]]); scores = np.array([[1.0], [-1.0], [0.5]])
    >>> u, top = corrected_scores(info, scores, "md")   # leverages 1/4, 1/4, 1/2: U_i / (1 - h_i)
    >>> np.round(u.ravel(), 6).tolist(), top
    ([1.333333, -1.333333, 1.0], 0.5)
    """
    bread = information.sum(axis=0)
    p = bread.shape[0]
    inv_chol = np.linalg.solve(np.linalg.cholesky(bread), np.eye(p))      # L^-1, B = L L'
    eigenvalues, vectors = np.linalg.eigh(inv_chol @ information @ inv_chol.T)   # M_i = L^-1 B_i L^-T
    top = float(eigenvalues.max())
    if kind == "robust":
        return scores, top
    if kind == "fg":
        diagonal = np.einsum("kij,ji->ki", information, inv_chol.T @ inv_chol)   # diag(B_i B^-1)
        return scores * (1 - np.minimum(fg_bound, diagonal)) ** -0.5, top
    with np.errstate(divide="ignore", invalid="ignore"):
        # a leverage of 1 (to rounding) makes I - H_ii singular: the correction is undefined there
        one_minus = np.where(eigenvalues < 1 - LEVERAGE_TOL, 1 - eigenvalues, np.nan)
        root = np.sqrt(one_minus)
        # h(l) = (f(l) - 1) / l: 1 / (1 - l) for MD, ((1 - l)^-1/2 - 1) / l = 1 / (r (1 + r)), r = (1 - l)^1/2, for KC
        h = {"md": 1 / one_minus, "kc": 1 / (root * (1 + root))}[kind]
        projected = np.einsum("ij,kj->ki", inv_chol, scores)                      # L^-1 U_i
        inside = np.einsum("kij,kj,klj,kl->ki", vectors, h, vectors, projected)  # h(M_i) L^-1 U_i
        return scores + np.einsum("kij,jl,kl->ki", information, inv_chol.T, inside), top


def sandwich_covariances(information: np.ndarray, scores: np.ndarray,
                         fg_bound: float = FG_BOUND) -> tuple[dict[str, np.ndarray], float]:
    """The robust, MD, KC, FG and MD-KC average sandwich covariances from each cluster's information
    B_i (K x p x p) and score U_i (K x p); also the largest leverage eigenvalue (see :func:`corrected_scores`).

    >>> import numpy as np
    >>> info = np.array([[[1.0]], [[1.0]], [[2.0]]]); scores = np.array([[1.0], [-1.0], [0.5]])
    >>> cov, top = sandwich_covariances(info, scores)
    >>> round(float(cov["robust"][0, 0]), 6), round(float(cov["md"][0, 0]), 6), top
    (0.140625, 0.284722, 0.5)
    """
    bread_inv = np.linalg.inv(information.sum(axis=0))
    covariances = {}
    for kind in ("robust", "md", "kc", "fg"):
        u, top = corrected_scores(information, scores, kind, fg_bound)
        covariances[kind] = bread_inv @ (u.T @ u) @ bread_inv
    covariances["avg"] = (covariances["md"] + covariances["kc"]) / 2
    return covariances, top


@dataclass(frozen=True, eq=False, repr=False)
class GEEResult:
    """A fitted GEE: statsmodels-like ``params``, ``bse``, ``tvalues``, ``pvalues`` (t on ``df``),
    ``conf_int()``, ``cov_params()``, ``summary()``; ``corr_param`` (the exchangeable correlation),
    ``scale``, ``standard_errors`` (every correction side by side) and the sizes."""

    formula: str
    outcome: str
    family: str
    corr: str
    se: str
    params: pd.Series
    covariances: dict[str, pd.DataFrame]
    df: float
    corr_param: float
    scale: float
    nobs: int
    n_clusters: int
    cluster_sizes: tuple[int, int, float]
    n_dropped: int
    iterations: int
    converged: bool
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)

    def cov_params(self) -> pd.DataFrame:
        """The covariance of the coefficients under the chosen correction ``se``."""
        return self.covariances[self.se]

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov_params().to_numpy())), index=self.params.index, name="bse")

    @property
    def tvalues(self) -> pd.Series:
        return (self.params / self.bse).rename("t")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of t tests on ``df`` degrees of freedom."""
        return pd.Series(2 * stats.t.sf(np.abs(self.tvalues.to_numpy()), self.df), index=self.params.index,
                         name="pvalue")

    @property
    def standard_errors(self) -> pd.DataFrame:
        """The standard errors under every correction (columns robust, md, kc, fg, avg)."""
        return pd.DataFrame({k: np.sqrt(np.diag(v.to_numpy())) for k, v in self.covariances.items()},
                            index=self.params.index)

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """t intervals on ``df`` degrees of freedom (two columns, lower and upper)."""
        a = self.alpha if alpha is None else alpha
        if not 0 < a < 1:
            raise ValueError(f"alpha: must be in (0, 1), got {a}")
        q = stats.t.ppf(1 - a / 2, self.df)
        return pd.DataFrame({f"[{a / 2:g}": self.params - q * self.bse, f"{1 - a / 2:g}]": self.params + q * self.bse})

    @property
    def method(self) -> str:
        """One line: the working correlation, the correction and the reference distribution."""
        return f"GEE ({self.corr}), {SE_LABELS[self.se]}, t on {self.df:g} df"

    def summary(self) -> str:
        """A table in the layout of statsmodels' summaries."""
        ci = self.conf_int()
        rows = [(name, f"{b:.4f}", f"{s:.4f}", f"{t:.3f}", f"{p:.4f}", f"{lo:.4f}", f"{hi:.4f}")
                for name, b, s, t, p, lo, hi in zip(self.params.index, self.params, self.bse, self.tvalues,
                                                     self.pvalues, ci.iloc[:, 0], ci.iloc[:, 1])]
        header = ("", "Coef.", "Std.Err.", "t", "P>|t|", ci.columns[0], ci.columns[1])
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(7)]
        fmt = lambda r: " ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
        width = len(fmt(header))
        info = [("Dependent variable:", self.outcome), ("Family:", self.family),
                ("Working correlation:", f"{self.corr} (rho = {self.corr_param:.4f}), scale {self.scale:.4g}"),
                ("Standard errors:", SE_LABELS[self.se]), ("Reference:", f"t on {self.df:g} df"),
                ("Observations:", (f"{self.nobs:,} in {self.n_clusters} clusters (size {self.cluster_sizes[0]}"
                                   f" to {self.cluster_sizes[1]}, mean {self.cluster_sizes[2]:.1f})"))]
        lines = ["GEE Regression Results".center(width).rstrip(), "=" * width]
        lines += [f"{a:<22}{b}" for a, b in info]
        lines += ["-" * width, fmt(header), "-" * width, *map(fmt, rows), "=" * width]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        terms = ", ".join(f"{k}={v:.4g} ({s:.3g})" for k, v, s in zip(self.params.index, self.params, self.bse))
        return (f"GEEResult({self.family}, {self.corr} rho={self.corr_param:.4g}, se={self.se!r}, df={self.df:g}, "
                f"{self.n_clusters} clusters, nobs={self.nobs}: {terms})")

    __str__ = summary


# names a patsy formula may use that are not data columns
_FORMULA_BUILTINS = {"C", "I", "Q", "np", "log", "log2", "log10", "exp", "sqrt", "abs", "center", "standardize",
                     "scale", "bs", "cr", "cc", "te", "Treatment", "Sum", "Poly", "Diff", "Helmert", "True", "False",
                     "None"}


def _formula_columns(formula: str) -> list[str]:
    """The data columns a patsy formula reads (Python names in its terms, less functions and builtins)."""
    try:
        desc = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError as exc:
        raise ValueError(f"formula: {formula!r} could not be read: {exc}") from None
    names: list[str] = []
    for term in [*desc.lhs_termlist, *desc.rhs_termlist]:
        for factor in term.factors:
            tree = ast.parse(factor.code, mode="eval")
            called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
            names += [n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                      and n.id not in called | _FORMULA_BUILTINS and n.id not in names]
    return names


def _prepare(formula: str, data: pd.DataFrame, cluster: str, family: str):
    """Validate once; the outcome, design, term names, cluster codes and rows dropped for missing values."""
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula: expected a string 'outcome ~ terms', got {formula!r}")
    if cluster not in data.columns:
        raise ValueError(f"cluster: {cluster!r} is not a column of data")
    columns = _formula_columns(formula)
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"formula: {', '.join(map(repr, missing))} not a column of data")
    outcome = formula.split("~", 1)[0].strip()
    frame = data[[*dict.fromkeys([*columns, cluster])]]
    complete = frame.notna().all(axis=1)
    frame = frame.loc[complete] if not complete.all() else frame
    if frame.empty:
        raise ValueError("data: no rows left after dropping rows with missing values")
    frame = frame.assign(**{c: frame[c].astype("category") for c in columns
                            if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])})
    try:
        y_df, x_df = patsy.dmatrices(formula, frame, return_type="dataframe", NA_action="raise")
    except patsy.PatsyError as exc:
        raise ValueError(f"formula: {formula!r} could not be built: {exc}") from None
    if y_df.shape[1] != 1:
        raise ValueError(f"formula: the outcome of {formula!r} must be one numeric column")
    y = check_outcome(y_df.iloc[:, 0], family, f"outcome {outcome!r}")
    x = x_df.to_numpy(dtype=float)
    if not np.isfinite(x).all():
        raise ValueError(f"formula: infinite values in the terms of {formula!r}")
    codes, labels = pd.factorize(frame[cluster], sort=True)
    return outcome, y, x, list(x_df.columns), codes, labels, int((~complete).sum())


def check_se(se: str) -> str:
    """The correction's name, or a ValueError naming ``se``."""
    if se not in SE_TYPES:
        raise ValueError(f"se: must be one of {', '.join(SE_TYPES)}, got {se!r}")
    return se


def gee(formula: str, data: pd.DataFrame, cluster: str, family: str = "gaussian", corr: str = "exchangeable",
        se: str = "md", *, df: float | None = None, alpha: float = 0.05, fg_bound: float = FG_BOUND,
        tol: float = 1e-10, max_iter: int = 100) -> GEEResult:
    """Fit a GEE with small-sample corrected standard errors and t tests.

    Parameters
    ----------
    formula : patsy formula, e.g. ``"y ~ arm + x"`` (terms named as statsmodels names them).
    data : one row per person; rows with a missing value in a used column (or the cluster) are dropped.
    cluster : the cluster id column.
    family : ``"gaussian"`` (identity link), ``"binomial"`` (logit) or ``"poisson"`` (log); cvcrand's
        ``"continuous"``, ``"binary"``, ``"count"`` too.
    corr : ``"exchangeable"`` (default) or ``"independence"``.
    se : the sandwich correction: ``"md"`` (Mancl-DeRouen, default), ``"kc"`` (Kauermann-Carroll),
        ``"fg"`` (Fay-Graubard, bound ``fg_bound`` = 0.75), ``"avg"`` (MD-KC average, Ford and Westgate
        2017) or ``"robust"`` (uncorrected). All five are in ``standard_errors``.
    df : the t reference degrees of freedom; default K - p (clusters minus coefficients).

    The exchangeable correlation and the scale are geepack's default moment estimators, with no
    degrees-of-freedom correction (statsmodels' default divides by N - p); the coefficients and the
    robust SE match ``geepack::geeglm(..., corstr = "exchangeable")``.

    >>> from crt_widgets.datasets import load_dickinson_outcome
    >>> from crt_widgets.core.io.spacefiles import read_space
    >>> from crt_widgets.datasets import dickinson_cvcrand_space_path
    >>> data = load_dickinson_outcome()
    >>> data["arm"] = read_space(dickinson_cvcrand_space_path()).chosen_scheme[data["county"] - 1]
    >>> fit = gee("outcome ~ arm + inciis", data, "county", family="binomial")
    >>> fit.df, round(float(fit.params["arm"]), 4), round(float(fit.bse["arm"]), 4), round(float(fit.corr_param), 4)
    (13, 0.4811, 0.1522, 0.006)
    """
    family = check_family(family)
    se = check_se(se)
    if corr not in CORRELATIONS:
        raise ValueError(f"corr: must be one of {', '.join(CORRELATIONS)}, got {corr!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    if not 0 < fg_bound < 1:
        raise ValueError(f"fg_bound: must be in (0, 1), got {fg_bound}")
    outcome, y, x, names, codes, labels, n_dropped = _prepare(formula, data, cluster, family)
    k, p = len(labels), x.shape[1]
    if k < 2:
        raise ValueError(f"cluster: {cluster!r} has {k} cluster; GEE needs at least two")
    if df is None:
        df = k - p
        if df < 1:
            raise ValueError(f"formula: {p} coefficients from {k} clusters leave no degrees of freedom (K - p = {df})")
    elif not df > 0:
        raise ValueError(f"df: must be positive, got {df}")
    note = constant_outcome_note(y, family)
    if note:
        raise ValueError(f"outcome {outcome!r}: {note}")
    if np.linalg.matrix_rank(x) < p:
        raise ValueError(f"formula: the terms of {formula!r} are collinear (rank {np.linalg.matrix_rank(x)} < {p})")
    fit = fit_gee_arrays(y, x, codes, family, corr, tol=tol, max_iter=max_iter)
    covariances, top = sandwich_covariances(fit.cluster_information, fit.cluster_scores, fg_bound)
    notes = gee_notes(fit, top)
    sizes = fit.cluster_sizes
    return GEEResult(
        formula=formula, outcome=outcome, family=family, corr=corr, se=se,
        params=pd.Series(fit.beta, index=names, name="params"),
        covariances={key: pd.DataFrame(v, index=names, columns=names) for key, v in covariances.items()},
        df=float(df) if not float(df).is_integer() else int(df), corr_param=fit.corr_param, scale=fit.scale,
        nobs=len(y), n_clusters=k, cluster_sizes=(int(sizes.min()), int(sizes.max()), float(sizes.mean())),
        n_dropped=n_dropped, iterations=fit.iterations, converged=fit.converged, alpha=alpha, notes=notes)
