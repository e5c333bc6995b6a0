"""The confidence interval of the permutation test, by inverting it (steps (i)-(iv) of the cvcrand paper's Summary).

For a hypothesised effect delta on the link scale, the outcome regression is refitted with the
offset delta x treated (for a continuous outcome, residuals are linear in delta, so U(delta) for
every scheme is two precomputed vectors), and the p-value recomputed. The interval is every delta
whose two-sided p-value is at least alpha; each limit is where the p-value steps below alpha, nearest
to the point estimate (the delta at which the observed U is zero, a Hodges-Lehmann-type centre).
A limit not reached within ``MAX_LINK_EFFECT`` on the logit / log scale is infinite.

Continuous outcomes: a walk out from the estimate brackets each limit, and Brent's method finds the step.
Binary and count outcomes, where each delta is a refit: every scheme's U is a linear function of the
clusters' mean residuals, whose derivative in delta comes with each fit (:class:`OffsetRegression`).
So one fit predicts, for every scheme, where it stops being as extreme as the observed one, hence where
the p-value steps below alpha; refitting there and predicting again converges like Newton's method on
the scheme that makes the step, and two fits within the tolerance either side of it confirm the step.
The estimate is found by Newton's method on the observed U with the same derivative. About a dozen
fits in all, where the walk and Brent's method needed some sixty; whenever a prediction is not
confirmed, the walk and Brent's method take over from what is known.

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

import math

import numpy as np
from scipy import optimize

from crt_widgets.core.permutation.data import _TIE, PreparedData, p_values, scheme_statistics
from crt_widgets.core.permutation.space import PermutationSpace, smallest_p_value
from crt_widgets.core.models.residuals import OffsetRegression, fit_glm

# Effects beyond this on the logit / log scale (odds or rate ratios beyond e^30) are not searched:
# the fitted means saturate there, and such a limit is reported as infinite.
MAX_LINK_EFFECT = 30.0
# predicted steps tried before the walk and Brent's method take over (a limit usually needs 3-5)
_MAX_PREDICTIONS = 12


class Inverter:
    """U for every scheme as a function of the hypothesised effect delta (for the interval).

    Binary and count outcomes: one outcome regression with the offset ``delta * treated`` per delta
    (:class:`OffsetRegression`: warm-started along its derivative, on the clusters when the covariates
    are cluster-level). Continuous outcomes: the residuals are linear in delta,
    r(delta) = r(0) - delta (I - H) W, so U(delta) = U(0) - delta U_W for every scheme at once.
    """

    def __init__(self, prep: PreparedData, space: PermutationSpace):
        self.prep, self.space = prep, space
        schemes = space.schemes
        # each scheme's cluster counts, as floats: U's divisions then cost no conversion (same values)
        self._counts = (schemes.treated_counts().astype(float),
                        None if space.control is None else space.control.treated_counts().astype(float))
        self._arm = space.observed_arm.astype(bool)
        self._control = space.observed_control.astype(bool)
        self._linearized: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        if prep.family == "gaussian":
            # residuals are linear in delta: r(delta) = r(0) - delta * (I - H) W
            base = fit_glm(prep.x, prep.y, "gaussian")
            on_w = fit_glm(prep.x, prep.treated, "gaussian")
            self._u0 = self._scheme_u(self._means(prep.y - base.mu))
            self._uw = self._scheme_u(self._means(prep.treated - on_w.mu))
        else:
            self._regression = OffsetRegression(prep.x, prep.y, prep.family, prep.treated, prep.cluster_index,
                                                len(prep.cluster_sizes))

    def _means(self, resid: np.ndarray) -> np.ndarray:
        return np.bincount(self.prep.cluster_index, weights=resid, minlength=len(self.prep.cluster_sizes)) / self.prep.cluster_sizes

    def _scheme_u(self, cluster_values: np.ndarray) -> np.ndarray:
        return scheme_statistics(self.space.schemes, cluster_values, self.space.control, self._counts)

    def _observed_u(self, cluster_values: np.ndarray) -> float:
        return float(cluster_values[self._arm].mean() - cluster_values[self._control].mean())

    def statistics(self, delta: float) -> np.ndarray:
        """U(delta) for every scheme of the space."""
        if self.prep.family == "gaussian":
            return self._u0 - delta * self._uw
        return self._scheme_u(self._regression.fit(delta).residual_means)

    def observed(self, delta: float) -> float:
        """U(delta) of the observed scheme only (cheaper: no pass over the space)."""
        if self.prep.family == "gaussian":
            return float(self._u0[self.space.observed] - delta * self._uw[self.space.observed])
        return self._observed_u(self._regression.fit(delta).residual_means)

    def observed_slope(self, delta: float) -> tuple[float, float]:
        """U(delta) of the observed scheme and its derivative in delta (binary and count outcomes)."""
        fit = self._regression.fit(delta)
        return self._observed_u(fit.residual_means), self._observed_u(fit.residual_slopes)

    def linearization(self, delta: float) -> tuple[np.ndarray, np.ndarray]:
        """U(delta) for every scheme and its derivative in delta (binary and count outcomes)."""
        if delta not in self._linearized:
            fit = self._regression.fit(delta)
            self._linearized = {delta: (self._scheme_u(fit.residual_means), self._scheme_u(fit.residual_slopes)),
                                **dict(list(self._linearized.items())[-3:])}
        return self._linearized[delta]

    def p_value(self, delta: float) -> float:
        """Two-sided p-value of the hypothesis that the effect is delta."""
        u = self._linearized[delta][0] if delta in self._linearized else self.statistics(delta)
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
    at_zero, slope = inv.observed_slope(0.0)
    if abs(at_zero) <= 1e-6 * abs(slope * scale) and abs(at_zero) <= 1e-9 * abs(inv.observed(scale) - at_zero):
        return 0.0  # zero up to rounding: no effect
    found = _newton_estimate(inv, at_zero, slope)
    return found if found is not None else _bracketed_estimate(inv, scale, at_zero)


def _newton_estimate(inv: Inverter, at_zero: float, slope: float) -> float | None:
    """Newton's method on the observed U from delta = 0, kept inside any sign change it has seen;
    None when it does not settle (then the walk and Brent's method decide, infinity included)."""
    cap = _cap(inv)
    positive, negative = (0.0, None) if at_zero > 0 else (None, 0.0)  # U > 0 below the root, < 0 above
    delta, u = 0.0, at_zero
    for _ in range(30):
        proposal = delta - u / slope if slope < 0 and np.isfinite(slope) else np.nan
        bracketed = positive is not None and negative is not None
        if bracketed and not min(positive, negative) < proposal < max(positive, negative):
            proposal = (positive + negative) / 2  # outside the bracket: bisect
        if not np.isfinite(proposal) or abs(proposal) > cap:
            return None
        if abs(proposal - delta) <= 1e-12 * max(1.0, abs(proposal)):
            return float(proposal)
        delta = proposal
        u, slope = inv.observed_slope(delta)
        if u == 0:
            return float(delta)
        if u > 0:
            positive = delta
        else:
            negative = delta
    return None


def _bracketed_estimate(inv: Inverter, scale: float, at_zero: float) -> float:
    """The walk from 0 and Brent's method on the observed U (infinite when no sign change is found)."""
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
    start = float(np.clip(estimate, -_cap(inv), _cap(inv)))  # an infinite estimate: from the cap inwards
    xtol = 1e-8 * max(1.0, abs(start))
    limits = []
    for direction in (-1, +1):
        if np.isinf(estimate) and np.sign(estimate) == direction:
            limits.append(direction * np.inf)
            continue
        found = None
        if inv.prep.family != "gaussian" and np.isfinite(estimate):
            found = _predicted_limit(inv, start, direction, alpha, xtol)
        limits.append(found if found is not None else _bracketed_limit(inv, start, direction, alpha, scale, xtol))
    return limits[0], limits[1]


def _inside(inv: Inverter, delta: float, alpha: float) -> bool:
    """Whether delta is in the interval: its p-value is at least alpha."""
    return inv.p_value(delta) - alpha + 1e-12 >= 0


def _bracketed_limit(inv: Inverter, start: float, direction: int, alpha: float, scale: float, xtol: float,
                     inner: float | None = None, outer: float | None = None) -> float:
    """The walk out from ``start`` and Brent's method on the bracket where the p-value steps below alpha
    (given ``inner`` and ``outer`` already known inside and outside, Brent's method on them directly)."""
    f = lambda d: inv.p_value(d) - alpha + 1e-12  # >= 0 inside the interval
    if inner is None or outer is None:
        try:
            inner, outer = _bracket(f, start, scale, direction, cap=_cap(inv))
        except ValueError:
            return direction * np.inf
    return float(optimize.brentq(f, min(inner, outer), max(inner, outer), xtol=xtol))


def _predicted_limit(inv: Inverter, start: float, direction: int, alpha: float, xtol: float) -> float | None:
    """The limit on one side from linearized predictions of every scheme's U, confirmed by exact fits
    within ``xtol`` either side of the step; None when the predictions do not settle (nor bracket it)."""
    along = lambda delta: direction * (delta - start)  # distance from the estimate towards the limit
    inner, outer = start, None                          # known inside / outside, nearest to the step
    delta = start
    for _ in range(_MAX_PREDICTIONS):
        u, du = inv.linearization(delta)
        inside = _inside(inv, delta, alpha)
        if inside and along(delta) >= along(inner) and (outer is None or along(delta) < along(outer)):
            inner = delta
        elif not inside and along(delta) > along(inner) and (outer is None or along(delta) < along(outer)):
            outer = delta
        if outer is not None and abs(outer - inner) <= xtol:
            return float((inner + outer) / 2)
        step = _predicted_step(u, du, inv.space.observed, direction if inside else -direction, alpha)
        if step is None:
            break
        target = delta + (direction if inside else -direction) * step
        if not along(inner) < along(target) < (np.inf if outer is None else along(outer)):
            if outer is None:
                break
            target = (inner + outer) / 2
        if abs(target) > _cap(inv):  # beyond the search range: the walk decides (an infinite limit?)
            break
        if abs(target - delta) <= xtol / 2:
            # the predicted step is here: one fit a quarter tolerance past it, on the other side from
            # delta, confirms it (delta's side is known): then the step is within the tolerance
            other = target + (direction if inside else -direction) * xtol / 4
            if _inside(inv, other, alpha) != inside:
                return float((delta + other) / 2)
            target = other
        delta = target
    if outer is not None:  # a bracket is known: Brent's method on it, as the walk would end
        f = lambda d: inv.p_value(d) - alpha + 1e-12
        # the fits start from the previous one, so a p-value within a fit's tolerance of a step can read
        # differently on a second look: Brent's method needs the bracket to hold when it looks again
        if f(inner) >= 0 > f(outer):
            return float(optimize.brentq(f, min(inner, outer), max(inner, outer), xtol=xtol))
    return None


def _predicted_step(u: np.ndarray, du: np.ndarray, observed: int, direction: int, alpha: float) -> float | None:
    """With every scheme's U(delta + direction * t) taken as linear in t (values ``u``, slopes
    ``direction * du``), the smallest t > 0 where the p-value's side of alpha changes, or None.

    Scheme s is as extreme as the observed one while g_s(t) = U_s(t)^2 - (|U_obs(t)| - tol)^2 >= 0 (the
    p-value's tie tolerance included, so that the count at t = 0 is the p-value's), a quadratic in t:
    its positive roots are the times s enters (g' > 0) or leaves (g' < 0) the count."""
    slope = direction * du
    u_obs, slope_obs = u[observed], slope[observed]
    magnitude = np.abs(u)
    tol = _TIE * max(abs(u_obs), float(magnitude.max()) * 1e-6, 1e-300)  # as in as_extreme
    sign = 1.0 if u_obs >= 0 else -1.0
    level = abs(u_obs) - tol              # |U_s| at or above this counts; it moves by sign * slope_obs
    n_schemes = len(u)
    extreme = int(np.count_nonzero(magnitude >= level))  # the two-sided count of as_extreme, exactly
    a = slope * slope
    a -= slope_obs * slope_obs
    b = u * slope
    b -= level * sign * slope_obs
    b *= 2.0
    c = u * u
    c -= level * level
    inside = extreme / n_schemes - alpha + 1e-12 >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        discriminant = b * b - 4.0 * a * c
        root = np.sqrt(np.maximum(discriminant, 0.0))
        q = -0.5 * (b + np.copysign(root, b))
        first, second = q / a, c / q          # the two roots (stable form); inf or nan when degenerate
    # each scheme's first positive root: the first time it enters or leaves (later ones rarely matter
    # before the step, and the prediction is checked by a fit anyway)
    first = np.where(first > 0, first, np.inf)
    second = np.where(second > 0, second, np.inf)
    times = np.minimum(first, second)
    keep = (discriminant >= 0) & np.isfinite(times)
    times = times[keep]
    flips = np.where(2.0 * a[keep] * times + b[keep] > 0, 1, -1)
    # if every event were an exit, the step would be the needed-th smallest time; entries before it
    # push it further: select again with the shortfall added (no sort of all the events)
    rank = max(0, abs(extreme - math.ceil((alpha - 1e-12) * n_schemes)) - (0 if inside else 1))
    for _ in range(20):
        if rank >= len(times):
            return None
        t = np.partition(times, rank)[rank]
        count = extreme + int(flips[times <= t].sum())
        if (count / n_schemes - alpha + 1e-12 >= 0) != inside:
            return float(t)
        rank += max(1, abs(count - math.ceil((alpha - 1e-12) * n_schemes)))
    return None
