"""Candidate schemes of a two-arm design and their balance scores.

Two kinds, one interface (``len``, ``scores``, ``satisfies``, ``schemes``):

* :class:`SchemeCandidates` holds explicit schemes (a random sample, or a stratified enumeration)
  and caches the per-scheme sums of the standardised covariates, so that a change of weights or
  metric costs one pass over an (S, K) array.
* :class:`EnumeratedCandidates` stands for *every* scheme with ``n_treat`` of ``n`` clusters
  without storing them. A scheme's covariate sum is the sum of a subset of the first half of the
  clusters plus one of the second half; the l2 score of a block of such pairs is therefore
  ``|a|^2 + |b|^2 + 2 a W b'``, one matrix product. That is how all 155,117,520 schemes of 30
  clusters are scored in seconds. Scheme ``i`` of the enumeration is found again by arithmetic.

Balance scores follow cvcrand's scale: the sum over treated clusters of each standardised
covariate ``s_k``, then ``sum_k d_k s_k^2`` (l2) or ``sum_k d_k |s_k|`` (l1) with the user weights
``d_k``. This is formula (3)/(4) of the cvcrand paper up to a constant factor; cvcrand's own code
multiplies the covariates by ``d_k`` before squaring, so its l2 uses ``d_k^2`` — we follow the paper.

>>> import itertools
>>> z = np.array([[1.0, 0.0], [-1.0, 2.0], [0.5, -1.0], [-0.5, -1.0]])
>>> every = EnumeratedCandidates(2, z, z).scores(np.ones(2), "l2")
>>> by_hand = [float((z[list(t)].sum(axis=0) ** 2).sum()) for t in itertools.combinations(range(4), 2)]
>>> sorted(every.round(6).tolist()) == sorted(np.round(by_hand, 6).tolist())
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from crt_widgets.core.randomization.bounded_scores import BoundedScores
from crt_widgets.core.randomization.constraints import Constraint, constraint_mask
from crt_widgets.core.spaces.schemes import SchemeSet, combinations_matrix

METRICS = ("l2", "l1")
# block of the enumeration scored at once (rows x cols of a matrix product), to bound memory
_BLOCK_ELEMENTS = 1 << 24


def scores_from_sums(sums: np.ndarray, weights: np.ndarray, metric: str) -> np.ndarray:
    """Balance scores from per-scheme sums of standardised covariates (S, K)."""
    if metric == "l2":
        return np.einsum("ij,ij,j->i", sums, sums, weights)
    return np.abs(sums) @ weights


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric: must be 'l2' or 'l1', got {metric!r}")
    return metric


@dataclass(eq=False)
class SchemeCandidates:
    """Explicit candidate schemes with cached covariate sums."""

    schemes: SchemeSet
    standardized: np.ndarray
    raw: np.ndarray
    enumerated: bool
    n_drawn: int = 0            # schemes drawn before removing duplicates (0 when enumerated)

    def __len__(self) -> int:
        return len(self.schemes)

    @property
    def n_duplicates(self) -> int:
        return self.n_drawn - len(self.schemes) if self.n_drawn else 0

    @cached_property
    def standardized_sums(self) -> np.ndarray:
        return self.schemes.treated_sums(self.standardized)

    @cached_property
    def raw_sums(self) -> np.ndarray:
        return self.schemes.treated_sums(self.raw)

    def scores(self, weights: np.ndarray, metric: str) -> np.ndarray:
        return scores_from_sums(self.standardized_sums, weights, metric)

    def satisfies(self, constraints: list[Constraint], n_treat: int) -> np.ndarray:
        return constraint_mask(self.raw_sums, self.raw.sum(axis=0), constraints, n_treat, len(self.raw))

    def schemes_at(self, index: np.ndarray) -> SchemeSet:
        return self.schemes.take(index)


    def bounded_scores(self, weights: np.ndarray, metric: str, stored: bool = True) -> BoundedScores:
        """The scores, already exact (float64) and held."""
        return BoundedScores.from_exact(self.scores(weights, metric))


@dataclass(eq=False)
class _Half:
    """Subsets of one half of the clusters, grouped by how many they treat."""

    columns: np.ndarray
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # k -> (C, len(columns)) bool
    words: dict[int, np.ndarray] = field(default_factory=dict)  # k -> (C,) uint64 scheme bits

    def subsets(self, k: int) -> np.ndarray:
        if k not in self.masks:
            self.masks[k] = combinations_matrix(len(self.columns), k)
        return self.masks[k]

    def bits(self, k: int) -> np.ndarray:
        """Each subset as the bits of its clusters (cluster j is bit j), to OR with the other half's."""
        if k not in self.words:
            powers = np.left_shift(np.uint64(1), self.columns.astype(np.uint64))
            self.words[k] = np.bitwise_or.reduce(np.where(self.subsets(k), powers, np.uint64(0)), axis=1)
        return self.words[k]


