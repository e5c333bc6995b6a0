"""Randomization schemes of a two-arm design, stored as packed bits.

A scheme assigns each of ``n`` clusters to treatment (1) or control (0). A :class:`SchemeSet`
keeps many schemes as rows of packed bits (cluster ``j`` is bit ``j % 8`` of byte ``j // 8``), so a
million schemes of 30 clusters take 4 MB, never a float matrix of 0/1.

This module also generates schemes: every combination (:func:`enumerate_schemes`), a random sample
with duplicates removed (:func:`sample_schemes`), and both restricted to exact balance within strata.

>>> s = enumerate_schemes(4, 2)
>>> s.matrix().tolist()[:2]
[[1, 1, 0, 0], [1, 0, 1, 0]]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# bits[p] is the 0/1 pattern of byte value p, cluster order within the byte (little bit order)
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little")
CHUNK_ROWS = 1 << 20


@dataclass(frozen=True, eq=False)
class SchemeSet:
    """Schemes as packed bit rows.

    Attributes
    ----------
    packed : (n_schemes, ceil(n_clusters / 8)) uint8 array.
    n_clusters : number of clusters (columns).
    """

    packed: np.ndarray
    n_clusters: int

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> "SchemeSet":
        """From a (n_schemes, n_clusters) 0/1 matrix."""
        m = np.asarray(matrix)
        if m.ndim != 2:
            raise ValueError(f"schemes: expected a 2-d 0/1 matrix, got shape {m.shape}")
        if m.size and not np.isin(m, (0, 1)).all():
            raise ValueError("schemes: entries must be 0 or 1")
        return cls(np.packbits(m.astype(bool), axis=1, bitorder="little"), m.shape[1])

    # -- access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.packed.shape[0]

    def __repr__(self) -> str:
        return f"SchemeSet(n_schemes={len(self)}, n_clusters={self.n_clusters})"

    def matrix(self, rows: np.ndarray | slice | None = None, dtype=np.uint8) -> np.ndarray:
        """The schemes as a (rows, n_clusters) 0/1 array of ``dtype`` (all rows by default)."""
        packed = self.packed if rows is None else self.packed[rows]
        if packed.ndim == 1:
            packed = packed[None, :]
        m = np.unpackbits(packed, axis=1, count=self.n_clusters, bitorder="little")
        return m if dtype == np.uint8 else m.astype(dtype)

    def chunks(self, rows: int = CHUNK_ROWS, dtype=np.float32):
        """Yield (start, 0/1 matrix) blocks of at most ``rows`` schemes, to bound memory."""
        for start in range(0, len(self), rows):
            yield start, self.matrix(slice(start, start + rows), dtype)

    def take(self, index: np.ndarray) -> "SchemeSet":
        """The schemes at ``index`` (integer positions or a boolean mask)."""
        return SchemeSet(self.packed[index], self.n_clusters)

    def keys(self) -> np.ndarray:
        """One hashable key per scheme (uint64 when n <= 64, raw bytes otherwise), for de-duplication."""
        nbytes = self.packed.shape[1]
        if nbytes <= 8:
            padded = np.zeros((len(self), 8), dtype=np.uint8)
            padded[:, :nbytes] = self.packed
            return padded.view("<u8").ravel()
        return np.ascontiguousarray(self.packed).view(np.dtype((np.void, nbytes))).ravel()

    def treated_counts(self) -> np.ndarray:
        """Number of treated clusters in each scheme."""
        if hasattr(np, "bitwise_count"):  # numpy >= 2: a popcount per byte, several times faster
            return np.bitwise_count(self.packed).sum(axis=1, dtype=np.int64)
        return _BYTE_BITS.sum(axis=1)[self.packed].sum(axis=1)

    def treated_sums(self, x: np.ndarray, on_progress=None, stop=None) -> np.ndarray:
        """Column sums of ``x`` (n_clusters, k) over each scheme's treated clusters: (n_schemes, k).

        One table of 256 partial sums per byte turns the sum into a few gathers, a chunk of about a million
        schemes at a time (cache-sized temporaries, never one of the whole set); ``on_progress(done, total)``
        after each chunk, ``stop()`` before each (:class:`~crt_widgets.core.progress.Cancelled`).
        """
        from crt_widgets.core.progress import as_progress

        progress = as_progress(on_progress, stop)
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = x[:, None]
        nbytes = self.packed.shape[1]
        padded = np.zeros((nbytes * 8, x.shape[1]))
        padded[: self.n_clusters] = x
        tables = [_BYTE_BITS.astype(float) @ padded[8 * b: 8 * b + 8] for b in range(nbytes)]
        out = np.zeros((len(self), x.shape[1]))
        for start in range(0, len(self), CHUNK_ROWS):
            progress.check()
            rows = slice(start, start + CHUNK_ROWS)
            part, packed = out[rows], self.packed[rows]
            flat = part[:, 0] if x.shape[1] == 1 else None  # one column: 1-d gathers, the same sums faster
            for b, table in enumerate(tables):
                if flat is not None:
                    flat += table[:, 0][packed[:, b]]
                else:
                    part += table.take(packed[:, b], axis=0)
            if progress.on_progress is not None:
                progress.on_progress(min(start + CHUNK_ROWS, len(self)), len(self))
        return out

    def complement(self) -> "SchemeSet":
        """Every scheme with the arms swapped."""
        return SchemeSet.from_matrix(1 - self.matrix())


# -- generation -------------------------------------------------------------------------------------
def combinations_array(n: int, k: int) -> np.ndarray:
    """All k-subsets of range(n) as a (C(n, k), k) array, in lexicographic order (R's ``combn``).

    >>> combinations_array(4, 2).tolist()
    [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    """
    dtype = np.int16 if n < 2**15 else np.int32
    if k == 0:
        return np.zeros((1, 0), dtype=dtype)
    combos = np.arange(n - k + 1, dtype=dtype)[:, None]
    for j in range(1, k):
        last = combos[:, -1].astype(np.int64)
        counts = (n - k + j) - last  # the next element runs over last+1 .. n-k+j
        starts = np.repeat(last + 1, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        combos = np.column_stack([np.repeat(combos, counts, axis=0), (starts + offsets).astype(dtype)])
    return combos


def combinations_matrix(n: int, k: int) -> np.ndarray:
    """All k-subsets of range(n) as a (C(n, k), n) bool indicator matrix, lexicographic order.

    >>> combinations_matrix(4, 2).astype(int).tolist()[:3]
    [[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1]]
    """
    if n <= 16:
        # every subset as an integer with element j at bit n-1-j: the k-subsets in decreasing order of
        # that integer are in lexicographic order (a smaller first differing element is a higher bit)
        codes = np.arange(1 << n, dtype=np.uint32)[::-1]
        bits = (codes[:, None] >> np.arange(n - 1, -1, -1, dtype=np.uint32)) & 1
        return bits[bits.sum(axis=1) == k].astype(bool)
    combos = combinations_array(n, k)
    m = np.zeros((combos.shape[0], n), dtype=bool)
    m[np.arange(combos.shape[0])[:, None], combos] = True
    return m


def enumerate_schemes(n: int, n_treat: int) -> SchemeSet:
    """Every scheme with ``n_treat`` of ``n`` clusters treated, in ``combn`` order."""
    return SchemeSet(np.packbits(combinations_matrix(n, n_treat), axis=1, bitorder="little"), n)


def random_subsets(rng: np.random.Generator, size: int, n: int, k: np.ndarray | int) -> np.ndarray:
    """``size`` uniform random subsets of range(n) as a (size, n) bool matrix; ``k`` per row or fixed."""
    keys = rng.random((size, n))
    k = np.broadcast_to(np.asarray(k), (size,))
    if n == 0:
        return np.zeros((size, 0), dtype=bool)
    # the k smallest keys of a row: at or below its k-th smallest (one sort, no ranks; ties have
    # probability zero), none when k = 0
    kth = np.sort(keys, axis=1)[np.arange(size), np.maximum(k, 1) - 1]
    return (keys <= kth[:, None]) & (k > 0)[:, None]


def unique_schemes(schemes: SchemeSet) -> tuple[SchemeSet, int]:
    """Drop repeated schemes, keeping first occurrences in their original order; also the number dropped."""
    _, first = np.unique(schemes.keys(), return_index=True)
    first.sort()
    return schemes.take(first), len(schemes) - len(first)


def sample_schemes(n: int, n_treat: int, size: int, rng: np.random.Generator) -> tuple[SchemeSet, int]:
    """``size`` schemes drawn uniformly at random, duplicates removed; returns (schemes, n_duplicates).

    Selection sampling (Knuth's algorithm S), vectorised over draws: cluster ``j`` is treated with
    probability (clusters still needed) / (clusters left), which makes every k-subset equally likely;
    the bits go straight into the packed rows.
    """
    packed = np.zeros((size, (n + 7) // 8), dtype=np.uint8)
    needed = np.full(size, float(n_treat))
    for j in range(n):
        chosen = rng.random(size) * (n - j) < needed
        needed -= chosen
        packed[:, j // 8] |= chosen.view(np.uint8) << np.uint8(j % 8)
    return unique_schemes(SchemeSet(packed, n))


# -- exact balance within strata ----------------------------------------------------------------
@dataclass(frozen=True)
class StratumRule:
    """How many clusters each stratum sends to treatment.

    Stratum ``s`` of size ``n_s`` treats ``n_s * n_treat / n`` clusters, rounded down or up when that
    is not a whole number (the totals must still add up to ``n_treat``).
    """

    codes: np.ndarray          # stratum index of each cluster
    labels: tuple              # stratum label of each index
    sizes: np.ndarray          # clusters per stratum
    low: np.ndarray            # floor of the treated share
    high: np.ndarray           # ceil of the treated share
    n_treat: int

    @classmethod
    def build(cls, codes: np.ndarray, labels: tuple, n_treat: int) -> "StratumRule":
        sizes = np.bincount(codes, minlength=len(labels))
        share = sizes * n_treat / sizes.sum()
        low = np.floor(share + 1e-9).astype(int)
        high = np.ceil(share - 1e-9).astype(int)
        if not (low.sum() <= n_treat <= high.sum()):  # pragma: no cover - arithmetic guarantees it
            raise ValueError("stratify: no scheme balances every stratum")
        return cls(codes, labels, sizes, low, high, n_treat)

    def options(self, s: int) -> list[int]:
        return sorted({int(self.low[s]), int(self.high[s])})

    def ways_from(self) -> list[dict[int, int]]:
        """ways[s][c]: number of ways strata s.. can treat exactly c clusters (exact integers)."""
        ways: list[dict[int, int]] = [dict() for _ in range(len(self.sizes) + 1)]
        ways[-1][0] = 1
        for s in range(len(self.sizes) - 1, -1, -1):
            for c_rest, w in ways[s + 1].items():
                for t in self.options(s):
                    ways[s][c_rest + t] = ways[s].get(c_rest + t, 0) + math.comb(int(self.sizes[s]), t) * w
        return ways

    def space_size(self) -> int:
        """Number of schemes that balance every stratum."""
        return self.ways_from()[0].get(self.n_treat, 0)

    def members(self, s: int) -> np.ndarray:
        return np.flatnonzero(self.codes == s)


def _stratum_paths(rule: StratumRule) -> list[tuple[int, ...]]:
    """How many clusters each stratum treats, one tuple per way of treating ``n_treat`` in all, in the order of
    the enumeration: strata added one at a time, the counts reached so far in the order they first appear."""
    partial: dict[int, list[tuple[int, ...]]] = {0: [()]}
    for s in range(len(rule.sizes)):
        grown: dict[int, list[tuple[int, ...]]] = {}
        for done, paths in partial.items():
            for t in rule.options(s):
                grown.setdefault(done + t, []).extend(path + (t,) for path in paths)
        partial = {c: v for c, v in grown.items() if c <= rule.n_treat}
    return partial.get(rule.n_treat, [])


def enumerate_stratified(rule: StratumRule, on_progress=None, stop=None) -> SchemeSet:
    """Every scheme that treats the required number of clusters in each stratum.

    For each way of splitting ``n_treat`` among the strata, the schemes are the product of each stratum's
    subsets (the first stratum varying slowest, each stratum's subsets in ``combn`` order). They are built
    as bit words, one OR of each stratum's subset bits per scheme, a chunk of about a million schemes at a
    time, straight into the packed array (no 0/1 matrix of all schemes): ``on_progress(done, total)`` is
    called after each chunk and ``stop()`` checked before each (:class:`~crt_widgets.core.progress.Cancelled`).

    >>> rule = StratumRule.build(np.array([0, 0, 1, 1]), ("a", "b"), 2)
    >>> enumerate_stratified(rule).matrix().tolist()
    [[1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 1]]
    """
    from crt_widgets.core.progress import as_progress

    progress = as_progress(on_progress, stop)
    n = len(rule.codes)
    n_words = (n + 63) // 64
    nbytes = (n + 7) // 8
    paths = _stratum_paths(rule)
    members = [rule.members(s) for s in range(len(rule.sizes))]
    subset_words: dict[tuple[int, int], np.ndarray] = {}

    def words(s: int, t: int) -> np.ndarray:
        # each t-subset of stratum s as the bits of its clusters: (C(n_s, t), n_words) uint64
        if (s, t) not in subset_words:
            chosen = combinations_matrix(len(members[s]), t)
            full = np.zeros((len(chosen), n_words * 64), dtype=bool)
            full[:, members[s]] = chosen
            subset_words[(s, t)] = np.packbits(full, axis=1, bitorder="little").view("<u8")
        return subset_words[(s, t)]

    sizes = [[math.comb(int(rule.sizes[s]), t) for s, t in enumerate(path)] for path in paths]
    total = sum(math.prod(counts) for counts in sizes)
    packed = np.empty((total, nbytes), dtype=np.uint8)
    progress.advance(0, total)
    start = 0
    for path, counts in zip(paths, sizes):
        tables = [words(s, t) for s, t in enumerate(path)]
        # the last strata whose product fits a chunk are combined once ("tail"); the chunks run over the rest
        # (the last stratum at least, even when it alone is larger than a chunk)
        tail, split = np.zeros((1, n_words), dtype=np.uint64), len(tables)
        while split > 0 and (split == len(tables) or len(tail) * counts[split - 1] <= CHUNK_ROWS):
            split -= 1
            tail = (tables[split][:, None, :] | tail[None, :, :]).reshape(-1, n_words)
        head_counts = counts[:split]
        n_head = math.prod(head_counts)
        step = max(1, CHUNK_ROWS // len(tail))  # head indices per chunk: whole tails, about a million schemes
        for first in range(0, n_head, step):
            index = np.arange(first, min(n_head, first + step), dtype=np.int64)
            head = np.zeros((len(index), n_words), dtype=np.uint64)
            for s in range(split - 1, -1, -1):  # mixed radix, the first stratum slowest
                index, digit = np.divmod(index, head_counts[s])
                head |= tables[s][digit]
            block = (head[:, None, :] | tail[None, :, :]).reshape(-1, n_words)
            packed[start: start + len(block)] = block.view(np.uint8)[:, :nbytes]
            start += len(block)
            progress.advance(start, total)
    return SchemeSet(packed, n)


def sample_stratified(rule: StratumRule, size: int, rng: np.random.Generator) -> tuple[SchemeSet, int]:
    """``size`` schemes drawn uniformly from the stratum-balanced space, duplicates removed.

    Each draw first picks how many clusters each stratum treats (in proportion to the number of
    schemes with those counts), then which clusters, so every balanced scheme is equally likely.
    """
    ways = rule.ways_from()
    n = len(rule.codes)
    out = np.zeros((size, n), dtype=bool)
    remaining = np.full(size, rule.n_treat)
    for s in range(len(rule.sizes)):
        opts = rule.options(s)
        if len(opts) == 1:
            t = np.full(size, opts[0])
        else:
            lo, hi = opts
            w_lo = np.array([math.comb(int(rule.sizes[s]), lo) * ways[s + 1].get(int(c) - lo, 0) for c in range(rule.n_treat + 1)], dtype=float)
            w_hi = np.array([math.comb(int(rule.sizes[s]), hi) * ways[s + 1].get(int(c) - hi, 0) for c in range(rule.n_treat + 1)], dtype=float)
            p_hi = w_hi[remaining] / (w_lo[remaining] + w_hi[remaining])
            t = np.where(rng.random(size) < p_hi, hi, lo)
        cols = rule.members(s)
        out[:, cols] = random_subsets(rng, size, len(cols), t)
        remaining = remaining - t
    return unique_schemes(SchemeSet(np.packbits(out, axis=1, bitorder="little"), n))
