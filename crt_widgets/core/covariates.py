"""Covariate preparation: validation, dummy coding and standardisation of cluster-level covariates.

Categorical covariates become dummy variables with a reference level dropped, chosen exactly as
cvcrand chooses it (the first category of a pandas Categorical, otherwise the first level in sorted
order), so that balance scores match cvcrand's.

>>> import pandas as pd
>>> df = pd.DataFrame({"size": [10, 20, 30, 45, 50], "region": ["b", "a", "b", "a", "a"]})
>>> cov = prepare_covariates(df, ["size", "region"], categorical=["region"])
>>> cov.columns
('size', 'region=b')
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# cvcrand warns when a numeric covariate with this few distinct values is not declared categorical
FEW_LEVELS = 4


@dataclass(frozen=True)
class CovariateMatrix:
    """Cluster-level covariates ready for scoring.

    Attributes
    ----------
    cluster_ids : the cluster labels, in row order.
    columns : one name per column of ``raw`` (``"var=level"`` for a dummy).
    source : for each column, the covariate it came from.
    raw : (n_clusters, n_columns) float matrix on the original scale (dummies 0/1).
    standardized : ``raw`` centred and divided by its sd (n - 1 denominator).
    weights : the user weight of each column (a categorical covariate's weight applies to every dummy).
    dropped : covariates (or dummies) dropped because they do not vary.
    reference_levels : the dropped reference level of each categorical covariate.
    """

    cluster_ids: np.ndarray
    columns: tuple[str, ...]
    source: tuple[str, ...]
    raw: np.ndarray
    standardized: np.ndarray
    weights: np.ndarray
    dropped: tuple[str, ...] = ()
    reference_levels: Mapping[str, object] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return self.raw.shape[0]

    def weight_notes(self) -> list[str]:
        """A note when every weight is 0: then every scheme scores 0 and nothing is constrained."""
        if (self.weights > 0).any():
            return []
        return ["every weight is 0: all schemes score 0, so the design is simple (unconstrained) randomization"]

    def __repr__(self) -> str:
        return (f"CovariateMatrix(n_clusters={self.n_clusters}, columns={list(self.columns)}, "
                f"weights={self.weights.tolist()})")


def cluster_labels(data: pd.DataFrame, cluster_id: str | None) -> np.ndarray:
    """Cluster labels from ``cluster_id`` (validated: present, no missing values, unique) or 1..n."""
    if cluster_id is None:
        return np.arange(1, len(data) + 1)
    if cluster_id not in data.columns:
        raise ValueError(f"cluster_id: column {cluster_id!r} is not in the data "
                         f"(columns: {', '.join(map(str, data.columns))})")
    ids = data[cluster_id]
    if ids.isna().any():
        raise ValueError(f"cluster_id: column {cluster_id!r} has {int(ids.isna().sum())} missing value(s)")
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise ValueError(f"cluster_id: duplicate cluster ids in {cluster_id!r}: "
                         f"{', '.join(map(str, dup[:10]))}")
    return ids.to_numpy()


def categorical_levels(column: pd.Series) -> list:
    """Levels of a categorical covariate, reference level first (cvcrand's rule)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.dropna().unique())
        return [c for c in column.cat.categories if c in present]
    values = column.dropna().unique().tolist()
    try:
        return sorted(values)
    except TypeError:  # mixed types: sort by their text
        return sorted(values, key=str)


def _check_frame(data: pd.DataFrame, covariates: Sequence[str], categorical: Sequence[str]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if len(data) < 2:
        raise ValueError(f"data: need at least 2 clusters, got {len(data)}")
    if isinstance(covariates, str):
        raise ValueError("covariates: give a list of column names, not a single string")
    if len(covariates) == 0:
        raise ValueError("covariates: choose at least one covariate to balance")
    missing = [c for c in covariates if c not in data.columns]
    if missing:
        raise ValueError(f"covariates: column(s) not in the data: {', '.join(map(str, missing))}")
    dups = sorted({c for c in covariates if list(covariates).count(c) > 1})
    if dups:
        raise ValueError(f"covariates: listed more than once: {', '.join(dups)}")
    unknown = [c for c in categorical if c not in covariates]
    if unknown:
        raise ValueError(f"categorical: {', '.join(map(str, unknown))} not among the covariates")
    for c in covariates:
        n_missing = int(data[c].isna().sum())
        if n_missing:
            raise ValueError(f"covariate {c!r} has {n_missing} missing value(s); "
                             "impute or drop those clusters first")
        if c not in categorical:
            col = data[c]
            if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
                raise ValueError(f"covariate {c!r} is not numeric ({col.dtype}); "
                                 "declare it in categorical= or convert it to numbers")
            finite_values(col, c)


def finite_values(column: pd.Series | np.ndarray, name: str) -> np.ndarray:
    """A numeric covariate as floats, or a ValueError naming it and how many of its values are infinite.

    >>> finite_values(np.array([1, 2]), "x").tolist()
    [1.0, 2.0]
    """
    values = np.asarray(column, dtype=float)
    n_infinite = int(np.isinf(values).sum())
    if n_infinite:
        raise ValueError(f"covariate {name!r} has {n_infinite} infinite value(s); fix or drop them first")
    return values


def _user_weights(weights, covariates: Sequence[str]) -> dict[str, float]:
    if weights is None:
        return {c: 1.0 for c in covariates}
    if isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in covariates]
        if unknown:
            raise ValueError(f"weights: {', '.join(map(str, unknown))} not among the covariates")
        out = {c: float(weights.get(c, 1.0)) for c in covariates}
    else:
        w = np.asarray(weights, dtype=float).ravel()
        if w.size != len(covariates):
            raise ValueError(f"weights: got {w.size} weight(s) for {len(covariates)} covariate(s)")
        out = dict(zip(covariates, w.tolist()))
    bad = [k for k, v in out.items() if not np.isfinite(v) or v < 0]
    if bad:
        raise ValueError(f"weights: must be finite and >= 0; check {', '.join(bad)}")
    return out


def prepare_covariates(
    data: pd.DataFrame,
    covariates: Sequence[str],
    categorical: Sequence[str] = (),
    cluster_id: str | None = None,
    weights: Sequence[float] | Mapping[str, float] | None = None,
) -> CovariateMatrix:
    """Validate the cluster-level data and build the dummy-coded, standardised covariate matrix.

    Parameters
    ----------
    data : one row per cluster.
    covariates : names of the columns to balance.
    categorical : which of them are categorical (dummy-coded, reference level dropped).
    cluster_id : column holding the cluster labels (default: 1..n in row order).
    weights : user weights d_k, one per covariate (a list in the order of ``covariates`` or a
        mapping name -> weight); a categorical covariate's weight applies to each of its dummies.

    Warnings are issued (as cvcrand does) for a numeric covariate with at most 4 distinct values that
    is not declared categorical, and for covariates without variation (dropped from the score).
    """
    categorical = list(categorical or ())
    covariates = list(covariates)
    _check_frame(data, covariates, categorical)
    ids = cluster_labels(data, cluster_id)
    user_w = _user_weights(weights, covariates)

    columns: list[str] = []
    source: list[str] = []
    blocks: list[np.ndarray] = []
    col_w: list[float] = []
    reference: dict[str, object] = {}
    for name in covariates:
        col = data[name]
        if name in categorical:
            levels = categorical_levels(col)
            reference[name] = levels[0]
            for level in levels[1:]:
                columns.append(f"{name}={level}")
                source.append(name)
                blocks.append((col == level).to_numpy(dtype=float))
                col_w.append(user_w[name])
            if len(levels) < 2:
                blocks.append(np.zeros(len(col)))  # placeholder; dropped below as constant
                columns.append(f"{name}={levels[0]}")
                source.append(name)
                col_w.append(user_w[name])
        else:
            if col.nunique() <= FEW_LEVELS and col.nunique() > 1:
                warnings.warn(f"covariate {name!r} has only {col.nunique()} distinct values; "
                              "consider declaring it categorical", UserWarning, stacklevel=2)
            columns.append(name)
            source.append(name)
            blocks.append(col.to_numpy(dtype=float))
            col_w.append(user_w[name])

    raw = np.column_stack(blocks)
    with np.errstate(over="ignore", invalid="ignore"):
        sd = raw.std(axis=0, ddof=1)
    overflow = [c for c, v in zip(columns, sd) if not np.isfinite(v)]
    if overflow:
        raise ValueError(f"covariate(s) {', '.join(overflow)}: values too large to standardise; rescale them "
                         "(for example to thousands)")
    constant = ~(sd > 1e-12 * np.maximum(1.0, np.abs(raw).max(axis=0)))
    dropped = tuple(c for c, k in zip(columns, constant) if k)
    if dropped:
        warnings.warn(f"no variation in {', '.join(dropped)}: dropped from the balance score",
                      UserWarning, stacklevel=2)
    keep = ~constant
    if not keep.any():
        raise ValueError("covariates: none of the covariates varies across clusters")
    raw = raw[:, keep]
    standardized = (raw - raw.mean(axis=0)) / sd[keep]
    return CovariateMatrix(
        cluster_ids=ids,
        columns=tuple(c for c, k in zip(columns, keep) if k),
        source=tuple(s for s, k in zip(source, keep) if k),
        raw=raw,
        standardized=standardized,
        weights=np.asarray(col_w, dtype=float)[keep],
        dropped=dropped,
        reference_levels=reference,
    )