# float32 relative rounding unit; the error bound of a float32 score is a multiple of it
_FLOAT32_UNIT = 2.0 ** -24
# scores per chunk of a pass (4 MB of float32: cache-sized, and no new memory touched)
_CHUNK_ELEMENTS = 1 << 20
# OpenBLAS's single-thread limit for a matrix product (m * n * k, its GEMM_MULTITHREAD_THRESHOLD of 4 x 65536)
_SINGLE_THREAD_PRODUCT = 1 << 18
# float32 scores are used only between these magnitudes (no overflow, no loss to subnormals)
_FLOAT32_RANGE = (1e-30, 1e30)


@dataclass(eq=False)
class EnumeratedCandidates:
    """Every scheme with ``n_treat`` of ``n`` clusters treated, scored block by block, never stored."""

    n_treat: int
    standardized: np.ndarray
    raw: np.ndarray
    enumerated: bool = True
    n_duplicates: int = 0

    def __post_init__(self) -> None:
        n = self.standardized.shape[0]
        h = n // 2
        self._low = _Half(np.arange(h))
        self._high = _Half(np.arange(h, n))
        self.blocks = [k for k in range(max(0, self.n_treat - (n - h)), min(h, self.n_treat) + 1)]
        sizes = [math.comb(h, k) * math.comb(n - h, self.n_treat - k) for k in self.blocks]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._half_sums: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def n_clusters(self) -> int:
        return self.standardized.shape[0]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _pairs(self, k: int):
        return self._low.subsets(k), self._high.subsets(self.n_treat - k)

    def _sums(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Standardised covariate sums of block b's subsets of the first half (rows of scheme i) and
        of the second half (columns): scheme (i, j) of the block sums to ``a[i] + c[j]``."""
        if b not in self._half_sums:
            low, high = self._pairs(self.blocks[b])
            self._half_sums[b] = (low @ self.standardized[self._low.columns],
                                  high @ self.standardized[self._high.columns])
        return self._half_sums[b]

    def _row_blocks(self, n_low: int, n_high: int, width: int = 1):
        step = max(1, _BLOCK_ELEMENTS // max(1, n_high * width))
        for start in range(0, n_low, step):
            yield slice(start, min(n_low, start + step))

    def scores(self, weights: np.ndarray, metric: str) -> np.ndarray:
        """float64 scores of every scheme (8 bytes each; :meth:`bounded_scores` holds them in 4)."""
        out = np.empty(len(self))
        z_low, z_high = self.standardized[self._low.columns], self.standardized[self._high.columns]
        for b, k in enumerate(self.blocks):
            low, high = self._pairs(k)
            a = low @ z_low                 # (C_low, K) sums over treated clusters of the first half
            c = high @ z_high               # (C_high, K) ... of the second half
            block = out[self.offsets[b]: self.offsets[b + 1]].reshape(len(a), len(c))
            if metric == "l2":
                c_norm = np.einsum("ij,ij,j->i", c, c, weights)
                for rows in self._row_blocks(len(a), len(c)):
                    ar = a[rows]
                    np.matmul(2.0 * ar * weights, c.T, out=block[rows])
                    block[rows] += np.einsum("ij,ij,j->i", ar, ar, weights)[:, None]
                    block[rows] += c_norm[None, :]
            else:
                for rows in self._row_blocks(len(a), len(c)):
                    acc = block[rows]
                    acc[:] = 0.0
                    for j in np.flatnonzero(weights):
                        acc += weights[j] * np.abs(a[rows, j][:, None] + c[None, :, j])
        return out

    def bounded_scores(self, weights: np.ndarray, metric: str, stored: bool = False) -> BoundedScores:
        """Every scheme's score in float32, within a proven bound of its float64 score (which
        :meth:`exact_scores` gives for any scheme): what an exact cutoff needs.

        By default the scores are a stream, computed again chunk by chunk for each pass over them (a few
        MB at a time: memory that is touched costs time too, on a virtual machine most of all);
        ``stored=True`` holds them in one float32 array (4 bytes a scheme), for a histogram.

        The bound is the textbook one for a float32 dot product (Higham 2002, section 3.1): each of
        the ``K + 2`` products of an l2 score (``2 a w . c + |a|^2 + |c|^2`` as one dot product) or of
        the ``K`` terms of an l1 score carries a relative error of a few float32 units, accumulated
        over the terms, relative to the sum of their absolute values; doubled for safety.
        """
        weights = np.asarray(weights, dtype=float)
        k_terms = self.standardized.shape[1]
        largest = max(self._largest_terms(b, weights, metric) for b in range(len(self.blocks)))
        if not _FLOAT32_RANGE[0] < largest < _FLOAT32_RANGE[1]:  # float32 would over- or underflow
            return BoundedScores.from_exact(self.scores(weights, metric))
        error = 2.0 * (k_terms + 10) * _FLOAT32_UNIT * largest
        exact = lambda index: self.exact_scores(index, weights, metric)
        if stored:
            out = np.empty(len(self), dtype=np.float32)
            for _ in self._float32_chunks(weights, metric, out):
                pass
            return BoundedScores.from_array(out, error, exact)
        return BoundedScores(len(self), np.dtype(np.float32), error, lambda: self._float32_chunks(weights, metric),
                             exact, magnitude=largest + error)

    def _float32_chunks(self, weights: np.ndarray, metric: str, out: np.ndarray | None = None):
        """Yield (start, float32 scores) a few rows of a block at a time, in enumeration order: views of
        ``out`` when given, else of one reused buffer (valid until the next chunk)."""
        k_terms = self.standardized.shape[1]
        buffer = None
        for b in range(len(self.blocks)):
            a, c = self._sums(b)
            rows_per_chunk = max(1, _CHUNK_ELEMENTS // len(c))
            if out is None and (buffer is None or len(buffer) < rows_per_chunk * len(c)):
                buffer = np.empty(rows_per_chunk * len(c), dtype=np.float32)
            if metric == "l2":
                # [2 a w, |a|^2, 1] . [c, 1, |c|^2]: the whole score as one float32 product
                left = np.empty((len(a), k_terms + 2), dtype=np.float32)
                left[:, :k_terms] = 2.0 * a * weights
                left[:, k_terms] = np.einsum("ij,ij,j->i", a, a, weights)
                left[:, k_terms + 1] = 1.0
                right = np.empty((k_terms + 2, len(c)), dtype=np.float32)
                right[:k_terms] = c.T
                right[k_terms] = 1.0
                right[k_terms + 1] = np.einsum("ij,ij,j->i", c, c, weights)
                # a few rows per product: OpenBLAS runs products under 2^18 multiply-adds on one thread,
                # and these thin, memory-bound ones gain nothing from threads, which on a shared machine
                # wait for a core (measured under load: 24 clusters 0.6 s -> 0.02 s, 30 clusters 2.0 -> 0.6 s)
                step = max(1, (_SINGLE_THREAD_PRODUCT - 1) // (len(c) * (k_terms + 2)))
            else:
                a32, c32, w32 = a.astype(np.float32), c.astype(np.float32), weights.astype(np.float32)
                term = np.empty(rows_per_chunk * len(c), dtype=np.float32)
            for first in range(0, len(a), rows_per_chunk):
                rows = min(rows_per_chunk, len(a) - first)
                start = int(self.offsets[b]) + first * len(c)
                chunk = (buffer[: rows * len(c)] if out is None else out[start: start + rows * len(c)])
                block = chunk.reshape(rows, len(c))
                if metric == "l2":
                    for r in range(0, rows, step):
                        np.matmul(left[first + r: first + min(r + step, rows)], right, out=block[r: r + step])
                else:
                    block[:] = 0.0
                    part = term[: rows * len(c)].reshape(rows, len(c))
                    for j in np.flatnonzero(weights):
                        np.add(a32[first: first + rows, j][:, None], c32[None, :, j], out=part)
                        np.abs(part, out=part)
                        part *= w32[j]
                        block += part
                yield start, chunk

    def _largest_terms(self, b: int, weights: np.ndarray, metric: str) -> float:
        """A bound on the sum of the absolute terms of any score of block b (what float32 errors scale with):
        ``(|a|_w + |c|_w)^2`` for l2 (Cauchy-Schwarz), ``sum_k w_k (|a_k| + |c_k|)`` for l1."""
        a, c = self._sums(b)
        if metric == "l2":
            norm = lambda s: float(np.sqrt(np.einsum("ij,ij,j->i", s, s, weights)).max())
            return (norm(a) + norm(c)) ** 2
        return float(weights @ (np.abs(a).max(axis=0) + np.abs(c).max(axis=0)))

    def _locate(self, index: np.ndarray):
        """Yield (block, positions in ``index``, row i, column j) for the schemes at ``index``."""
        if len(index) and np.all(index[1:] >= index[:-1]):  # sorted (a kept set): blocks are slices
            bounds = np.searchsorted(index, self.offsets)
            groups = ((b, slice(bounds[b], bounds[b + 1])) for b in range(len(self.blocks)))
        else:
            block_of = np.searchsorted(self.offsets, index, side="right") - 1
            groups = ((b, np.flatnonzero(block_of == b)) for b in range(len(self.blocks)))
        for b, where in groups:
            local = index[where] - self.offsets[b]
            if len(local):
                n_high = math.comb(self.n_clusters - len(self._low.columns), self.n_treat - self.blocks[b])
                if self.offsets[b + 1] - self.offsets[b] < 2**31:  # int32 division is several times faster
                    local = local.astype(np.int32)
                i = local // n_high
                yield b, where, i, local - i * n_high

    def exact_scores(self, index: np.ndarray, weights: np.ndarray, metric: str) -> np.ndarray:
        """float64 scores of the schemes at integer positions: the sums' formula, as for explicit schemes."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty(len(index))
        for b, where, i, j in self._locate(index):
            a, c = self._sums(b)
            values = np.empty(len(i))
            for start in range(0, len(i), 1 << 16):  # bounded, cache-sized (m, K) temporaries
                part = slice(start, start + (1 << 16))
                sums = a.take(i[part], axis=0)     # take: about twice as fast as fancy indexing of rows
                sums += c.take(j[part], axis=0)
                values[part] = scores_from_sums(sums, weights, metric)
            out[where] = values
        return out

    def satisfies(self, constraints: list[Constraint], n_treat: int) -> np.ndarray:
        out = np.empty(len(self), dtype=bool)
        totals = self.raw.sum(axis=0)
        x_low, x_high = self.raw[self._low.columns], self.raw[self._high.columns]
        for b, k in enumerate(self.blocks):
            low, high = self._pairs(k)
            a, c = low @ x_low, high @ x_high
            block = out[self.offsets[b]: self.offsets[b + 1]].reshape(len(a), len(c))
            for rows in self._row_blocks(len(a), len(c), a.shape[1]):
                sums = a[rows][:, None, :] + c[None, :, :]
                block[rows] = constraint_mask(sums.reshape(-1, a.shape[1]), totals, constraints,
                                              n_treat, self.n_clusters).reshape(-1, len(c))
        return out

    def schemes_at(self, index: np.ndarray) -> SchemeSet:
        """The schemes at integer positions (or a boolean mask) of the enumeration order.

        A scheme's packed bits are its first-half subset's bits OR its second half's (n <= 64 bits).
        """
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False)
        nbytes = (self.n_clusters + 7) // 8
        word = np.dtype(f"<u{next(w for w in (1, 2, 4, 8) if w >= nbytes)}")  # the smallest word that holds a scheme
        words = np.empty(len(index), dtype=word)
        for b, where, i, j in self._locate(index):
            k = self.blocks[b]
            low, high = self._low.bits(k).astype(word), self._high.bits(self.n_treat - k).astype(word)
            words[where] = low.take(i) | high.take(j)
        packed = words.view(np.uint8).reshape(-1, word.itemsize)
        return SchemeSet(packed if nbytes == word.itemsize else np.ascontiguousarray(packed[:, :nbytes]),
                         self.n_clusters)
