"""Exact cutoffs over float32 scores: the float64 quantile, tie tolerance and kept set, without a float64 array.

All 155,117,520 schemes of 30 clusters take 1.24 GB as float64 scores, and ``np.quantile`` copies them
to partition. The scores need not be held at all: they can be a stream of float32 chunks, computed again
for each pass (two passes give the cutoff and the kept set), each float32 score within a known ``error``
of its float64 score. Each decision is taken on the float32 scores wherever it is clear by more than the
error, and only the schemes inside that margin are scored again in float64 (usually a few dozen):

* an order statistic: a random sample (scored in float64) brackets its rank, one pass counts the scores
  below the bracket and keeps the positions inside it, and the float64 scores of the candidates within ``2 * error`` of
  the float32 order statistic give the exact value (an order statistic moves by at most the error);
* a quantile: numpy's default ("linear", R's type 7) interpolation between two exact order statistics;
* a kept set (``score <= threshold``): float32 scores below ``threshold - error`` are kept, those above
  ``threshold + error`` are not, and the band between is decided in float64; a first pass counts them,
  a second writes their positions into an array of that size (no mask over every scheme).

Every result is that of the float64 scores: ties at the cutoff, and the cutoff itself, come out the same.
With float64 scores and ``error = 0`` the same functions are exact by construction.

>>> import numpy as np
>>> exact = np.random.default_rng(1).random(100_000)
>>> scores = BoundedScores.from_array(exact.astype(np.float32), 1e-7, lambda index: exact[index])
>>> bool(quantile(scores, 0.1) == np.quantile(exact, 0.1))
True
>>> kept = kept_positions(scores, quantile(scores, 0.1))
>>> bool((kept == np.flatnonzero(exact <= np.quantile(exact, 0.1))).all()), len(kept)
(True, 10000)
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
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
    """Scores of ``n`` candidates, read as chunks, within ``error`` of the float64 scores ``exact`` returns.

    Attributes
    ----------
    n : number of candidates.
    dtype : dtype of the chunks (float32, or float64 with ``error = 0``).
    error : a bound on ``|score - exact score|`` for every candidate.
    chunks : a function returning an iterator of (start position, scores) covering positions 0..n-1 in order.
    exact : float64 scores at integer positions.
    values : all the scores as one array, when they are held (else None).
    magnitude : an upper bound on every ``|score|`` known without a pass over them (else None).
    """

    n: int
    dtype: np.dtype
    error: float
    chunks: Callable[[], Iterator[tuple[int, np.ndarray]]]
    exact: Callable[[np.ndarray], np.ndarray]
    values: np.ndarray | None = None
    magnitude: float | None = None

    @classmethod
    def from_array(cls, values: np.ndarray, error: float, exact: Callable[[np.ndarray], np.ndarray]) -> "BoundedScores":
        """Scores held in an array, read in chunks of a few MB.

        >>> s = BoundedScores.from_array(np.arange(3.0), 0.0, lambda index: np.arange(3.0)[index])
        >>> [(start, chunk.tolist()) for start, chunk in s.chunks()]
        [(0, [0.0, 1.0, 2.0])]
        """
        chunks = lambda: ((start, values[start: start + _CHUNK]) for start in range(0, len(values), _CHUNK))
        return cls(len(values), values.dtype, float(error), chunks, exact, values)

    @classmethod
    def from_exact(cls, values: np.ndarray) -> "BoundedScores":
        """Scores that are already the float64 ones.

        >>> BoundedScores.from_exact(np.array([2.0, 1.0])).exact(np.array([1])).tolist()
        [1.0]
        """
        values = np.asarray(values, dtype=float)
        return cls.from_array(values, 0.0, lambda index: values[index])

    def __len__(self) -> int:
        return self.n


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


def _split(scores: BoundedScores, low: np.generic, high: np.generic,
           at_or_below_low: np.ndarray | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """How many scores are <= low, and the positions (ascending) and scores of those in (low, high]: one
    pass, chunk by chunk. With ``at_or_below_low`` (a bool array of ``n``), also writes ``score <= low``."""
    below, inside, inside_scores = 0, [], []
    # reused buffers: fresh temporaries would fault their pages in again for every chunk
    low_buffer, between_buffer = np.empty(_CHUNK, dtype=bool), np.empty(_CHUNK, dtype=bool)
    for start, chunk in scores.chunks():
        size = len(chunk)
        if size > _CHUNK:
            low_buffer, between_buffer = np.empty(size, dtype=bool), np.empty(size, dtype=bool)
        low_mask = low_buffer[:size] if at_or_below_low is None else at_or_below_low[start: start + size]
        np.less_equal(chunk, low, out=low_mask)
        below += int(np.count_nonzero(low_mask))
        between = np.less_equal(chunk, high, out=between_buffer[:size])
        between ^= low_mask  # low < high: scores <= low are also <= high
        where = np.flatnonzero(between)
        inside.append(where + start)
        inside_scores.append(chunk[where].astype(float))
    if not inside:
        return below, np.zeros(0, dtype=np.intp), np.zeros(0)
    return below, np.concatenate(inside), np.concatenate(inside_scores)


def _extremes(scores: BoundedScores) -> tuple[float, float]:
    """The largest and smallest stored score (one pass)."""
    if scores.values is not None:
        return float(scores.values.max()), float(scores.values.min())
    top, bottom = -np.inf, np.inf
    for _, chunk in scores.chunks():
        top, bottom = max(top, float(chunk.max())), min(bottom, float(chunk.min()))
    return top, bottom


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
    dtype, margin = scores.dtype, 2.0 * scores.error
    low, high = _sample_bracket(scores, r_lo, r_hi, margin)
    while True:
        below, inside, band = _split(scores, _strictly_below(dtype, low), _at_or_above(dtype, high))
        if below > r_lo:        # the bracket missed the rank (a rare sample): move that side out
            low = -np.inf if not np.isfinite(low) else low - 2 * (high - low) - margin - abs(low)
            continue
        if below + len(inside) <= r_hi:
            high = np.inf if not np.isfinite(high) else high + 2 * (high - low) + margin + abs(high)
            continue
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


def _sample_bracket(scores: BoundedScores, r_lo: int, r_hi: int, margin: float) -> tuple[float, float]:
    """Scores that bracket ranks r_lo..r_hi with near certainty (7 binomial SDs), from a random sample
    scored in float64 (within the error of the stored scores, hence the margin)."""
    n = len(scores)
    m = min(_SAMPLE, max(n // 256, 4096))
    # one position at random in each of m equal strata: a uniform sample, already sorted (fast to read)
    rng = np.random.default_rng(_SAMPLE_SEED)
    sample = scores.exact(np.arange(m) * (n // m) + rng.integers(0, n // m, m))
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
    return quantile_parts(scores, q)[0]


def quantile_parts(scores: BoundedScores, q: float) -> tuple[float, float]:
    """The quantile of :func:`quantile` and the order statistic just below it (the one it interpolates from).

    >>> quantile_parts(BoundedScores.from_exact(np.array([4.0, 1.0, 3.0, 2.0])), 0.5)
    (2.5, 2.0)
    """
    n = len(scores)
    virtual = (n - 1) * q
    if virtual >= n - 1:
        top = float(order_statistics(scores, [n - 1])[0])
        return top, top
    previous = math.floor(virtual)
    gamma = virtual - previous
    a, b = (np.float64(v) for v in order_statistics(scores, [previous, previous + 1]))
    # numpy's _lerp: from the nearer end, so that gamma = 1 gives b exactly
    diff = b - a
    return float(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma), float(a)


def max_abs_bound(scores: BoundedScores) -> float:
    """An upper bound on ``max(|score|)``: ``magnitude`` when known, else from the stored extremes.

    >>> max_abs_bound(BoundedScores.from_exact(np.array([-3.0, 2.0])))
    3.0
    """
    if scores.magnitude is not None:
        return scores.magnitude
    top, bottom = _extremes(scores)
    return max(abs(top), abs(bottom)) + scores.error


def max_abs(scores: BoundedScores) -> float:
    """``max(|score|)`` over the float64 scores.

    >>> max_abs(BoundedScores.from_exact(np.array([-3.0, 2.0])))
    3.0
    """
    dtype, margin = scores.dtype, 2.0 * scores.error
    top, bottom = _extremes(scores)
    _, near_top, _ = _split(scores, _strictly_below(dtype, top - margin), dtype.type(np.inf))
    out = float(np.max(np.abs(scores.exact(near_top))))
    if bottom - margin < 0:  # a float64 score may be negative (rounding of a zero l2 score)
        _, near_bottom, _ = _split(scores, dtype.type(-np.inf), _at_or_above(dtype, bottom + margin))
        out = max(out, float(np.max(np.abs(scores.exact(near_bottom)))))
    return out


# -- kept sets ---------------------------------------------------------------------------------------------
def _positions(scores: BoundedScores, low: np.generic, extra: np.ndarray, count: int) -> np.ndarray:
    """Positions (ascending) of the scores <= low together with ``extra`` (ascending positions of scores
    above low): ``count`` in all, written in one pass into an array of exactly that size."""
    out = np.empty(count, dtype=np.int64)
    at, taken, buffer = 0, 0, np.empty(_CHUNK, dtype=bool)
    for start, chunk in scores.chunks():
        size = len(chunk)
        if size > len(buffer):
            buffer = np.empty(size, dtype=bool)
        mask = np.less_equal(chunk, low, out=buffer[:size])
        stop = int(np.searchsorted(extra, start + size))
        mask[extra[taken:stop] - start] = True
        taken = stop
        where = np.flatnonzero(mask)
        np.add(where, start, out=out[at: at + len(where)])
        at += len(where)
    return out


def kept_positions(scores: BoundedScores, threshold: float) -> np.ndarray:
    """Positions (ascending) of the candidates whose float64 score is <= threshold.

    Two passes: one counts them (and decides the band within the error in float64), the other writes
    them into an array of exactly that size (never a mask or an index over every candidate).

    >>> kept_positions(BoundedScores.from_exact(np.array([1.0, 2.0, 3.0, 0.5])), 2.0).tolist()
    [0, 1, 3]
    """
    return kept_and_largest(scores, threshold)[0]


def kept_and_largest(scores: BoundedScores, threshold: float,
                     largest_at_least: float | None = None) -> tuple[np.ndarray, float]:
    """:func:`kept_positions` and the largest float64 score kept. ``largest_at_least``, a score known
    to be kept (an order statistic at or below the threshold), lets the band of float64 re-checks
    reach down to it, so that the largest kept score is among them.

    >>> kept, largest = kept_and_largest(BoundedScores.from_exact(np.array([1.0, 2.0, 3.0, 0.5])), 2.5)
    >>> kept.tolist(), largest
    ([0, 1, 3], 2.0)
    """
    if scores.error == 0 and scores.values is not None:
        kept = np.flatnonzero(scores.values <= threshold)
        return kept, float(np.max(scores.values[kept])) if len(kept) else -np.inf
    error = scores.error
    reach = threshold if largest_at_least is None else min(threshold, largest_at_least)
    low = _at_or_below(scores.dtype, reach - 2 * error)
    high = _at_or_above(scores.dtype, threshold + 2 * error)
    below, band, _ = _split(scores, low, high)
    exact = scores.exact(band)
    inside = exact <= threshold
    positions = _positions(scores, low, band[inside], below + int(np.count_nonzero(inside)))
    if not len(positions):
        return positions, -np.inf
    if largest_at_least is None:  # the largest kept score is the order statistic of the count kept
        return positions, float(order_statistics(scores, [len(positions) - 1])[0])
    return positions, float(np.max(exact[inside]))


def best_positions(scores: BoundedScores, n_best: int) -> tuple[np.ndarray, float]:
    """Positions (ascending) of the ``n_best`` lowest float64 scores, ties at the last one broken by
    position, and that last score.

    >>> kept, last = best_positions(BoundedScores.from_exact(np.array([3.0, 1.0, 2.0, 1.0])), 2)
    >>> kept.tolist(), last
    ([1, 3], 1.0)
    """
    last = float(order_statistics(scores, [n_best - 1])[0])
    low = _strictly_below(scores.dtype, last - 2 * scores.error)
    high = _at_or_above(scores.dtype, last + 2 * scores.error)
    below, band, _ = _split(scores, low, high)
    exact = scores.exact(band)
    under = band[exact < last]
    ties = band[exact == last][: n_best - below - len(under)]
    return _positions(scores, low, np.sort(np.concatenate([under, ties])), n_best), last
