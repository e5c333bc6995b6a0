"""Denominator degrees of freedom for fixed effects: Satterthwaite, Kenward-Roger, between-within.

Linear mixed models with nested random intercepts (:mod:`crt_widgets.core.models.mixed_fast`) have the
covariance ``V = s2_outer Z_o Z_o' + s2_inner Z_i Z_i' + s2 I``, linear in the variance components
``psi = (s2_outer, s2_inner, s2)`` with derivatives ``G_k = Z_k Z_k'`` (``G = I`` for the residual). Both
small-sample methods need the same ingredients, for ``M = [X, e]`` (``e = y - X beta_hat``):

* ``A_k = M' V^-1 G_k V^-1 M`` (so ``dPhi/dpsi_k = Phi A_k Phi`` for ``Phi = (X' V^-1 X)^-1``),
* ``B_kl = M' V^-1 G_k V^-1 G_l V^-1 M`` and ``K_kl = tr(V^-1 G_k V^-1 G_l)``.

Every matrix involved acts on the rows of one outer group as a multiple of the identity on the
deviations from the inner-group means, plus ``diag + rank one`` on the inner-group indicators (Woodbury),
so each ingredient is a sum over inner and outer groups of closed forms in the per-group row counts and
column sums the fit already keeps: no ``N x N`` (or even ``n_i x n_i``) matrix, O(groups x columns^2).

* **Satterthwaite** (lmerTest; Kuznetsova, Brockhoff and Christensen 2017): for a contrast ``L``,
  ``df = 2 (L' Phi L)^2 / (g' C g)`` with ``g_k = L' Phi A_k Phi L`` and ``C`` the inverse observed
  information of the (RE)ML likelihood in ``psi`` (for ML with ``beta`` profiled out, as lme4's deviance
  function does). The value does not depend on the parametrisation of the variances at the optimum, so
  it equals lmerTest's, which differentiates in ``(theta, sigma)``. A variance estimated at zero drops
  out, as it does in lmerTest (there ``Phi`` depends on ``theta^2``, whose derivative vanishes at 0).
* **Kenward-Roger** (Kenward and Roger 1997; pbkrtest, Halekoh and Hojsgaard 2014): the adjusted
  covariance ``Phi_A = Phi + 2 Phi U Phi``, ``U = sum_kl W_kl (Q_kl - P_k Phi P_l)``, ``P_k = -A_k``,
  ``Q_kl = B_kl`` (X blocks), ``W = 2 IE^-1`` with ``IE_kl = tr(P G_k P G_l)`` the REML expected
  information (times two); the second-derivative term vanishes because ``V`` is linear in ``psi``; and the
  df of pbkrtest's ``Lb_ddf``. For one contrast this is ``2 (L' Phi L)^2 / (g' W g)``.
* **Between-within** (SAS's ``DDFM=BETWITHIN``; Li and Redden 2015 for cluster trials' GLMMs): a
  coefficient whose column is constant within every cluster gets ``K - p_between`` df (clusters minus
  the rank of the cluster-level columns, intercept included), any other ``N - K - p_within``.

>>> import numpy as np
>>> from crt_widgets.core.models import mixed_fast
>>> rng = np.random.default_rng(3)
>>> g = np.repeat(np.arange(10), 6)                 # 10 clusters of 6, treatment on 5 of them
>>> x = np.column_stack([np.ones(60), np.repeat(np.arange(10) % 2, 6)])
>>> y = x[:, 1] * 0.5 + rng.normal(size=10)[g] + rng.normal(size=60)
>>> stats = mixed_fast.nested_stats(x, y, g, None)
>>> fit = mixed_fast.fit_nested(stats)
>>> ddf = NestedDdf(stats, np.r_[fit.variances, fit.sigma2])
>>> ddf.satterthwaite().round(4).tolist()             # balanced: exactly clusters - 2 for the treatment
[8.0, 8.0]
>>> between_within_df(x, g).tolist()
[8, 8]
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import linalg

from crt_widgets.core.models.mixed_fast import NestedStats, centring_matrix, weighted_quadratic

DDF_METHODS = ("satterthwaite", "kenward-roger", "z")
SINGULAR_VARIANCE_RATIO = 1e-8  # lme4's isSingular tolerance 1e-4 on theta = sd / sigma, squared


def check_ddf(ddf: str, method: str) -> str:
    """The normalised name of a ddf method, or a ValueError naming ``ddf``.

    >>> check_ddf("Kenward-Roger", "reml")
    'kenward-roger'
    """
    name = str(ddf).lower().replace("_", "-").replace(" ", "-")
    name = {"kr": "kenward-roger", "kenward": "kenward-roger", "satt": "satterthwaite", "normal": "z",
            "wald": "z"}.get(name, name)
    if name not in DDF_METHODS:
        raise ValueError(f"ddf must be one of {DDF_METHODS}, got {ddf!r}")
    if name == "kenward-roger" and method != "reml":
        raise ValueError("ddf='kenward-roger' is defined for REML fits (pbkrtest refits with REML); "
                         "use method='reml' or ddf='satterthwaite'")
    return name


class NestedDdf:
    """The variance-component derivatives of a nested random-intercept model at given variances.

    ``variances``: the random-intercept variances (outer, inner; or the one level's) then the residual
    variance, as :class:`~crt_widgets.core.models.mixed_fast.NestedFit` orders them (``r_[variances,
    sigma2]``). ``reml`` chooses the likelihood whose observed information Satterthwaite uses.
    Contrasts ``L`` are rows over the caller's (uncentred) coefficients; the default is every
    coefficient on its own.

    >>> import numpy as np
    >>> from crt_widgets.core.models import mixed_fast
    >>> g = np.repeat(np.arange(8), [3, 5, 4, 6, 2, 7, 5, 4])
    >>> x = np.column_stack([np.ones(g.size), np.arange(8)[g] % 2, np.sin(np.arange(g.size))])
    >>> y = x @ [1.0, 0.5, 0.3] + np.cos(7 * np.arange(8))[g] + np.cos(3 * np.arange(g.size))
    >>> stats = mixed_fast.nested_stats(x, y, g, None)
    >>> fit = mixed_fast.fit_nested(stats)
    >>> d = NestedDdf(stats, np.r_[fit.variances, fit.sigma2])
    >>> bool(np.allclose(d.cov, fit.cov_beta))
    True
    >>> cov_kr, df_kr = d.kenward_roger()
    >>> bool(np.all(np.diag(cov_kr) >= np.diag(d.cov)))   # the adjustment only ever widens here
    True
    """

    def __init__(self, stats: NestedStats, variances: Sequence[float] | np.ndarray, reml: bool = True):
        variances = np.asarray(variances, dtype=float)
        expected = 3 if stats.two_level else 2
        if variances.shape != (expected,):
            raise ValueError(f"variances: give {expected} values (random intercepts..., residual), got {variances.shape}")
        if variances[-1] <= 0 or np.any(variances < 0) or not np.all(np.isfinite(variances)):
            raise ValueError(f"variances must be finite, non-negative, with a positive residual variance; got {variances}")
        self.stats, self.reml = stats, bool(reml)
        self.variances = variances
        self.names = ("outer", "inner", "residual") if stats.two_level else ("inner", "residual")
        self._ingredients()

    # -- the closed forms --------------------------------------------------------------------------
    def _ingredients(self) -> None:
        stats, v = self.stats, self.variances
        p = stats.n_fe
        s2 = float(v[-1])
        s2_inner = float(v[-2])
        s2_outer = float(v[0]) if stats.two_level else 0.0
        Q, _ = weighted_quadratic(stats, v[:-1] / s2)  # [X, y]' (V / s2)^-1 [X, y], centred columns
        chol = linalg.cho_factor(Q[:p, :p], lower=True)
        beta_c = linalg.cho_solve(chol, Q[:p, p])
        self.phi_c = s2 * linalg.cho_solve(chol, np.eye(p))  # (X' V^-1 X)^-1 for the centred columns
        self.beta_c = beta_c
        # columns M = [X, e]: the residual column is a linear combination of the stored ones
        T = np.eye(p + 1)
        T[:p, p] = -beta_c
        n = stats.inner_n
        S = stats.inner_sums @ T
        within = T.T @ stats.cross @ T - (S.T / n) @ S           # scatter around the inner-group means
        n_rows, n_inner = stats.n_obs, n.size
        starts = stats.outer_starts if stats.two_level else np.arange(n_inner)
        sizes = np.diff(np.r_[starts, n_inner])

        lam = s2 + s2_inner * n                                   # eigenvalue of V along 1_j
        a = n / lam
        s = np.add.reduceat(a, starts)
        h = 1.0 + s2_outer * s
        c = s2_outer / h                                          # Woodbury weight of the outer rank one
        c_j = np.repeat(c, sizes)
        T_g = np.add.reduceat(S / lam[:, None], starts, axis=0)
        R_i = S / lam[:, None] - (c_j * a)[:, None] * np.repeat(T_g, sizes, axis=0)   # 1_j' V^-1 M
        R_o = T_g / h[:, None]                                                       # 1_g' V^-1 M
        F = np.add.reduceat(a[:, None] * R_i, starts, axis=0)
        E = np.add.reduceat(R_i / lam[:, None], starts, axis=0)
        Q_i = R_i / lam[:, None] - (c_j * a)[:, None] * np.repeat(E, sizes, axis=0)  # 1_j' V^-2 M

        A = {"inner": R_i.T @ R_i, "residual": within / s2**2 + (R_i / n[:, None]).T @ R_i}
        B = {("inner", "inner"): (R_i * a[:, None]).T @ R_i - (F * c[:, None]).T @ F,
             ("inner", "residual"): R_i.T @ Q_i,
             ("residual", "residual"): within / s2**3 + (R_i / (n * lam)[:, None]).T @ R_i - (E * c[:, None]).T @ E}
        sum_a2 = np.add.reduceat(a**2, starts)
        t2 = np.add.reduceat(n / lam**2, starts)
        K = {("inner", "inner"): float(np.sum(sum_a2 - 2 * c * np.add.reduceat(a**3, starts) + c**2 * sum_a2**2)),
             ("inner", "residual"): float(np.sum(t2 - 2 * c * np.add.reduceat(n**2 / lam**3, starts) + c**2 * t2 * sum_a2)),
             ("residual", "residual"): float((n_rows - n_inner) / s2**2 + np.sum(
                 np.add.reduceat(1 / lam**2, starts) - 2 * c * np.add.reduceat(n / lam**3, starts) + c**2 * t2**2))}
        if stats.two_level:
            A["outer"] = R_o.T @ R_o
            B[("outer", "outer")] = (R_o * (s / h)[:, None]).T @ R_o
            B[("outer", "inner")] = (R_o / h[:, None]).T @ F
            B[("outer", "residual")] = (R_o / h[:, None]).T @ E
            K[("outer", "outer")] = float(np.sum((s / h) ** 2))
            K[("outer", "inner")] = float(np.sum(sum_a2 / h**2))
            K[("outer", "residual")] = float(np.sum(t2 / h**2))
        m = len(self.names)
        self.A = np.stack([A[k] for k in self.names])                      # (m, p+1, p+1)
        self.B = np.empty((m, m, p + 1, p + 1))
        self.K = np.empty((m, m))
        for i, ki in enumerate(self.names):
            for j, kj in enumerate(self.names):                            # at most 3 x 3 parameters
                key = (ki, kj) if (ki, kj) in B else (kj, ki)
                self.B[i, j] = B[key] if key == (ki, kj) else B[key].T
                self.K[i, j] = K[key]
        self.A_x = self.A[:, :p, :p]
        # tr(P G_k P G_l), P the REML projection V^-1 - V^-1 X Phi X' V^-1
        phi = self.phi_c
        PA = np.einsum("ab,kbc->kac", phi, self.A_x)                      # Phi A_k
        self.trace_PGPG = (self.K - 2 * np.einsum("ab,klab->kl", phi, self.B[:, :, :p, :p])
                           + np.einsum("kab,lba->kl", PA, PA))
        cross = np.einsum("ka,ab,lb->kl", self.A[:, p, :p], phi, self.A[:, p, :p])
        first = self.trace_PGPG if self.reml else self.K
        self.observed_information = -0.5 * first + self.B[:, :, p, p] - cross
        self.centring = centring_matrix(stats)

    # -- results on the caller's coefficients -------------------------------------------------------
    @property
    def cov(self) -> np.ndarray:
        """``(X' V^-1 X)^-1`` on the caller's columns (the model-based covariance of beta)."""
        return self.centring @ self.phi_c @ self.centring.T

    def _contrasts(self, L) -> np.ndarray:
        p = self.stats.n_fe
        L = np.eye(p) if L is None else np.atleast_2d(np.asarray(L, dtype=float))
        if L.shape[1] != p:
            raise ValueError(f"L: contrasts need {p} columns (one per coefficient), got shape {L.shape}")
        return L @ self.centring                                          # the same contrast of beta_c

    def _gradients(self, Lc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``L' Phi L`` and ``d(L' Phi L)/dpsi_k = L' Phi A_k Phi L`` for every row of ``Lc``."""
        PL = Lc @ self.phi_c
        var = np.einsum("qa,qa->q", PL, Lc)
        grad = np.einsum("qa,kab,qb->qk", PL, self.A_x, PL)
        return var, grad

    def satterthwaite(self, L=None) -> np.ndarray:
        """Satterthwaite df of each contrast row (lmerTest's): ``2 var^2 / (g' C g)``."""
        var, grad = self._gradients(self._contrasts(L))
        # a variance at zero drops out (see the module docstring); an optimiser stops near the boundary, not on
        # it (1e-19 is seen), so "zero" is lme4's singularity tolerance: theta = sd / sigma below 1e-4
        free = self.variances > SINGULAR_VARIANCE_RATIO * self.variances[-1]
        free[-1] = True
        info = self.observed_information[np.ix_(free, free)]
        g = grad[:, free]
        denom = np.einsum("qk,kq->q", g, np.linalg.solve(info, g.T))
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2 * var**2 / denom

    def kenward_roger_weights(self) -> np.ndarray:
        """``W = 2 IE^-1``, pbkrtest's asymptotic covariance of the variance components (its ``W``)."""
        ie = self.trace_PGPG
        condition = np.min(np.abs(np.linalg.eigvalsh(ie)))
        return 2 * (np.linalg.inv(ie) if condition > 1e-10 else np.linalg.pinv(ie))

    def kenward_roger(self, L=None) -> tuple[np.ndarray, np.ndarray]:
        """The adjusted covariance ``Phi_A`` (pbkrtest's ``vcovAdj``) and the df of each contrast row
        (``get_Lb_ddf``; a row is one test, ``q = 1``)."""
        p = self.stats.n_fe
        phi, W = self.phi_c, self.kenward_roger_weights()
        PAP = np.einsum("kab,bc,lcd->klad", self.A_x, phi, self.A_x)      # P_k Phi P_l (the signs cancel)
        U = np.einsum("kl,klab->ab", W, self.B[:, :, :p, :p] - PAP)
        adjusted = phi + 2 * phi @ U @ phi
        Lc = self._contrasts(L)
        df = np.array([lb_ddf(row[None, :], phi, -self.A_x, W) for row in Lc])
        return self.centring @ adjusted @ self.centring.T, df


def lb_ddf(L: np.ndarray, V0: np.ndarray, P: np.ndarray, W: np.ndarray) -> float:
    """Kenward and Roger's (1997) denominator df for the ``q``-row hypothesis ``L beta = 0``, as pbkrtest's
    ``Lb_ddf`` computes it from the unadjusted covariance ``V0``, its ``P_k`` and ``W``.

    >>> import numpy as np
    >>> round(lb_ddf(np.array([[1.0]]), np.array([[0.5]]), np.array([[[-0.5]]]), np.array([[0.25]])), 6)
    128.0
    """
    L = np.atleast_2d(L)
    q = L.shape[0]
    theta = L.T @ np.linalg.solve(L @ V0 @ L.T, L)
    u = np.einsum("ab,bc,kcd,de->kae", theta, V0, P, V0)                 # Theta V0 P_k V0
    traces = np.einsum("kaa->k", u)
    A1 = float(traces @ W @ traces)
    A2 = float(np.einsum("kl,kab,lba->", W, u, u))
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    c1 = g / (3 * q + 2 * (1 - g))
    c2 = (q - g) / (3 * q + 2 * (1 - g))
    c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
    V0_ = 1 + c1 * B
    V1 = 1 - c2 * B
    V2 = 1 - c3 * B
    V0_ = 0.0 if abs(V0_) < 1e-10 else V0_
    x, y = 1 - A2 / q, V1
    ratio = 1.0 if abs(x) < 1e-14 and abs(y) < 1e-14 else x / y
    rho = ratio**2 * V0_ / V2 / q
    return float(4 + (q + 2) / (q * rho - 1))


def between_within_df(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Between-within denominator df of every column of the design ``x`` (SAS ``DDFM=BETWITHIN``).

    A column constant within every cluster (the intercept, the arm, a cluster-level covariate) gets
    ``K - rank(cluster-level columns)``; any other ``N - K - rank(x) + rank(cluster-level columns)``,
    i.e. ``N - K - p_within`` (Li and Redden 2015, who recommend it for the GLMM of a cluster trial
    with few clusters). ``groups`` are the cluster labels of the rows.

    >>> import numpy as np
    >>> g = np.repeat(np.arange(6), 4)
    >>> x = np.column_stack([np.ones(24), g % 2, np.arange(24) % 3])
    >>> between_within_df(x, g).tolist()
    [4, 4, 17]
    """
    x = np.asarray(x, dtype=float)
    _, codes = np.unique(np.asarray(groups), return_inverse=True)
    k, n = int(codes.max()) + 1, x.shape[0]
    low = np.full((k, x.shape[1]), np.inf)
    high = np.full((k, x.shape[1]), -np.inf)
    np.minimum.at(low, codes, x)
    np.maximum.at(high, codes, x)
    between = np.all(high - low <= 1e-12 * np.maximum(1.0, np.abs(high)), axis=0)
    rank_between = int(np.linalg.matrix_rank(x[:, between])) if between.any() else 0
    rank_within = int(np.linalg.matrix_rank(x)) - rank_between
    return np.where(between, k - rank_between, n - k - rank_within).astype(int)
