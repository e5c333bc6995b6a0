"""Exact cutoffs over scores held in float32: the float64 quantile, tie tolerance and kept set, without the float64 array.

All 155,117,520 schemes of 30 clusters take 1.24 GB as float64 scores, and ``np.quantile`` copies them
to partition. Held in float32 they take half, and every float32 score is within a known ``error`` of its
float64 score. So each decision is taken on the float32 scores wherever it is clear by more than the
error, and only the schemes inside that margin are scored again in float64 (usually a few hundred):

* an order statistic: a random sample brackets its rank, one pass counts the scores below the bracket
  and keeps the positions inside it, and the float64 scores of the candidates within ``2 * error`` of
  the float32 order statistic give the exact value (an order statistic moves by at most the error);
* a quantile: numpy's default ("linear", R's type 7) interpolation between two exact order statistics;
* a kept set (``score <= threshold``): float32 scores below ``threshold - error`` are kept, those above
  ``threshold + error`` are not, and the band between is decided in float64.

Every result is that of the float64 scores: ties at the cutoff, and the cutoff itself, come out the same.
With float64 scores and ``error = 0`` the same functions are exact by construction.

>>> import numpy as np
>>> exact = np.random.default_rng(1).random(100_000)
>>> scores = BoundedScores(exact.astype(np.float32), 1e-7, lambda index: exact[index])
>>> bool(quantile(scores, 0.1) == np.quantile(exact, 0.1))
True
>>> kept = at_or_below(scores, quantile(scores, 0.1))
>>> bool((kept == (exact <= np.quantile(exact, 0.1))).all()), int(kept.sum())
(True, 10000)
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# elements per pass over the scores (a bounded temporary, 16 MB of float32)
_CHUNK = 1 << 22
# random sample that brackets the rank of an order statistic before the full pass
_SAMPLE = 1 << 18
# below this many scores the float64 scores are simply all computed
_SMALL = 1 << 13
# fixed seed of that sample: it only speeds the search up, results do not depend on it
_SAMPLE_SEED = 20_240_613


@dataclass(frozen=True, eq=False)
class BoundedScores:
    """Scores of every candidate, within ``error`` of the float64 scores that ``exact`` returns.

    Attributes
    ----------
    values : one score per candidate (float32, or float64 with ``error = 0``).
    error : a bound on ``|values[i] - exact([i])[0]|`` for every ``i``.
    exact : float64 scores at integer positions.
    """

    values: np.ndarray
    error: float
    exact: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def from_exact(cls, values: np.ndarray) -> "BoundedScores":
        """Scores that are already the float64 ones.

        >>> BoundedScores.from_exact(np.array([2.0, 1.0])).exact(np.array([1])).tolist()
        [1.0]
        """
        values = np.asarray(values, dtype=float)
        return cls(values, 0.0, lambda index: values[index])

    def __len__(self) -> int:
        return len(self.values)


# -- the grid of the stored dtype ------------------------------------------------------------------------
def _at_or_below(dtype: np.dtype, x: float) -> np.generic:
    """The largest value of ``dtype`` that is <= x."""
    v = dtype.type(x)
    return v if float(v) <= x else np.nextafter(v, dtype.type(-np.inf))


def _strictly_below(dtype: np.dtype, x: float) -> np.generic:
    """The largest value of ``dtype`` that is < x."""
    v = _at_or_below(dtype, x)
    return v if float(v) < x else np.nextafter(v, dtype.type(-np.inf))


def _at_or_above(dtype: np.dtype, x: float) -> np.generic:
    """The smallest value of ``dtype`` that is >= x."""
    v = dtype.type(x)
    return v if float(v) >= x else np.nextafter(v, dtype.type(np.inf))


def _split(values: np.ndarray, low: np.generic, high: np.generic,
           at_or_below_low: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """How many values are <= low, and the positions (ascending) of those in (low, high]: one pass, chunk by
    chunk. With ``at_or_below_low`` (a bool array as long as ``values``), also writes the mask ``values <= low``."""
    below, inside = 0, []
    # two reused buffers: fresh temporaries would fault their pages in again for every chunk
    low_buffer, between_buffer = np.empty(min(len(values), _CHUNK), dtype=bool), np.empty(min(len(values), _CHUNK), dtype=bool)
    for start in range(0, len(values), _CHUNK):
        chunk = values[start: start + _CHUNK]
        size = len(chunk)
        low_mask = low_buffer[:size] if at_or_below_low is None else at_or_below_low[start: start + size]
        np.less_equal(chunk, low, out=low_mask)
        below += int(np.count_nonzero(low_mask))
        between = np.less_equal(chunk, high, out=between_buffer[:size])
        between ^= low_mask  # low < high: values <= low are also <= high
        inside.append(np.flatnonzero(between) + start)
    return below, np.concatenate(inside) if inside else np.zeros(0, dtype=np.intp)


# -- order statistics, quantiles, extremes --------------------------------------------------------------
def order_statistics(scores: BoundedScores, ranks: list[int]) -> np.ndarray:
    """The exact float64 scores of the given ranks (0 = smallest) in sorted order.

    >>> exact = np.array([0.3, 0.1, 0.2, 0.1])
    >>> order_statistics(BoundedScores.from_exact(exact), [0, 3]).tolist()
    [0.1, 0.3]
    """
    n = len(scores)
    r_lo, r_hi = min(ranks), max(ranks)
    if not 0 <= r_lo <= r_hi < n:
        raise ValueError(f"ranks: must be within 0..{n - 1}, got {ranks}")
    if n <= _SMALL:
        return np.partition(scores.exact(np.arange(n)), ranks)[ranks]
    values, margin = scores.values, 2.0 * scores.error
    low, high = _sample_bracket(values, r_lo, r_hi, margin)
    while True:
        below, inside = _split(values, _strictly_below(values.dtype, low), _at_or_above(values.dtype, high))
        if below > r_lo:        # the bracket missed the rank (a rare sample): move that side out
            low = -np.inf if not np.isfinite(low) else low - 2 * (high - low) - margin - abs(low)
            continue
        if below + len(inside) <= r_hi:
            high = np.inf if not np.isfinite(high) else high + 2 * (high - low) + margin + abs(high)
            continue
        band = values[inside].astype(float)
        approx = np.partition(band, [r_lo - below, r_hi - below])
        first, last = float(approx[r_lo - below]), float(approx[r_hi - below])
        if low <= first - margin and high >= last + margin:
            break
        # the float64 order statistics may lie outside the bracket: bracket the float32 ones by the error
        low, high = min(low, first - margin), max(high, last + margin)
    near = (band >= first - margin) & (band <= last + margin)
    below += int(np.count_nonzero(band < first - margin))
    exact = scores.exact(inside[near])
    wanted = [r - below for r in ranks]
    return np.partition(exact, wanted)[wanted]


def _sample_bracket(values: np.ndarray, r_lo: int, r_hi: int, margin: float) -> tuple[float, float]:
    """Scores that bracket ranks r_lo..r_hi with near certainty (7 binomial SDs), from a random sample."""
    n = len(values)
    m = min(_SAMPLE, n // 64)
    # one position at random in each of m equal strata: a uniform sample, already sorted (fast to read)
    rng = np.random.default_rng(_SAMPLE_SEED)
    sample = values[np.arange(m) * (n // m) + rng.integers(0, n // m, m)].astype(float)
    spread = lambda r: 7.0 * math.sqrt(m * (r / n) * (1 - r / n)) + 8
    k_lo = math.floor(r_lo / n * m - spread(r_lo))
    k_hi = math.ceil((r_hi + 1) / n * m + spread(r_hi))
    picks = [k for k in (k_lo, k_hi) if 0 <= k < m]
    sorted_at = dict(zip(picks, np.partition(sample, picks)[picks])) if picks else {}
    low = sorted_at[k_lo] - margin if k_lo >= 0 else -np.inf
    high = sorted_at[k_hi] + margin if k_hi < m else np.inf
    return float(low), float(high)


def quantile(scores: BoundedScores, q: float) -> float:
    """``np.quantile`` of the float64 scores (method "linear", R's type 7), bit for bit.

    >>> exact = np.array([4.0, 1.0, 3.0, 2.0])
    >>> quantile(BoundedScores.from_exact(exact), 0.5), float(np.quantile(exact, 0.5))
    (2.5, 2.5)
    """
    n = len(scores)
    virtual = (n - 1) * q
    if virtual >= n - 1:
        return float(order_statistics(scores, [n - 1])[0])
    previous = math.floor(virtual)
    gamma = virtual - previous
    a, b = (np.float64(v) for v in order_statistics(scores, [previous, previous + 1]))
    # numpy's _lerp: from the nearer end, so that gamma = 1 gives b exactly
    diff = b - a
    return float(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)


def max_abs_bound(scores: BoundedScores) -> float:
    """An upper bound on ``max(|score|)`` from the stored scores alone (two reductions, no float64 scores).

    >>> max_abs_bound(BoundedScores.from_exact(np.array([-3.0, 2.0])))
    3.0
    """
    values = scores.values
    return max(abs(float(values.max())), abs(float(values.min()))) + scores.error


def max_abs(scores: BoundedScores) -> float:
    """``max(|score|)`` over the float64 scores.

    >>> max_abs(BoundedScores.from_exact(np.array([-3.0, 2.0])))
    3.0
    """
    values, margin = scores.values, 2.0 * scores.error
    top, bottom = float(values.max()), float(values.min())
    _, near_top = _split(values, _strictly_below(values.dtype, top - margin), values.dtype.type(np.inf))
    out = float(np.max(np.abs(scores.exact(near_top))))
    if bottom - margin < 0:  # a float64 score may be negative (rounding of a zero l2 score)
        _, near_bottom = _split(values, values.dtype.type(-np.inf), _at_or_above(values.dtype, bottom + margin))
        out = max(out, float(np.max(np.abs(scores.exact(near_bottom)))))
    return out


# -- kept sets ---------------------------------------------------------------------------------------------
def at_or_below(scores: BoundedScores, threshold: float) -> np.ndarray:
    """The mask ``exact score <= threshold`` over every candidate.

    >>> at_or_below(BoundedScores.from_exact(np.array([1.0, 2.0, 3.0])), 2.0).tolist()
    [True, True, False]
    """
    values, error = scores.values, scores.error
    low = _at_or_below(values.dtype, threshold - 2 * error)
    high = _at_or_above(values.dtype, threshold + 2 * error)
    if error == 0:
        return values <= low
    mask = np.empty(len(values), dtype=bool)
    _, band = _split(values, low, high, mask)
    mask[band] = scores.exact(band) <= threshold
    return mask


def best(scores: BoundedScores, n_best: int) -> tuple[np.ndarray, float]:
    """The ``n_best`` lowest float64 scores (ties at the last one broken by position) and that last score.

    >>> mask, last = best(BoundedScores.from_exact(np.array([3.0, 1.0, 2.0, 1.0])), 2)
    >>> mask.tolist(), last
    ([False, True, False, True], 1.0)
    """
    values, error = scores.values, scores.error
    last = float(order_statistics(scores, [n_best - 1])[0])
    low = _strictly_below(values.dtype, last - 2 * error)
    high = _at_or_above(values.dtype, last + 2 * error)
    mask = np.empty(len(values), dtype=bool)
    below, band = _split(values, low, high, mask)
    exact = scores.exact(band)
    mask[band[exact < last]] = True
    ties = band[exact == last]
    mask[ties[: n_best - below - int(np.count_nonzero(exact < last))]] = True
    return mask, last
