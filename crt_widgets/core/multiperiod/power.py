"""GLS variance and power of the treatment effect in a multi-period cluster trial, vectorised over scenarios.

The model for the mean of the ``n_ij`` outcomes of cluster ``i`` in period ``j`` (Hussey and Hughes 2007;
Hooper, Teerenstra, de Hoop and Eldridge 2016; Kasza, Hemming, Hooper, Matthews and Forbes 2019) is
``ybar_ij = beta_j + theta x_ij + e_ij``: period fixed effects, the treatment covariate ``x_ij`` (0/1, a
fraction of the effect, or one indicator per treatment level) and an error whose covariance over a
cluster's periods is

    tau2 R_jl + gamma2 [j = l] + eta2 t_ij t_il + tau_eta (t_ij + t_il)
        + zeta2 / sqrt(n_ij n_il) + sigma2 / n_ij [j = l]

with ``R_jl = 1`` (exchangeable, Hussey and Hughes 2007) or ``decay^|j - l|`` (exponential decay, Kasza et al.
2019), ``gamma2`` a cluster-period effect (block exchangeable: the cluster autocorrelation CAC below 1, Hooper
et al. 2016; Girling and Hemming 2016), ``zeta2`` a persistent individual effect (a closed cohort), ``eta2`` a
random treatment effect (``t_ij`` = 1 on treatment) whose covariance with the intercept is ``tau_eta``.

Clusters are independent, so the GLS information is a sum over clusters of periods x periods blocks, and
clusters on the same sequence with the same sizes share a block: the work is one small inverse per sequence
and scenario, batched over a leading scenario axis. The variance of the estimate is the inverse of the Schur
complement of the period block; the power is two-sided, from the normal distribution (Hussey and Hughes 2007,
as swCRTdesign's ``swPwr``).

In :func:`multiperiod_power` the correlations are those of an individual outcome with total variance
``sd^2`` (``p (1 - p)`` for a binary outcome, ``p`` the mean of the arms' proportions): ``icc`` of two
individuals in the same cluster and period, ``cac`` the correlation of a cluster's population means in two
different periods (block exchangeable; 1 = exchangeable), ``decay`` the same correlation one period apart in the
exponential-decay model (it is ``decay^k`` k periods apart), and ``iac`` the correlation of one individual's outcomes in two periods of a closed
cohort (0 = a new cross-section each period).

>>> design = stepped_wedge(4, clusters_per_sequence=6)
>>> result = multiperiod_power(design, 0.2, icc=0.05, cac=0.8, cluster_size=20)
>>> round(result.power, 4), round(result.se, 5)
(0.7649, 0.07457)
>>> grid = multiperiod_power(design, 0.2, icc=[0.01, 0.05, 0.1], cluster_size=20)
>>> grid.power.round(3)            # in a stepped wedge, power need not fall as the ICC rises
array([0.875, 0.825, 0.828])
>>> multiperiod_clusters_needed(stepped_wedge(4), 0.2, icc=0.05, cluster_size=20).replicates
6
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from crt_widgets.core.multiperiod.designs import MultiPeriodDesign, stepped_wedge, unique_rows

OUTCOMES = ("continuous", "binary")
# doubles in one batch of covariance blocks (scenarios x groups x periods x periods): bounds the memory
_BATCH_CELLS = 2_000_000


# ----------------------------------------------------------------------------------------------------------
# the engine
# ----------------------------------------------------------------------------------------------------------
def gls_treatment_covariance(observed: Any, clusters: Any, treatment: Any, sizes: Any, *, tau2: Any, sigma2: Any,
                             gamma2: Any = 0.0, zeta2: Any = 0.0, eta2: Any = 0.0, tau_eta: Any = 0.0,
                             decay: Any = None, treated: Any = None) -> np.ndarray:
    """Covariance matrix of the GLS treatment estimates, ``(scenarios..., effects, effects)``.

    ``observed`` (groups x periods booleans), ``clusters`` (clusters in each group), ``treatment`` (groups x
    periods x effects: the treatment covariates) and ``treated`` (groups x periods, 1 where a random treatment
    effect applies; default: a nonzero treatment covariate) describe groups of identical clusters.
    ``sizes`` (individuals per cluster-period) broadcasts to ``(scenarios..., groups, periods)``; the variance
    components and ``decay`` (None: exchangeable) broadcast to the scenario shape. See the module docstring.

    >>> obs = np.ones((2, 3), bool)
    >>> x = np.array([[0., 1, 1], [0, 0, 1]])[:, :, None]
    >>> v = gls_treatment_covariance(obs, [5, 5], x, 10, tau2=[0.0, 0.1], sigma2=1.0)
    >>> v.shape, float(v[0, 0, 0])           # no cluster effect: period 2 alone compares 5 clusters with 5
    ((2, 1, 1), 0.04)
    """
    observed = np.asarray(observed, dtype=bool)
    if observed.ndim != 2:
        raise ValueError(f"observed must be a groups x periods boolean matrix, got shape {observed.shape}")
    n_groups, n_periods = observed.shape
    weights = np.asarray(clusters, dtype=float)
    covariates = np.asarray(treatment, dtype=float)
    if weights.shape != (n_groups,) or (weights < 0).any():
        raise ValueError(f"clusters must hold {n_groups} counts >= 0, got {clusters!r}")
    if covariates.ndim != 3 or covariates.shape[:2] != (n_groups, n_periods):
        raise ValueError(f"treatment must be {n_groups} x {n_periods} x effects, got shape {covariates.shape}")
    on_treatment = (covariates != 0).any(axis=2) if treated is None else np.asarray(treated, dtype=float)
    if on_treatment.shape != (n_groups, n_periods):
        raise ValueError(f"treated must be {n_groups} x {n_periods}, got shape {on_treatment.shape}")
    exchangeable = decay is None
    components = np.broadcast_arrays(*(np.asarray(c, dtype=float) for c in
                                       (tau2, sigma2, gamma2, zeta2, eta2, tau_eta, 1.0 if exchangeable else decay)))
    given = np.asarray(sizes, dtype=float)
    if given.ndim == 1:
        raise ValueError("sizes must be one number, or an array ending in groups x periods (a size per scenario: "
                         "shape (scenarios..., 1, 1))")
    given = given.reshape((1, 1)) if given.ndim == 0 else given
    try:
        shape = np.broadcast_shapes(components[0].shape, given.shape[:-2])
        size_array = np.broadcast_to(given, shape + (n_groups, n_periods))
    except ValueError:
        raise ValueError(f"sizes of shape {np.shape(sizes)} do not broadcast to scenarios x {n_groups} x "
                         f"{n_periods}") from None
    if not (size_array[..., observed] > 0).all():
        raise ValueError("sizes must be positive in every observed cell")
    keep = weights > 0                          # an empty group adds nothing
    flat = np.stack([np.broadcast_to(c, shape).reshape(-1) for c in components], axis=1)
    size_flat = size_array.reshape((-1, n_groups, n_periods))[:, keep]
    inverse = None
    if flat.shape[0] > 1:
        # scenarios that differ only in what the variance does not depend on (the effect, say) share one answer;
        # the sizes enter the key in the shape they were given (one number per scenario, usually)
        size_key = np.broadcast_to(given, shape + given.shape[-2:]).reshape(flat.shape[0], -1)
        first, inverse = _distinct_rows(np.hstack([flat, size_key]))
        flat, size_flat = flat[first], size_flat[first]
    args = (observed[keep], weights[keep], covariates[keep], on_treatment[keep])
    batch = max(1, _BATCH_CELLS // max(1, int(keep.sum()) * n_periods * n_periods))
    pieces = [_covariance_batch(*args, size_flat[start:start + batch], *flat[start:start + batch, :6].T,
                                None if exchangeable else flat[start:start + batch, 6])
              for start in range(0, flat.shape[0], batch)]
    k = covariates.shape[2]
    covariance = np.concatenate(pieces)
    return (covariance if inverse is None else covariance[inverse]).reshape(shape + (k, k))


def _distinct_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of one row per distinct row of ``key``, and each row's distinct-row number (a lexicographic sort)."""
    order = np.lexsort(key.T[::-1])
    ordered = key[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


def _covariance_blocks(observed, on_treatment, sizes, tau2, sigma2, gamma2, zeta2, eta2, tau_eta, decay):
    """The covariance of each group's period means, (scenarios, groups, periods, periods), with the cells that
    are not observed filled from a placeholder size of 1 (they are masked out afterwards)."""
    n_periods = observed.shape[1]
    on_treatment = np.asarray(on_treatment, dtype=float)      # added as numbers (a boolean sum is an "or")
    size = np.where(observed, sizes, 1.0)
    inv_root = 1.0 / np.sqrt(size)
    blocks = zeta2[:, None, None, None] * inv_root[..., :, None] * inv_root[..., None, :]
    if decay is None:
        blocks += tau2[:, None, None, None]
    else:
        lag = np.abs(np.subtract.outer(np.arange(n_periods), np.arange(n_periods)))
        blocks += (tau2[:, None, None] * decay[:, None, None] ** lag)[:, None]
    if eta2.any() or tau_eta.any():
        blocks += eta2[:, None, None, None] * (on_treatment[:, :, None] * on_treatment[:, None, :])
        blocks += tau_eta[:, None, None, None] * (on_treatment[:, :, None] + on_treatment[:, None, :])
    diagonal = np.arange(n_periods)
    blocks[..., diagonal, diagonal] += gamma2[:, None, None] + sigma2[:, None, None] / size
    return blocks


def _precision_general(observed, on_treatment, sizes, tau2, sigma2, gamma2, zeta2, eta2, tau_eta, decay):
    """Inverse of each group's covariance over its observed periods, zero elsewhere: one batched inverse."""
    n_periods = observed.shape[1]
    blocks = _covariance_blocks(observed, on_treatment, sizes, tau2, sigma2, gamma2, zeta2, eta2, tau_eta, decay)
    both = observed[:, :, None] & observed[:, None, :]
    # a block with the unobserved rows and columns replaced by the identity inverts to the observed block's
    # inverse (zero-padded after masking): one batched inverse serves every pattern of missing cells
    blocks = np.where(both, blocks, np.eye(n_periods))
    try:
        return np.linalg.inv(blocks) * both
    except np.linalg.LinAlgError:
        raise ValueError("the covariance of a cluster's period means is singular: give some within-period "
                         "variation (a residual, cluster-period or individual variance above 0)") from None


def _precision_low_rank(observed, on_treatment, sizes, tau2, sigma2, gamma2, zeta2, eta2, tau_eta):
    """The same inverse when the periods are exchangeable: the covariance is a diagonal plus a matrix of rank at
    most 3 (the columns 1, t and 1/sqrt(n)), so the Woodbury identity needs only a 3 x 3 inverse per block.

    ``(D + U C U')^-1 = D^-1 - D^-1 U C (I + U' D^-1 U C)^-1 U' D^-1``, which holds for a singular ``C``
    (Henderson and Searle 1981); unobserved cells get ``D^-1 = 0`` and so drop out.
    """
    size = np.where(observed, sizes, 1.0)
    diagonal = gamma2[:, None, None] + sigma2[:, None, None] / size
    inverse_diagonal = np.where(observed, 1.0 / diagonal, 0.0)
    columns = [np.ones_like(size)]
    loads = [[tau2]]
    if eta2.any() or tau_eta.any():
        columns.append(np.broadcast_to(np.asarray(on_treatment, dtype=float), size.shape))
        loads = [[tau2, tau_eta], [tau_eta, eta2]]
    if zeta2.any():
        columns.append(1.0 / np.sqrt(size))
        loads = [row + [np.zeros_like(tau2)] for row in loads] + [[np.zeros_like(tau2)] * len(loads) + [zeta2]]
    basis = np.stack(columns, axis=-1)                                    # (p, g, J, r)
    load = np.stack([np.stack(row, axis=-1) for row in loads], axis=-2)   # (p, r, r)
    scaled = inverse_diagonal[..., None] * basis                          # D^-1 U
    inner = np.eye(len(columns)) + (basis.swapaxes(-1, -2) @ scaled) @ load[:, None]
    middle = load[:, None] @ _small_inverse(inner)                        # C (I + U'D^-1 U C)^-1
    precision = -(scaled @ middle) @ scaled.swapaxes(-1, -2)
    index = np.arange(observed.shape[1])
    precision[..., index, index] += inverse_diagonal
    return precision


def _small_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a stack of 1 x 1, 2 x 2 or 3 x 3 matrices by the adjugate (vectorised, no LAPACK call per matrix)."""
    r = matrix.shape[-1]
    if r == 1:
        return 1.0 / matrix
    if r == 2:
        a, b, c, d = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 1, 0], matrix[..., 1, 1]
        adjugate = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2)
        return adjugate / (a * d - b * c)[..., None, None]
    m = matrix
    cofactor = np.empty_like(m)
    for i in range(3):
        for j in range(3):
            rows, cols = [k for k in range(3) if k != i], [k for k in range(3) if k != j]
            minor = (m[..., rows[0], cols[0]] * m[..., rows[1], cols[1]]
                     - m[..., rows[0], cols[1]] * m[..., rows[1], cols[0]])
            cofactor[..., i, j] = (-1) ** (i + j) * minor
    determinant = (m[..., 0, :] * cofactor[..., 0, :]).sum(axis=-1)
    return cofactor.swapaxes(-1, -2) / determinant[..., None, None]


def _covariance_batch(observed, weights, covariates, on_treatment, sizes, tau2, sigma2, gamma2, zeta2, eta2,
                      tau_eta, decay):
    diagonal_positive = (gamma2[:, None, None] + sigma2[:, None, None] / np.where(observed, sizes, 1.0) > 0).all()
    if decay is None and diagonal_positive:
        precision = _precision_low_rank(observed, on_treatment, sizes, tau2, sigma2, gamma2, zeta2, eta2, tau_eta)
    else:
        precision = _precision_general(observed, on_treatment, sizes, tau2, sigma2, gamma2, zeta2, eta2, tau_eta,
                                       decay)
    weighted = precision * weights[:, None, None]
    period_block = weighted.sum(axis=1)                                            # (p, J, J)
    cross = (weighted @ covariates).sum(axis=1)                                    # (p, J, K)
    treatment_block = (covariates.swapaxes(-1, -2) @ weighted @ covariates).sum(axis=1)  # (p, K, K)
    try:
        schur = treatment_block - cross.swapaxes(-1, -2) @ np.linalg.solve(period_block, cross)
        covariance = np.linalg.inv(schur)
    except np.linalg.LinAlgError:
        raise ValueError("the information matrix is singular: the design and variances leave the treatment "
                         "effect without information") from None
    if not np.isfinite(covariance).all() or (np.diagonal(covariance, axis1=-2, axis2=-1) <= 0).any():
        raise ValueError("the covariance of a cluster's period means is singular: give some within-period "
                         "variation (a residual, cluster-period or individual variance above 0)")
    return covariance


def check_estimable(observed: np.ndarray, clusters: np.ndarray, treatment: np.ndarray) -> None:
    """ValueError unless the period effects and the treatment effects are all estimable from the observed cells.

    >>> check_estimable(np.ones((1, 2), bool), np.array([4]), np.array([[[0.0], [1.0]]]))
    Traceback (most recent call last):
    ...
    ValueError: the treatment effect is not estimable in this design: it is confounded with the period effects ...
    """
    keep = np.asarray(clusters) > 0
    observed, treatment = observed[keep], treatment[keep]
    n_periods, n_effects = observed.shape[1], treatment.shape[2]
    seen = observed.any(axis=0)
    if not seen.all():
        raise ValueError(f"period(s) {(np.flatnonzero(~seen) + 1).tolist()} are observed in no cluster: drop them "
                         f"from the design")
    groups, periods = np.nonzero(observed)
    rows = np.hstack([np.eye(n_periods)[periods], treatment[groups, periods]])
    if np.linalg.matrix_rank(rows) < n_periods + n_effects:
        raise ValueError("the treatment effect is not estimable in this design: it is confounded with the period "
                         "effects (every observed period has the same condition in all clusters, or a level or "
                         "exposure time is never observed)")


# ----------------------------------------------------------------------------------------------------------
# power from ICC, CAC (or decay) and IAC
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class MultiPeriodPower:
    """Power of a multi-period design for one scenario (floats) or a grid of them (arrays of one shape).

    ``effect`` is the treatment effect (one per level on a last axis when the design has several levels),
    ``se`` the standard error of its GLS estimate, ``power`` the two-sided power at ``alpha``; ``settings``
    holds the scenario arguments broadcast to the scenario shape.
    """

    power: Any
    se: Any
    effect: Any
    alpha: float
    design: MultiPeriodDesign
    outcome: str
    settings: dict = field(default_factory=dict)

    @property
    def n_scenarios(self) -> int:
        return int(np.prod(np.shape(self.settings["icc"])))

    def to_frame(self) -> pd.DataFrame:
        """One row per scenario: its settings, effect(s), standard error(s) and power(s)."""
        columns = {name: np.ravel(value) for name, value in self.settings.items()}
        effects = np.shape(self.effect)[-1:] if self.design.n_effects > 1 and np.ndim(self.effect) else ()
        if effects:
            for k, level in enumerate(self.design.treatment_levels):
                for name, value in (("effect", self.effect), ("se", self.se), ("power", self.power)):
                    columns[f"{name} (level {level:g})"] = np.ravel(np.asarray(value)[..., k])
        else:
            columns.update(effect=np.ravel(np.broadcast_to(self.effect, np.shape(self.power))),
                           se=np.ravel(self.se), power=np.ravel(self.power))
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        design = repr(self.design).removeprefix("MultiPeriodDesign(").removesuffix(")")
        if self.n_scenarios == 1:
            def listed(values, spec):
                values = np.ravel(values)
                shown = ", ".join(f"{v:{spec}}" for v in values)
                return shown if values.size == 1 else f"[{shown}]"
            shown = ", ".join(f"{k}={np.asarray(v).item():g}" for k, v in self.settings.items())
            return (f"MultiPeriodPower(power={listed(self.power, '.4f')}, effect={listed(self.effect, 'g')}, "
                    f"se={listed(self.se, '.4g')}, {shown}, alpha={self.alpha:g}; {design})")
        return (f"MultiPeriodPower({self.n_scenarios} scenarios, power {np.min(self.power):.3f} to "
                f"{np.max(self.power):.3f}, alpha={self.alpha:g}; {design})")


def _numbers(value: Any, name: str) -> np.ndarray:
    """A float array of finite numbers, or a ValueError naming the argument."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    if isinstance(value, (bool, np.bool_)) or np.asarray(value).dtype == bool or not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite numbers, got {value!r}")
    return array


