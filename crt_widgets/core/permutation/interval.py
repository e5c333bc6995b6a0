"""The confidence interval of the permutation test, by inverting it (steps (i)-(iv) of the cvcrand paper's Summary).

For a hypothesised effect delta on the link scale, the outcome regression is refitted with the
offset delta x treated (for a continuous outcome, residuals are linear in delta, so U(delta) for
every scheme is two precomputed vectors), and the p-value recomputed. The interval is every delta
whose two-sided p-value is at least alpha; each limit is found by walking out from the point
estimate (the delta at which the observed U is zero, a Hodges-Lehmann-type centre) until the
p-value falls below alpha, then by Brent's method on that bracket, where the p-value steps across
alpha. A limit not reached within ``MAX_LINK_EFFECT`` on the logit / log scale is infinite.

>>> import numpy as np, pandas as pd
>>> from crt_widgets.core.permutation.space import resolve_space
>>> from crt_widgets.core.permutation.data import prepare_data
>>> from crt_widgets.core.spaces.schemes import enumerate_schemes
>>> rng = np.random.default_rng(1)
>>> arm = np.array([1, 0] * 5)
>>> data = pd.DataFrame({"cl": np.repeat(np.arange(10), 20)})
>>> data["y"] = 2.0 * arm[data["cl"]] + rng.normal(size=200)
>>> space = resolve_space(enumerate_schemes(10, 5), cluster_ids=np.arange(10), observed=arm)
>>> inverter = Inverter(prepare_data(data, "y", "cl", space, [], [], "gaussian"), space)
>>> estimate = point_estimate(inverter, 1.0)
>>> low, high = confidence_interval(inverter, estimate, 0.05, 1.0)
>>> bool(low < 2.0 < high), round(inverter.observed(estimate), 12)
(True, 0.0)
"""
from __future__ import annotations

import numpy as np
from scipy import optimize

from crt_widgets.core.permutation.data import PreparedData, p_values, scheme_statistics
from crt_widgets.core.permutation.space import PermutationSpace, smallest_p_value
from crt_widgets.core.models.residuals import fit_glm

# Effects beyond this on the logit / log scale (odds or rate ratios beyond e^30) are not searched:
# the fitted means saturate there, and such a limit is reported as infinite.
MAX_LINK_EFFECT = 30.0


class Inverter:
    """U for every scheme as a function of the hypothesised effect delta (for the interval).

    Binary and count outcomes: one outcome regression with the offset ``delta * treated`` per delta,
    warm-started from the previous one. Continuous outcomes: the residuals are linear in delta,
    r(delta) = r(0) - delta (I - H) W, so U(delta) = U(0) - delta U_W for every scheme at once.
    """

    def __init__(self, prep: PreparedData, space: PermutationSpace):
        self.prep, self.space = prep, space
        self._start = None
        if prep.family == "gaussian":
            # residuals are linear in delta: r(delta) = r(0) - delta * (I - H) W
            base = fit_glm(prep.x, prep.y, "gaussian")
            on_w = fit_glm(prep.x, prep.treated, "gaussian")
            self._u0 = scheme_statistics(space.schemes, self._means(prep.y - base.mu), space.control)
            self._uw = scheme_statistics(space.schemes, self._means(prep.treated - on_w.mu), space.control)

    def _means(self, resid: np.ndarray) -> np.ndarray:
        return np.bincount(self.prep.cluster_index, weights=resid, minlength=len(self.prep.cluster_sizes)) / self.prep.cluster_sizes

    def statistics(self, delta: float) -> np.ndarray:
        """U(delta) for every scheme of the space."""
        if self.prep.family == "gaussian":
            return self._u0 - delta * self._uw
        return scheme_statistics(self.space.schemes, self._means(self.prep.y - self._fit(delta).mu), self.space.control)

    def observed(self, delta: float) -> float:
        """U(delta) of the observed scheme only (cheaper: no pass over the space)."""
        if self.prep.family == "gaussian":
            return float(self._u0[self.space.observed] - delta * self._uw[self.space.observed])
        r = self._means(self.prep.y - self._fit(delta).mu)
        arm, control = self.space.observed_arm.astype(bool), self.space.observed_control.astype(bool)
        return float(r[arm].mean() - r[control].mean())

    def _fit(self, delta: float):
        """The outcome regression with offset delta * treated, warm-started from the last delta."""
        fit = fit_glm(self.prep.x, self.prep.y, self.prep.family, offset=delta * self.prep.treated, start=self._start)
        self._start = fit.coef if fit.converged else None
        return fit

    def p_value(self, delta: float) -> float:
        """Two-sided p-value of the hypothesis that the effect is delta."""
        u = self.statistics(delta)
        return p_values(u, u[self.space.observed])["two-sided"]


