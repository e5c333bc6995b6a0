"""swCRTdesign's interface, for R users porting stepped-wedge scripts line by line: ``swDsn`` and ``swPwr``.

Arguments keep swCRTdesign 4.0's names (dots as underscores) and defaults; an argument left ``None`` is R's
missing argument. Results are dicts with swCRTdesign's element names, NaN where R has NA. The power comes from
the native engine (:mod:`crt_widgets.core.multiperiod.power`): one periods x periods block per group of
identical clusters instead of R's (clusters x periods)-square covariance matrix.

Where we differ from swCRTdesign on purpose (one sentence each):

- R's notes printed on every call ("Cross-sectional design assumed", "Closed cohort design assumed", "power
  depends on order of clusters") are not raised, as with R's ``silent = TRUE``; warnings that change or
  question the answer (H renormalized or assumed equal, sigma ignored, a cluster that never crosses over,
  a fractional effect outside [0, 1]) are.
- A design in which the treatment is not estimable, or a period observed in no cluster, is a ValueError
  saying so, where R stops in ``solve`` with "system is computationally singular".
- ``swDsn`` cannot tell an argument passed at its default from one left out, so ``swBlk`` with
  ``extra_ctl_time=0`` is accepted where R would stop.
- Messages are our own words and name the argument with the value given; the conditions are R's, plus
  checks R lacks (binomial means outside (0, 1), a non-finite ``H``), which would give NaN there.

>>> design = swDsn([6, 6, 6, 6])
>>> design["swDsn_unique_clusters"]
array([[0., 1., 1., 1., 1.],
       [0., 0., 1., 1., 1.],
       [0., 0., 0., 1., 1.],
       [0., 0., 0., 0., 1.]])
>>> round(swPwr(design, "binomial", n=120, mu0=0.05, mu1=0.035, tau=0.01, eta=0, rho=0, gamma=0), 6)
0.78619
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.linalg import block_diag

from crt_widgets.core.multiperiod.designs import unique_rows
from crt_widgets.core.multiperiod.power import (
    _covariance_blocks,
    check_estimable,
    gls_treatment_covariance,
    normal_power,
)

__all__ = ["swDsn", "swPwr"]

SWBLK_MESSAGE = "swBlk must be a waves x time matrix of whole-number levels (NaN or None where no data are collected)"
N_MESSAGE = "n must hold whole numbers: one size, one per cluster, or a clusters x time matrix"


def _whole_numbers(value: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold whole numbers (clusters per wave), got {value!r}") from None
    if not np.isfinite(array).all() or (array % 1 != 0).any():
        raise ValueError(f"{name} must hold whole numbers (clusters per wave), got {value!r}")
    return array


def swDsn(clusters: Any, tx_effect_frac: Any = 1, extra_ctl_time: int = 0, extra_trt_time: int = 0,
          all_ctl_time0: bool = True, swBlk: Any = None) -> dict[str, Any]:
    """swCRTdesign's ``swDsn``: the stepped wedge design, clusters x time (``swDsn``) and one row per wave.

    ``clusters`` is the number of clusters in each wave (0 allowed: nobody switches at that step). Either
    the standard form with ``tx_effect_frac`` (the fraction of the effect in the first periods on treatment),
    ``extra_ctl_time``, ``extra_trt_time`` and ``all_ctl_time0``, or ``swBlk``, a waves x time matrix of
    integer treatment levels with NaN (or None) where no data are collected; all-NaN columns are dropped.

    >>> d = swDsn([3, 0, 2], tx_effect_frac=[0.8, 0.9, 1.0], extra_trt_time=2)
    >>> d["swDsn_unique_clusters"], d["n_waves"], d["total_time"]
    (array([[0. , 0.8, 0.9, 1. , 1. , 1. ],
           [0. , 0. , 0. , 0.8, 0.9, 1. ]]), 2, 6)
    >>> swDsn([4, 4], swBlk=[[0, 1, 2], [None, 0, 1]])["TxLev"]
    array([1., 2.])
    """
    counts = _whole_numbers(clusters, "clusters").reshape(-1)
    if swBlk is None:
        for name, value in (("extra_ctl_time", extra_ctl_time), ("extra_trt_time", extra_trt_time)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or value < 0 or value % 1 != 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if not isinstance(all_ctl_time0, (bool, np.bool_)):
            raise ValueError(f"all_ctl_time0 must be True or False, got {all_ctl_time0!r}")
        if (counts < 0).any() or counts.sum() < 1:
            raise ValueError(f"clusters must be whole numbers >= 0 with at least one cluster, got {clusters!r}")
        fraction = np.asarray(tx_effect_frac, dtype=float).reshape(-1)
        if fraction.size == 0 or not np.isfinite(fraction).all():
            raise ValueError(f"tx_effect_frac must be one or more finite numbers, got {tx_effect_frac!r}")
        if ((fraction < 0) | (fraction > 1)).any():
            warnings.warn("tx_effect_frac outside [0, 1]: it is the share of the treatment effect reached in each "
                          "period after the switch, not the effect itself", UserWarning, stacklevel=2)
        waves, control, treated = counts.size, int(extra_ctl_time), int(extra_trt_time)
        # one row per wave: extra control periods, the staircase (wave w switches after w + 1 periods), extra
        # treatment periods
        block = np.hstack([np.zeros((waves, control)), np.triu(np.ones((waves, waves)), k=1),
                           np.ones((waves, treated + 1))])
        matrix = np.repeat(block, counts.astype(int), axis=0)
        if not all_ctl_time0:
            matrix = matrix[:, 1:]
        total_time = matrix.shape[1]
        on_control = (matrix == 0).sum(axis=1)
        # a row's treated periods take tx_effect_frac in turn, then 1 (a longer tx_effect_frac is cut short)
        position = np.arange(total_time) - on_control[:, None]
        fractions = np.concatenate([fraction, np.ones(total_time)])
        matrix = np.where(position >= 0, fractions[np.clip(position, 0, None)], 0.0)
        first, _ = unique_rows(matrix)
        nonzero = counts[counts != 0]
        return {"swDsn": matrix, "swDsn_unique_clusters": matrix[np.sort(first)], "n_waves": int(nonzero.size),
                "clusters": nonzero, "n_clusters": int(nonzero.sum()), "tx_effect_frac": tx_effect_frac,
                "total_time": int(total_time), "nTxLev": 1, "TxLev": np.array([1.0])}
    if np.any(np.asarray(tx_effect_frac, dtype=float) != 1):
        raise ValueError("tx_effect_frac cannot be combined with swBlk (code the levels in swBlk)")
    if extra_ctl_time != 0 or extra_trt_time != 0 or all_ctl_time0 is not True:
        raise ValueError("give swBlk, or extra_ctl_time, extra_trt_time and all_ctl_time0, not both")
    if (counts <= 0).any():
        raise ValueError(f"clusters must be whole numbers >= 1 with swBlk (one per row), got {clusters!r}")
    try:
        block = np.array(swBlk, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(SWBLK_MESSAGE) from None
    if block.ndim != 2 or np.isinf(block).any() or (np.nan_to_num(block) % 1 != 0).any():
        raise ValueError(SWBLK_MESSAGE)
    if counts.size != block.shape[0]:
        raise ValueError(f"clusters must give one number per row of swBlk ({block.shape[0]}), got {counts.size}")
    block = block[:, ~np.isnan(block).all(axis=0)]
    if block.shape[1] == 0:
        raise ValueError("swBlk has no observed period (every column is NA)")
    values = block.T[~np.isnan(block.T)]             # column-major, as R reads a matrix
    _, first = np.unique(values, return_index=True)
    treated_values = values[np.sort(first)]
    levels = treated_values[treated_values != 0]
    return {"swDsn": np.repeat(block, counts.astype(int), axis=0), "swDsn_unique_clusters": block,
            "n_waves": int(block.shape[0]), "clusters": counts, "n_clusters": int(counts.sum()),
            "tx_effect_frac": tx_effect_frac, "total_time": int(block.shape[1]),
            "nTxLev": int(np.unique(values).size - 1), "TxLev": levels}


def _number(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def swPwr(design: dict, distn: str, n: Any, mu0: float, mu1: Any, H: Any = None, sigma: float | None = None,
          tau: float | None = None, eta: float | None = None, rho: float | None = None, gamma: float | None = None,
          zeta: float | None = None, icc: float | None = None, cac: float | None = None, iac: float | None = None,
          alpha: float = 0.05, retDATA: bool = False) -> Any:
    """swCRTdesign's ``swPwr``: two-sided power of the treatment effect(s) of a ``swDsn`` design, by GLS.

    Variance components are random-effect SDs (``tau`` intercept, ``eta`` treatment, ``rho`` their correlation,
    ``gamma`` cluster-period, ``zeta`` individual in a closed cohort; ``sigma`` the residual SD of a gaussian
    outcome) or, exclusively, ``icc``, ``cac`` and ``iac``. ``n`` is one size, one per cluster, or a clusters x
    time matrix (0 = no data). ``H`` switches to the exposure-time indicator model (Kenny et al. 2022) and
    weights its exposure-time effects. Returns the power (one per treatment level when ``mu1`` is a vector),
    or with ``retDATA=True`` a dict whose ``pwrWLS`` is the power.

    >>> d = swDsn([5, 5, 5])
    >>> round(swPwr(d, "gaussian", n=20, mu0=0, mu1=0.3, sigma=1, icc=0.05, cac=0.7, iac=0.3), 6)
    0.671443
    >>> swPwr(d, "gaussian", n=20, mu0=0, mu1=0.3, sigma=1, tau=0.2, icc=0.05)
    Traceback (most recent call last):
    ...
    ValueError: give the random-effect SDs (tau, eta, rho, gamma, zeta) or icc, cac and iac, not both: ...
    """
    for key in ("swDsn", "swDsn_unique_clusters", "clusters", "n_clusters", "total_time", "nTxLev", "TxLev"):
        if not isinstance(design, dict) or key not in design:
            raise ValueError(f"design must be a swDsn() result; it has no {key!r}")
    if distn not in ("gaussian", "binomial"):
        raise ValueError(f"distn must be 'gaussian' or 'binomial', got {distn!r}")
    alpha = _number(alpha, "alpha")
    if alpha <= 0 or alpha >= 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha:g}")
    try:
        sizes = np.asarray(n, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(N_MESSAGE) from None
    if not np.isfinite(sizes).all() or (sizes % 1 != 0).any():
        raise ValueError(N_MESSAGE)
    rows = np.asarray(design["swDsn"], dtype=float)
    n_clusters, n_times = rows.shape
    n_levels = int(design["nTxLev"])
    fraction = np.asarray(design.get("tx_effect_frac", 1), dtype=float)
    mu0 = _number(mu0, "mu0")
    effects = np.asarray(mu1, dtype=float).reshape(-1)
    if not np.isfinite(effects).all() or effects.size == 0:
        raise ValueError(f"mu1 must hold finite numbers, got {mu1!r}")
    weights = None
    if H is not None:
        if n_levels > 1:
            raise ValueError(f"H (the exposure-time model) needs a 0/1 design; this one has {n_levels} treatment "
                             f"levels")
        if (fraction != 1).any():
            raise ValueError("H cannot be combined with a design built with a fractional tx_effect_frac")
        exposure = np.cumsum(np.nan_to_num(rows, nan=0.0), axis=1)
        longest = int(exposure.max())
        try:
            weights = np.asarray(H, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            weights = np.array([np.nan])
        if not np.isfinite(weights).all() or weights.sum() == 0:
            raise ValueError(f"H must hold finite numbers with a nonzero sum, got {H!r}")
        if weights.size == 1:
            weights = np.full(longest, 1.0 / longest)
            warnings.warn(f"H of length 1: equal weights on the {longest} exposure times", UserWarning,
                          stacklevel=2)
        if weights.size != longest:
            raise ValueError(f"H must give one weight per exposure time: {longest} in this design, got "
                             f"{weights.size}")
        if weights.sum() != 1:
            weights = weights / weights.sum()
            warnings.warn("H rescaled to sum to 1", UserWarning, stacklevel=2)
    if n_levels != effects.size:
        raise ValueError(f"mu1 must give one mean per treatment level of the design ({n_levels}), got "
                         f"{effects.size}")
    if distn == "gaussian" and sigma is None:
        raise ValueError("sigma (the residual SD) is needed when distn='gaussian'")
    icc_given = any(v is not None for v in (icc, cac, iac))
    effects_given = any(v is not None for v in (tau, eta, rho, gamma, zeta))
    if icc_given and effects_given:
        raise ValueError("give the random-effect SDs (tau, eta, rho, gamma, zeta) or icc, cac and iac, not both: "
                         "the two parameterizations exclude each other")
    tau, eta, rho, gamma, zeta = (0.0 if v is None else _number(v, name) for v, name in
                                  ((tau, "tau"), (eta, "eta"), (rho, "rho"), (gamma, "gamma"), (zeta, "zeta")))
    if distn == "binomial" and not (0 < mu0 < 1 and ((effects > 0) & (effects < 1)).all()):
        raise ValueError("mu0 and mu1 must be proportions in (0, 1) when distn='binomial'")
    mean_mu = (mu0 + effects.mean()) / 2
    if distn == "gaussian":
        sigma = _number(sigma, "sigma")
        residual = sigma**2
    else:
        if sigma is not None:
            warnings.warn("sigma is ignored when distn='binomial' (the variance is muBar (1 - muBar))", UserWarning,
                          stacklevel=2)
        residual = mean_mu * (1 - mean_mu)
        sigma = float("nan")
    if icc_given:
        icc, cac, iac = (default if v is None else _number(v, name) for v, default, name in
                         ((icc, 0.0, "icc"), (cac, 1.0, "cac"), (iac, 0.0, "iac")))
        if not (0 <= icc <= 1 and 0 <= cac <= 1 and 0 <= iac <= 1):
            raise ValueError(f"icc, cac and iac must be in [0, 1], got {icc:g}, {cac:g}, {iac:g}")
        if icc == 1 or iac == 1:
            raise ValueError(f"{'icc' if icc == 1 else 'iac'} = 1 does not determine the random effects: give the "
                             f"random-effect SDs instead")
        if distn == "gaussian" and sigma == 0:
            raise ValueError("sigma = 0 cannot be used with icc, cac and iac: give the random-effect SDs instead")
        # Hooper et al. (2016): icc = (tau^2 + gamma^2) / (tau^2 + gamma^2 + zeta^2 + sigma^2),
        # cac = tau^2 / (tau^2 + gamma^2), iac = zeta^2 / (zeta^2 + sigma^2); eta = rho = 0
        eta = rho = 0.0
        zeta = np.sqrt(residual * iac / (1 - iac))
        cluster = icc * (residual + zeta**2) / (1 - icc)
        tau, gamma = np.sqrt(cluster * cac), np.sqrt(cluster * (1 - cac))
        tau, gamma, zeta = float(tau), float(gamma), float(zeta)
    if rho < -1 or rho > 1:
        raise ValueError(f"rho must be in [-1, 1], got {rho:g}")
    if tau < 0 or eta < 0 or gamma < 0 or zeta < 0:
        raise ValueError(f"tau, eta, gamma and zeta must be >= 0, got {tau:g}, {eta:g}, {gamma:g}, {zeta:g}")
    if (tau == 0 or eta == 0) and rho != 0:
        raise ValueError("rho must be 0 when tau or eta is 0 (a constant has no correlation)")
    if distn == "gaussian" and sigma == 0 and gamma == 0 and zeta == 0:
        raise ValueError("a gaussian outcome needs sigma, gamma or zeta above 0 (otherwise the means are exact)")
    if sizes.ndim == 0:
        size_matrix = np.full((n_clusters, n_times), float(sizes))
    elif sizes.ndim == 1:
        if sizes.size != n_clusters:
            raise ValueError(f"n must give one size per cluster ({n_clusters}), got {sizes.size}")
        size_matrix = np.repeat(sizes[:, None], n_times, axis=1)
    elif sizes.ndim == 2:
        if sizes.shape != (n_clusters, n_times):
            raise ValueError(f"n must be a clusters x time matrix ({n_clusters} x {n_times}), got shape "
                             f"{sizes.shape}")
        size_matrix = sizes
    else:
        raise ValueError(f"n must be a scalar, a vector or a matrix, got {sizes.ndim} dimensions")
    if (size_matrix < 0).any() or (sizes.ndim < 2 and (size_matrix == 0).any()):
        raise ValueError("n must be positive (a clusters x time matrix may hold 0 for periods without data)")
    if zeta > 0 and sizes.ndim == 2:
        positive = np.where(size_matrix > 0, size_matrix, np.nan)
        if (np.nanmax(positive, axis=1) != np.nanmin(positive, axis=1)).any():
            raise ValueError("n: a closed cohort (zeta > 0) measures the same individuals in every period, so a "
                             "cluster's size must be the same in all its periods (0 = a period without data)")
    if distn == "binomial" and tau**2 + eta**2 + gamma**2 > residual:
        raise ValueError(f"tau^2 + eta^2 + gamma^2 must not exceed the binomial variance muBar (1 - muBar) = "
                         f"{residual:g}")
    if (np.nansum(rows, axis=1) == 0).any():
        warnings.warn("at least one cluster never crosses over to treatment", UserWarning, stacklevel=2)

    values = np.nan_to_num(rows, nan=0.0)
    if weights is not None:                          # exposure time = running count of treated periods
        covariates = (exposure[:, :, None] == np.arange(1, weights.size + 1)).astype(float)
    elif n_levels == 1:                              # the cell value itself: fractions scale the effect
        covariates = values[:, :, None]
    else:                                            # one indicator per level, levels in swDsn's order
        covariates = (values[:, :, None] == np.asarray(design["TxLev"], dtype=float)[:n_levels]).astype(float)
    observed = ~np.isnan(rows) & (size_matrix > 0)
    on_treatment = values > 0
    first, group = unique_rows(np.hstack([rows, np.where(observed, size_matrix, 0.0)]))
    counts = np.bincount(group, minlength=first.size)
    group_observed = observed[first]
    group_covariates = covariates[first] * group_observed[:, :, None]
    check_estimable(group_observed, counts, group_covariates)
    components = dict(tau2=tau**2, sigma2=residual, gamma2=gamma**2, zeta2=zeta**2, eta2=eta**2,
                      tau_eta=rho * eta * tau)
    covariance = gls_treatment_covariance(group_observed, counts, group_covariates,
                                          np.where(group_observed, size_matrix[first], 1.0),
                                          treated=on_treatment[first], **components)
    if weights is not None:
        variance = float(weights @ covariance @ weights)
        se = np.sqrt(variance)
    else:
        variance = np.diagonal(covariance).copy()
        se = np.sqrt(variance)
    theta = effects - mu0
    power = normal_power(theta, se, alpha)
    result = float(power[0]) if np.ndim(mu1) == 0 else power
    if not retDATA:
        return result
    # R's matrices, in its layout: rows cluster by cluster, time within cluster, unobserved cells dropped;
    # columns intercept, time 1 .. J-1, then the treatment columns
    keep = observed.reshape(-1)
    time_columns = np.eye(n_times)[:, : n_times - 1]
    Xmat = np.hstack([np.ones((n_clusters * n_times, 1)), np.tile(time_columns, (n_clusters, 1)),
                      covariates.reshape(n_clusters * n_times, -1)])[keep]
    blocks = _covariance_blocks(observed, on_treatment, size_matrix[None], *(np.atleast_1d(float(components[k]))
                                for k in ("tau2", "sigma2", "gamma2", "zeta2", "eta2", "tau_eta")), None)[0]
    Wmat = block_diag(*blocks)[np.ix_(keep, keep)]
    return {"design": design, "n": n, "mu0": mu0, "mu1": mu1, "H": weights, "tau": tau, "eta": eta, "rho": rho,
            "sigma": sigma, "gamma": gamma, "zeta": zeta, "alpha": alpha, "Xmat": Xmat, "Wmat": Wmat,
            "var": covariance, "var_theta_WLS": variance, "pwrWLS": result}
