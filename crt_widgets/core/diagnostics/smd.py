"""How balanced the constrained space is, covariate by covariate, before any scheme is drawn.

:func:`smd_distribution` computes each covariate's absolute standardized mean difference (SMD) in every
scheme of the space, vectorised over blocks of schemes, and summarises its distribution (median and 95th
percentile). It describes the space, never the scheme a draw will pick: an interactive app can show it
while the user tunes the design and keep the allocation concealed until the draw (a sealed envelope).

The SMDs are those of :func:`~crt_widgets.core.diagnostics.tables.baseline_table`: a continuous
covariate's (mean1 - mean0) / sqrt((var1 + var0) / 2), Yang and Dalton's (2012) multi-level SMD for a
categorical one, and with more than two arms the largest over pairs of arms.

>>> from crt_widgets import ConstrainedDesign
>>> from crt_widgets.datasets import load_dickinson
>>> design = ConstrainedDesign(load_dickinson(), ["inciis", "location"], 8, categorical=["location"],
...                            cluster_id="county", seed=1)
>>> smd_distribution(design).round(3)
                      median |SMD|  95th percentile |SMD|
inciis (mean (sd))           0.099                  0.166
location = Urban (%)         0.000                  0.000
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crt_widgets.core.covariates import categorical_levels
from crt_widgets.core.progress import as_progress

CHUNK_ROWS = 1 << 16  # schemes per block: a block's (rows, clusters) matrices stay a few MB


def smd_distribution(design, quantiles: Sequence[float] = (0.5, 0.95), chunk_rows: int = CHUNK_ROWS,
                     on_progress=None, stop=None) -> pd.DataFrame:
    """Quantiles of each covariate's |SMD| over the kept schemes of ``design`` (a two-arm or a multi-arm
    design: anything with ``data``, ``covariates``, ``categorical`` and ``space``).

    Rows are named as in the baseline table; columns ``median |SMD|`` and ``95th percentile |SMD|``
    (numpy's default quantile, R's type 7). ``attrs["n_schemes"]`` is the number of schemes summarised.
    Memory: 8 bytes per scheme and covariate for the SMDs, plus one block of ``chunk_rows`` schemes.
    ``on_progress(done, total)`` is called after each block and ``stop()`` checked before each
    (:class:`~crt_widgets.core.progress.Cancelled`), as in :func:`scheme_smds`.
    """
    quantiles = [float(q) for q in quantiles]
    if not quantiles or any(not 0 <= q <= 1 for q in quantiles):
        raise ValueError(f"quantiles: expected numbers between 0 and 1, got {quantiles}")
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows: expected a positive number of schemes, got {chunk_rows}")
    values = scheme_smds(design.data, design.covariates, design.categorical, design.space,
                         chunk_rows=int(chunk_rows), on_progress=on_progress, stop=stop)
    names = {0.5: "median |SMD|"}
    columns = [names.get(q, f"{100 * q:g}th percentile |SMD|") for q in quantiles]
    table = pd.DataFrame(np.quantile(values.to_numpy(), quantiles, axis=0).T if len(values) else np.nan,
                         index=values.columns, columns=columns)
    table.attrs["n_schemes"] = len(values)
    return table


def scheme_smds(data: pd.DataFrame, covariates: Sequence[str], categorical: Sequence[str], space,
                n_arms: int | None = None, chunk_rows: int = CHUNK_ROWS, on_progress=None, stop=None) -> pd.DataFrame:
    """Every scheme's |SMD| of every covariate: an (S, covariates) frame, one row per scheme of ``space``
    (a design's ``RandomizationSpace``, a two-arm ``SchemeSet``, or an (S, n) array of arm indices
    0..n_arms-1; ``n_arms`` defaults to the space's own count, 2 for a ``SchemeSet``).
    ``on_progress(done, total)`` after each block of schemes, ``stop()`` before each
    (:class:`~crt_widgets.core.progress.Cancelled`).

    >>> import numpy as np
    >>> data = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    >>> scheme_smds(data, ["x"], [], np.array([[1, 1, 0, 0], [1, 0, 1, 0]])).round(4)["x (mean (sd))"].tolist()
    [2.8284, 0.7071]
    """
    columns, blocks = [], []
    for name in covariates:
        if name in categorical:
            levels = categorical_levels(data[name])
            onehot = (data[name].to_numpy()[:, None] == np.asarray(levels, dtype=object)[None, :]).astype(float)
            columns.append(f"{name} = {levels[1]} (%)" if len(levels) == 2 else f"{name} (%)")
            blocks.append(("categorical", onehot))
        else:
            x = data[name].to_numpy(dtype=float)
            columns.append(f"{name} (mean (sd))")
            blocks.append(("continuous", x - x.mean()))  # centred: the sums of squares below lose nothing
    if n_arms is None:
        n_arms = int(getattr(space, "n_arms", 0) or (2 if hasattr(space, "n_clusters") else np.max(space) + 1))
    continuous = [k for k, (kind, _) in enumerate(blocks) if kind == "continuous"]
    centred = np.column_stack([blocks[k][1] for k in continuous]) if continuous else None
    progress = as_progress(on_progress, stop)
    total, done = len(space), 0
    out = [np.empty((0, len(columns)))]
    for codes in _arm_blocks(space, chunk_rows):
        progress.check()
        groups = [(codes == a).astype(float) for a in range(n_arms)]
        sizes = [g.sum(axis=1) for g in groups]
        smd = np.empty((len(codes), len(columns)))
        arm_pairs = [(i, j) for i in range(n_arms) for j in range(i + 1, n_arms)]
        if continuous:  # every continuous covariate at once: one matrix product per arm, not one per covariate
            pairs = [np.abs(_continuous_smd(groups, sizes, centred, i, j)) for i, j in arm_pairs]
            smd[:, continuous] = np.max(np.stack(pairs), axis=0)
        for k, (kind, x) in enumerate(blocks):
            if kind == "categorical":
                pairs = [_categorical_smd(groups, sizes, x, i, j) for i, j in arm_pairs]
                smd[:, k] = np.max(np.abs(np.column_stack(pairs)), axis=1)
        out.append(smd)
        done += len(codes)
        if progress.on_progress is not None:
            progress.on_progress(done, total)
    return pd.DataFrame(np.vstack(out), columns=columns)


def _arm_blocks(space, rows: int):
    """The space's schemes as (rows, n) arm-index blocks (two arms: 1 treated, 0 control)."""
    if hasattr(space, "arm_matrix"):  # a RandomizationSpace
        for _, block in space.chunks(rows):
            yield block
        return
    if hasattr(space, "chunks"):  # a SchemeSet
        for _, block in space.chunks(rows, dtype=np.uint8):
            yield block
        return
    space = np.asarray(space)
    for start in range(0, len(space), rows):
        yield space[start:start + rows]


def _moments(group: np.ndarray, size: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance (n - 1 denominator, 0 for a single cluster) of ``x`` (a column, or one per covariate)
    in each scheme's arm."""
    total, squares = group @ x, group @ (x * x)
    if total.ndim == 2:
        size = size[:, None]
    mean = np.divide(total, size, out=np.zeros_like(total), where=size > 0)
    var = np.divide(squares - size * mean * mean, size - 1, out=np.zeros_like(total), where=size > 1)
    return mean, np.maximum(var, 0.0)


def _continuous_smd(groups, sizes, x, i, j) -> np.ndarray:
    (m1, v1), (m0, v0) = _moments(groups[i], sizes[i], x), _moments(groups[j], sizes[j], x)
    pooled = np.sqrt((v1 + v0) / 2)
    diff = m1 - m0
    with np.errstate(divide="ignore", invalid="ignore"):
        # both arms constant: 0 when the means agree, infinite otherwise (as the baseline table says)
        return np.where(pooled > 0, diff / np.where(pooled > 0, pooled, 1.0),
                        np.where(np.isclose(diff, 0.0, atol=1e-12), 0.0, np.inf))


def _categorical_smd(groups, sizes, onehot, i, j) -> np.ndarray:
    p1 = np.divide(groups[i] @ onehot, sizes[i][:, None], out=np.zeros((len(sizes[i]), onehot.shape[1])),
                   where=sizes[i][:, None] > 0)
    p0 = np.divide(groups[j] @ onehot, sizes[j][:, None], out=np.zeros((len(sizes[j]), onehot.shape[1])),
                   where=sizes[j][:, None] > 0)
    diff = (p1 - p0)[:, 1:]  # the reference level dropped (Yang and Dalton 2012)
    q1, q0 = p1[:, 1:], p0[:, 1:]
    cov = (_diag(q1) - q1[:, :, None] * q1[:, None, :] + _diag(q0) - q0[:, :, None] * q0[:, None, :]) / 2
    # cov is symmetric: its pseudo-inverse from an eigendecomposition, several times faster than an SVD
    quad = np.einsum("si,sij,sj->s", diff, np.linalg.pinv(cov, hermitian=True), diff)
    return np.where(np.any(diff != 0, axis=1), np.sqrt(np.maximum(quad, 0.0)), 0.0)


def _diag(p: np.ndarray) -> np.ndarray:
    out = np.zeros(p.shape + (p.shape[1],))
    idx = np.arange(p.shape[1])
    out[:, idx, idx] = p
    return out