def effect_scale(prep: PreparedData, u: np.ndarray) -> float:
    """A step for bracketing: the permutation SD of U, put on the link scale."""
    sd = float(np.std(u)) or 1.0
    if prep.family == "gaussian":
        return sd
    mean = prep.y.mean()
    slope = mean * (1 - mean) if prep.family == "binomial" else mean  # d mu / d eta at the mean
    return sd / max(slope, 1e-6)


def _bracket(f, start: float, step: float, direction: int, cap: float = np.inf,
             limit: int = 60) -> tuple[float, float]:
    """Walk from ``start`` in ``direction`` doubling the step until f changes sign (within ``|delta| <= cap``)."""
    inner, f_inner = start, f(start)
    for _ in range(limit):
        outer = inner + direction * step
        if abs(outer) > cap:
            outer = direction * cap
            if outer == inner:
                break
        f_outer = f(outer)
        if np.sign(f_outer) != np.sign(f_inner) or f_outer == 0:
            return inner, outer
        if abs(outer) >= cap:
            break
        inner, f_inner, step = outer, f_outer, step * 2
    raise ValueError("no bracket")


def _cap(inv: Inverter) -> float:
    return np.inf if inv.prep.family == "gaussian" else MAX_LINK_EFFECT


def point_estimate(inv: Inverter, scale: float) -> float:
    """The delta at which the observed U is zero (U decreases with delta); infinite if there is none."""
    if inv.prep.family == "gaussian":
        return float(inv._u0[inv.space.observed] / inv._uw[inv.space.observed])
    at_zero = inv.observed(0.0)
    if abs(at_zero) <= 1e-9 * abs(inv.observed(scale) - at_zero):  # zero up to rounding: no effect
        return 0.0
    direction = +1 if at_zero > 0 else -1
    try:
        a, b = _bracket(inv.observed, 0.0, scale, direction, cap=_cap(inv))
    except ValueError:  # e.g. no events in one arm: the estimate is at infinity
        return float(direction * np.inf)
    return float(optimize.brentq(inv.observed, min(a, b), max(a, b), xtol=1e-10))


def confidence_interval(inv: Inverter, estimate: float, alpha: float, scale: float) -> tuple[float, float]:
    """Limits of the (1 - alpha) interval around ``estimate``: the nearest delta on each side where the
    p-value falls below alpha (the p-value is a step function of delta, so a limit is a jump,
    located to 1e-8 relative). Infinite when the space cannot reject anything (its smallest p-value
    is at least alpha) or no rejection is found within the search range."""
    if smallest_p_value(inv.space) >= alpha:  # nothing can be rejected
        return -np.inf, np.inf
    f = lambda d: inv.p_value(d) - alpha + 1e-12  # >= 0 inside the interval
    start = float(np.clip(estimate, -_cap(inv), _cap(inv)))  # an infinite estimate: from the cap inwards
    limits = []
    for direction in (-1, +1):
        if np.isinf(estimate) and np.sign(estimate) == direction:
            limits.append(direction * np.inf)
            continue
        try:
            a, b = _bracket(f, start, scale, direction, cap=_cap(inv))
        except ValueError:
            limits.append(direction * np.inf)
            continue
        limits.append(float(optimize.brentq(f, min(a, b), max(a, b), xtol=1e-8 * max(1.0, abs(start)))))
    return limits[0], limits[1]