def _within(array: np.ndarray, name: str, low: float, high: float, *, open_low: bool = False,
            open_high: bool = False) -> None:
    bad = (array < low) | (array > high) | (open_low & (array == low)) | (open_high & (array == high))
    if bad.any():
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {array[bad].flat[0]:g}")


def _design(design: Any) -> MultiPeriodDesign:
    if not isinstance(design, MultiPeriodDesign):
        raise ValueError(f"design must be a MultiPeriodDesign (stepped_wedge(...), parallel_arms(...), ...), "
                         f"got {type(design).__name__}")
    if not design.treatment_levels:
        raise ValueError("design has no treated cell: there is no treatment effect to estimate")
    return design


def _treatment(design: MultiPeriodDesign, exposure_weights: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The treatment covariates, and the weights of the exposure-time effects (None: one effect per level)."""
    if exposure_weights is None:
        return design.treatment_columns(), None
    exposure = design.exposure_times()
    longest = int(exposure[design.observed].max())
    weights = _numbers(exposure_weights, "exposure_weights")
    if weights.shape != (longest,):
        raise ValueError(f"exposure_weights must give one weight per exposure time: {longest} in this design, "
                         f"got {weights.size}")
    if not math.isclose(float(weights.sum()), 1.0, rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"exposure_weights must sum to 1 (they average the exposure-time effects), got sum "
                         f"{weights.sum():g}")
    columns = (exposure[:, :, None] == np.arange(1, longest + 1)).astype(float) * design.observed[:, :, None]
    # an exposure time no cluster is observed at (behind a transition period, say) has no estimate: it may only
    # enter with weight 0, and then drops out
    seen = columns[design.clusters_per_sequence > 0].any(axis=(0, 1))
    if (weights[~seen] != 0).any():
        raise ValueError(f"exposure time(s) {(np.flatnonzero(~seen & (weights != 0)) + 1).tolist()} are observed in "
                         f"no cluster: give them weight 0 in exposure_weights")
    return columns[:, :, seen], weights[seen]


def multiperiod_power(design: MultiPeriodDesign, effect: Any, *, icc: Any, cac: Any = None, decay: Any = None,
                      iac: Any = 0.0, cluster_size: Any = None, size_matrix: Any = None, sd: Any = 1.0,
                      p_control: Any = None, outcome: str = "continuous", alpha: float = 0.05,
                      exposure_weights: Any = None) -> MultiPeriodPower:
    """Power of ``design`` to detect ``effect``, for one scenario or a grid (the numeric arguments broadcast).

    ``icc`` is the correlation of two individuals in a cluster-period; ``cac`` (block exchangeable; default
    1, exchangeable) or ``decay`` (exponential decay: the correlation of a cluster's period effects one period
    apart) the correlation of a cluster's period effects over time; ``iac`` > 0 a closed cohort. Sizes:
    ``cluster_size`` individuals in each cluster-period (broadcast with the other scenario arguments), or
    ``size_matrix``, one size per cluster or a clusters x periods matrix (0 = not observed), clusters in the
    order of ``design.cluster_matrix()``. Continuous outcome: ``sd`` is the total SD of an individual outcome.
    Binary: ``outcome="binary"``, ``p_control``, and ``effect`` a difference in proportions; the variance is
    ``p (1 - p)`` at the mean proportion ``p``. Several treatment levels: the last axis of ``effect`` holds one
    effect per level (``design.treatment_levels``). ``exposure_weights``: the exposure-time indicator model of
    Kenny et al. (2022), the effect being the weighted average of the exposure-time effects.

    >>> sw = stepped_wedge(5, 2)
    >>> round(multiperiod_power(sw, 0.3, icc=0.05, decay=0.8, cluster_size=30).power, 4)
    0.8707
    >>> round(multiperiod_power(sw, 0.1, outcome="binary", p_control=0.3, icc=0.02, iac=0.5,
    ...                         cluster_size=30).power, 4)
    0.9526
    """
    design = _design(design)
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
            or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    treatment, weights = _treatment(design, exposure_weights)
    n_effects = 1 if weights is not None else design.n_effects
    effects = _numbers(effect, "effect")
    if n_effects > 1 and (effects.ndim == 0 or effects.shape[-1] != n_effects):
        raise ValueError(f"effect must end with one effect per treatment level ({n_effects}: levels "
                         f"{', '.join(f'{v:g}' for v in design.treatment_levels)}), got shape {effects.shape}")
    if (effects == 0).all():
        raise ValueError("effect must be nonzero (the power at 0 is alpha)")
    if cac is not None and decay is not None:
        raise ValueError("give cac (block exchangeable) or decay (exponential decay), not both")
    if (cluster_size is None) == (size_matrix is None):
        raise ValueError("give cluster_size (individuals per cluster-period) or size_matrix (per cluster or per "
                         "cluster-period), exactly one of them")
    structure, correlation = ("cac", 1.0 if cac is None else cac) if decay is None else ("decay", decay)
    named = {"icc": _numbers(icc, "icc"), structure: _numbers(correlation, structure), "iac": _numbers(iac, "iac")}
    _within(named["icc"], "icc", 0, 1, open_high=True)
    _within(named[structure], structure, 0, 1)
    _within(named["iac"], "iac", 0, 1, open_high=True)
    if cluster_size is not None:
        named["cluster_size"] = _numbers(cluster_size, "cluster_size")
        _within(named["cluster_size"], "cluster_size", 0, np.inf, open_low=True)
    if outcome == "continuous":
        if p_control is not None:
            raise ValueError("p_control is for outcome='binary'; a continuous outcome takes sd")
        named["sd"] = _numbers(sd, "sd")
        _within(named["sd"], "sd", 0, np.inf, open_low=True)
    else:
        if p_control is None:
            raise ValueError("p_control (the control arm's proportion) is needed for outcome='binary'")
        named["p_control"] = _numbers(p_control, "p_control")
        _within(named["p_control"], "p_control", 0, 1, open_low=True, open_high=True)
    scenario_effect = effects[..., 0] if n_effects > 1 else effects
    try:
        shape = np.broadcast_shapes(scenario_effect.shape, *(v.shape for v in named.values()))
    except ValueError:
        raise ValueError("the scenario arguments (effect, icc, cac/decay, iac, cluster_size, sd/p_control) do not "
                         "broadcast to one shape: " + ", ".join(f"{k} {v.shape}" for k, v in
                                                                  {"effect": scenario_effect, **named}.items())) from None
    named = {k: np.broadcast_to(v, shape) for k, v in named.items()}
    effects = np.broadcast_to(effects, shape + ((n_effects,) if n_effects > 1 else ()))
    if outcome == "binary":
        level_effects = effects if n_effects > 1 else effects[..., None]
        treated_p = named["p_control"][..., None] + level_effects
        _within(treated_p, "p_control + effect", 0, 1, open_low=True, open_high=True)
        mean_p = named["p_control"] + level_effects.mean(axis=-1) / 2
        total = mean_p * (1 - mean_p)
    else:
        total = named["sd"] ** 2
    # the total variance split by the correlations (Hooper et al. 2016): cluster icc, of which the share cac
    # persists over periods; individual 1 - icc, of which the share iac persists in a closed cohort
    icc_, iac_ = named["icc"], named["iac"]
    cluster, individual = icc_ * total, (1 - icc_) * total
    persistent = named["cac"] if decay is None else 1.0
    tau2, gamma2 = cluster * persistent, cluster * (1 - persistent)
    zeta2, sigma2 = individual * iac_, individual * (1 - iac_)

    if size_matrix is not None:
        observed, counts, columns, sizes, on_treatment = _group_sizes(design, treatment, size_matrix,
                                                                      cohort=bool((iac_ > 0).any()))
        sizes = sizes.reshape((1,) * len(shape) + sizes.shape)
    else:
        keep = design.clusters_per_sequence > 0
        observed, counts, columns = design.observed[keep], design.clusters_per_sequence[keep], treatment[keep]
        on_treatment = np.nan_to_num(design.sequences[keep]) > 0
        sizes = named["cluster_size"][..., None, None]
    check_estimable(observed, counts, columns)
    covariance = gls_treatment_covariance(observed, counts, columns, sizes, tau2=tau2, sigma2=sigma2, gamma2=gamma2,
                                          zeta2=zeta2, decay=None if decay is None else named["decay"],
                                          treated=on_treatment)
    if weights is not None:
        variance = np.einsum("k,...kl,l->...", weights, covariance, weights)
    else:
        variance = np.diagonal(covariance, axis1=-2, axis2=-1)
        variance = variance if n_effects > 1 else variance[..., 0]
    se = np.sqrt(variance)
    power = normal_power(effects, se, alpha)
    scalar = shape == () and n_effects == 1
    return MultiPeriodPower(power=float(power) if scalar else power, se=float(se) if scalar else se,
                            effect=float(effects) if scalar else effects, alpha=float(alpha), design=design,
                            outcome=outcome, settings=named)


def normal_power(effect: Any, se: Any, alpha: float) -> np.ndarray:
    """Two-sided power of a Wald test: ``Phi(|effect|/se - z) + Phi(-|effect|/se - z)``, ``z = z_{1 - alpha/2}``.

    >>> round(float(normal_power(0.2, 0.07, 0.05)), 4)
    0.8152
    """
    z = ndtri(1 - alpha / 2)
    ratio = np.abs(effect) / se
    return ndtr(ratio - z) + ndtr(-ratio - z)


def _group_sizes(design: MultiPeriodDesign, treatment: np.ndarray, size_matrix: Any, *, cohort: bool):
    """Group the clusters by sequence and size pattern: the sizes make clusters of one sequence differ."""
    sizes = _numbers(size_matrix, "size_matrix")
    n_clusters, n_periods = design.n_clusters, design.n_periods
    if sizes.shape == (n_clusters,):
        sizes = np.repeat(sizes[:, None], n_periods, axis=1)
    if sizes.shape != (n_clusters, n_periods):
        raise ValueError(f"size_matrix must give one size per cluster ({n_clusters}) or a clusters x periods matrix "
                         f"({n_clusters} x {n_periods}), got shape {sizes.shape}")
    if (sizes < 0).any():
        raise ValueError("size_matrix must hold sizes >= 0 (0 = the cluster-period is not observed)")
    sequence = design.sequence_of_cluster()
    observed = design.observed[sequence] & (sizes > 0)
    if cohort:
        positive = np.where(observed, sizes, np.nan)
        spread = np.nanmax(positive, axis=1) - np.nanmin(positive, axis=1)
        if (spread > 0).any():
            raise ValueError("size_matrix: a closed cohort (iac > 0) measures the same individuals every period, "
                             "so a cluster's size must be the same in all its observed periods")
    first, group = unique_rows(np.hstack([sequence[:, None], np.where(observed, sizes, 0.0)]))
    counts = np.bincount(group, minlength=first.size)
    rows = sequence[first]
    on_treatment = np.nan_to_num(design.sequences[rows]) > 0
    return observed[first], counts, treatment[rows] * observed[first][:, :, None], \
        np.where(observed[first], sizes[first], 1.0), on_treatment


def multiperiod_power_grid(design: MultiPeriodDesign, *, effect: Any, icc: Any, cluster_size: Any,
                           cac: Any = None, decay: Any = None, iac: Any = 0.0, sd: Any = 1.0, p_control: Any = None,
                           outcome: str = "continuous", alpha: float = 0.05) -> pd.DataFrame:
    """Every combination of the values given (lists or numbers), one row each, with its power.

    >>> grid = multiperiod_power_grid(stepped_wedge(4, 3), effect=[0.2, 0.4], icc=[0.01, 0.05],
    ...                               cac=[0.5, 1.0], cluster_size=[10, 20])
    >>> grid.shape
    (16, 7)
    >>> list(grid.columns)
    ['icc', 'cac', 'iac', 'cluster_size', 'sd', 'effect', 'power']
    """
    axes = {"effect": effect, "icc": icc, "cac" if decay is None else "decay": cac if decay is None else decay,
            "iac": iac, "cluster_size": cluster_size, "sd" if outcome == "continuous" else "p_control":
            sd if outcome == "continuous" else p_control}
    if cac is not None and decay is not None:
        raise ValueError("give cac (block exchangeable) or decay (exponential decay), not both")
    if axes.get("cac", 0) is None:
        axes["cac"] = 1.0
    values = {k: np.atleast_1d(_numbers(v, k)).ravel() for k, v in axes.items() if v is not None}
    mesh = np.meshgrid(*values.values(), indexing="ij")
    grid = dict(zip(values, (m.ravel() for m in mesh)))
    result = multiperiod_power(design, grid.pop("effect"), outcome=outcome, alpha=alpha, **grid)
    return result.to_frame().drop(columns="se")


# ----------------------------------------------------------------------------------------------------------
# clusters and steps needed
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClustersNeeded:
    """The smallest number of copies of a design's clusters (``replicates``) that reaches the power.

    With one cluster per sequence in the design, ``replicates`` is the number of clusters per sequence;
    ``n_clusters`` the total, ``power`` the power reached.
    """

    replicates: Any
    n_clusters: Any
    power: Any


def multiperiod_clusters_needed(design: MultiPeriodDesign, effect: Any, *, power: float = 0.8,
                                max_replicates: int = 100_000, **settings: Any) -> ClustersNeeded:
    """Smallest whole ``m`` such that ``m`` times the design's clusters on each sequence reach ``power``.

    The GLS information adds over clusters, so ``m`` copies divide the variance by ``m`` exactly; the answer
    follows from one power computation. ``settings`` are :func:`multiperiod_power`'s (``cluster_size``, not
    ``size_matrix``); with several levels every level must reach the power.

    >>> needed = multiperiod_clusters_needed(stepped_wedge(4), 0.2, icc=[0.01, 0.05], cluster_size=20)
    >>> needed.replicates, needed.n_clusters
    (array([5, 6]), array([20, 24]))
    """
    if "size_matrix" in settings:
        raise ValueError("size_matrix gives every cluster's size, so the number of clusters is fixed: use "
                         "cluster_size to find the clusters needed")
    if isinstance(power, (bool, np.bool_)) or not isinstance(power, (int, float)) or not 0.0 < power < 1.0:
        raise ValueError(f"power must be a number in (0, 1), got {power!r}")
    base = multiperiod_power(design, effect, **settings)
    if (np.asarray(base.effect) == 0).any():
        raise ValueError("effect must be nonzero in every scenario (no number of clusters detects 0)")
    z = ndtri(1 - base.alpha / 2) + ndtri(power)
    variance = np.asarray(base.se) ** 2
    # the one-sided normal bound is enough (the far tail only adds power); rounding is corrected both ways below
    needed = np.maximum(1, np.ceil(variance * z**2 / np.asarray(base.effect) ** 2))
    needed = needed.max(axis=-1) if design.n_effects > 1 else needed
    if (needed > max_replicates).any():
        raise ValueError(f"more than max_replicates={max_replicates} copies of the design's clusters would be "
                         f"needed in {(needed > max_replicates).sum()} scenario(s)")

    def achieved(m):
        extra = (...,) + ((None,) if design.n_effects > 1 else ())
        reached = normal_power(base.effect, np.asarray(base.se) / np.sqrt(m[extra]), base.alpha)
        return reached.min(axis=-1) if design.n_effects > 1 else reached

    while (short := achieved(needed) < power).any():
        needed = needed + short
    while (fewer := (needed > 1) & (achieved(np.maximum(needed - 1, 1)) >= power)).any():
        needed = needed - fewer
    replicates = needed.astype(np.int64)
    reached = achieved(needed)
    if replicates.ndim == 0:
        return ClustersNeeded(int(replicates), int(replicates) * design.n_clusters, float(reached))
    return ClustersNeeded(replicates, replicates * design.n_clusters, reached)


@dataclass(frozen=True)
class StepsNeeded:
    """The smallest number of steps (sequences) of a stepped wedge that reaches the power, its clusters and power."""

    steps: Any
    n_clusters: Any
    power: Any


def stepped_wedge_steps_needed(effect: Any, *, clusters_per_step: int | None = None, n_clusters: int | None = None,
                               power: float = 0.8, max_steps: int = 40, baseline_periods: int = 1,
                               periods_per_step: int = 1, extra_periods: int = 0, **settings: Any) -> StepsNeeded:
    """Smallest number of steps of a stepped wedge (:func:`stepped_wedge`) that reaches ``power``.

    Either ``clusters_per_step`` clusters switch at each step (more steps, more clusters), or ``n_clusters``
    clusters are spread over the steps as evenly as possible (the first steps take one more). ``settings``
    are :func:`multiperiod_power`'s; more steps also mean more periods of ``cluster_size`` individuals.

    >>> stepped_wedge_steps_needed(0.2, clusters_per_step=4, icc=0.05, cluster_size=20).steps
    5
    >>> stepped_wedge_steps_needed(0.2, n_clusters=24, icc=[0.05, 0.1], cluster_size=20).steps
    array([4, 4])
    """
    if (clusters_per_step is None) == (n_clusters is None):
        raise ValueError("give clusters_per_step or n_clusters, exactly one of them")
    if isinstance(power, (bool, np.bool_)) or not isinstance(power, (int, float)) or not 0.0 < power < 1.0:
        raise ValueError(f"power must be a number in (0, 1), got {power!r}")
    if isinstance(max_steps, (bool, np.bool_)) or not isinstance(max_steps, (int, np.integer)) or max_steps < 2:
        raise ValueError(f"max_steps must be a whole number of at least 2, got {max_steps!r}")
    total = None
    if n_clusters is not None:
        if isinstance(n_clusters, (bool, np.bool_)) or not isinstance(n_clusters, (int, np.integer)) \
                or n_clusters < 2:
            raise ValueError(f"n_clusters must be a whole number of at least 2, got {n_clusters!r}")
        total = int(n_clusters)
        max_steps = min(max_steps, total)
    steps = clusters = reached = None
    for n_steps in range(2, max_steps + 1):
        per_step = clusters_per_step if total is None else \
            total // n_steps + (np.arange(n_steps) < total % n_steps)
        design = stepped_wedge(n_steps, per_step, baseline_periods=baseline_periods,
                               periods_per_step=periods_per_step, extra_periods=extra_periods)
        result = multiperiod_power(design, effect, **settings)
        level_power = np.asarray(result.power)
        level_power = level_power.min(axis=-1) if design.n_effects > 1 else level_power
        if steps is None:
            steps = np.zeros(level_power.shape, dtype=np.int64)
            clusters = np.zeros(level_power.shape, dtype=np.int64)
            reached = np.zeros(level_power.shape)
        new = (steps == 0) & (level_power >= power)
        steps[new], clusters[new], reached[new] = n_steps, design.n_clusters, level_power[new]
        if (steps > 0).all():
            break
    if (steps == 0).any():
        raise ValueError(f"max_steps={max_steps} steps do not reach power {power:g} in {(steps == 0).sum()} of "
                         f"{steps.size} scenario(s): allow more steps, or more clusters or individuals")
    if steps.ndim == 0:
        return StepsNeeded(int(steps), int(clusters), float(reached))
    return StepsNeeded(steps, clusters, reached)
