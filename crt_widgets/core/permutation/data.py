"""The individual-level data of a permutation test, checked once and matched to the space by cluster id;
the statistic U of formula (5) for every scheme, and the p-values.

>>> import numpy as np
>>> from crt_widgets.core.spaces.schemes import enumerate_schemes
>>> u = scheme_statistics(enumerate_schemes(4, 2), np.array([1.0, 0.0, 0.0, -1.0]))
>>> u.tolist()
[1.0, 1.0, 0.0, 0.0, -1.0, -1.0]
>>> p_values(u, 1.0)["two-sided"]
0.6666666666666666
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crt_widgets.core.permutation.space import PermutationSpace
from crt_widgets.core.models.residuals import check_outcome, model_matrix
from crt_widgets.core.spaces.schemes import SchemeSet

# relative tolerance for ties between a scheme's statistic and the observed one
_TIE = 1e-9


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Outcome, design matrix and cluster index of the individuals, aligned with the space."""

    y: np.ndarray
    x: np.ndarray
    x_names: list[str]
    cluster_index: np.ndarray      # column of the space for each individual
    cluster_sizes: np.ndarray
    treated: np.ndarray            # observed arm of each individual's cluster
    family: str
    n_dropped: int

    def clusters(self, keep: np.ndarray) -> "PreparedData":
        """Only the individuals of the clusters where ``keep`` (one flag per column of the space) is set,
        clusters renumbered: what a model fits when a comparison leaves some arms out."""
        rows = keep[self.cluster_index]
        index = np.cumsum(keep)[self.cluster_index[rows]] - 1
        return PreparedData(self.y[rows], self.x[rows], self.x_names, index, self.cluster_sizes[keep],
                            self.treated[rows], self.family, self.n_dropped)


def check_columns(data: pd.DataFrame, outcome: str, cluster: str, covariates: Sequence[str],
                  categorical: Sequence[str]) -> list[str]:
    """The columns the test reads, all present (checked before the space, so a misspelt name is named first)."""
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    needed = [outcome, cluster, *covariates]
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"data: column(s) not found: {', '.join(map(str, missing))}")
    unknown = [c for c in categorical if c not in covariates]
    if unknown:
        raise ValueError(f"categorical: {', '.join(unknown)} not among the covariates")
    return needed


def prepare_data(data: pd.DataFrame, outcome: str, cluster: str, space: PermutationSpace,
                 covariates: Sequence[str], categorical: Sequence[str], family: str) -> PreparedData:
    """Validate the individual-level data and match its clusters to the space's by id."""
    needed = check_columns(data, outcome, cluster, covariates, categorical)
    complete = data[needed].notna().all(axis=1)
    frame = data.loc[complete]
    if frame.empty:
        raise ValueError("data: no rows left after dropping rows with missing values")
    y = check_outcome(frame[outcome], family, f"outcome {outcome!r}")
    x, names = model_matrix(frame, covariates, categorical)
    index = _match_clusters(frame[cluster].to_numpy(), space.cluster_ids)
    sizes = np.bincount(index, minlength=len(space.cluster_ids))
    if (sizes == 0).any():
        empty = space.cluster_ids[sizes == 0]
        raise ValueError(f"clusters with no individuals: {', '.join(map(str, empty[:10]))}")
    treated = space.observed_arm[index].astype(float)
    return PreparedData(y, x, names, index, sizes, treated, family, int((~complete).sum()))


def _match_clusters(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position in ``ids`` of each label; unmatched labels either way are an error."""
    pos = pd.Index(ids).get_indexer(labels)
    if (pos < 0).any():  # ids read from a file may be text where the data have numbers, or the reverse
        as_text = pd.Index(np.asarray(ids).astype(str)).get_indexer(np.asarray(labels).astype(str))
        if (as_text >= 0).sum() > (pos >= 0).sum():
            pos = as_text
    if (pos < 0).any():
        extra = pd.unique(labels[pos < 0])
        raise ValueError(f"cluster(s) in the data but not in the space: {', '.join(map(str, extra[:10]))}")
    absent = np.setdiff1d(np.arange(len(ids)), pos)
    if len(absent):
        raise ValueError(f"clusters with no individuals (in the space but not in the data): "
                         f"{', '.join(map(str, ids[absent][:10]))}")
    return pos


def column_names(columns: Sequence[str] | str | None, argument: str) -> list[str]:
    """Column names as a list (a single name is accepted as a string)."""
    if columns is None:
        return []
    names = [columns] if isinstance(columns, str) else list(columns)
    if len(set(names)) != len(names):
        raise ValueError(f"{argument}: a column is listed twice")
    return names


def scheme_statistics(schemes: SchemeSet, cluster_values: np.ndarray, control: SchemeSet | None = None,
                      counts: tuple[np.ndarray, np.ndarray | None] | None = None) -> np.ndarray:
    """U for every scheme: mean of ``cluster_values`` over treated minus over control clusters (the
    complement of the treated ones, or the ``control`` sets when other clusters are left out).
    ``counts``: each scheme's treated (and control) cluster counts, when already known (they do not
    change between calls; recounting them costs as much as the sums)."""
    treated_sum = schemes.treated_sums(cluster_values[:, None])[:, 0]
    n_treated, n_control = counts if counts is not None else (
        schemes.treated_counts(), None if control is None else control.treated_counts())
    if control is None:
        return treated_sum / n_treated - (cluster_values.sum() - treated_sum) / (schemes.n_clusters - n_treated)
    return treated_sum / n_treated - control.treated_sums(cluster_values[:, None])[:, 0] / n_control


def as_extreme(distribution: np.ndarray, observed: float) -> dict[str, np.ndarray]:
    """Per scheme and alternative: is its statistic at least as extreme as the observed one
    (ties within a relative 1e-9 count)."""
    tol = _TIE * max(abs(observed), float(np.max(np.abs(distribution))) * 1e-6, 1e-300)
    return {"two-sided": np.abs(distribution) >= abs(observed) - tol,
            "greater": distribution >= observed - tol,
            "less": distribution <= observed + tol}



def binned_distribution(distribution: np.ndarray, observed: float, alternative: str, bins: int = 40) -> pd.DataFrame:
    """A permutation distribution binned in numpy: per bin (``left``, ``right``) the number of schemes
    (``total``) and of those at least as extreme as ``observed`` under ``alternative`` (``extreme``; exact per
    scheme, so ``extreme.sum()`` over the number of schemes is the p-value).

    >>> h = binned_distribution(np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), 1.0, "two-sided", bins=5)
    >>> int(h.total.sum()), int(h.extreme.sum())
    (6, 4)
    """
    values = np.asarray(distribution, dtype=float)
    edges = np.histogram_bin_edges(values, bins=bins)
    extreme = as_extreme(values, observed)[alternative]
    total, _ = np.histogram(values, bins=edges)
    beyond, _ = np.histogram(values[extreme], bins=edges)
    return pd.DataFrame({"left": edges[:-1], "right": edges[1:], "total": total, "extreme": beyond})

def p_values(distribution: np.ndarray, observed: float) -> dict[str, float]:
    """Two-sided and one-sided permutation p-values: the share of schemes at least as extreme."""
    return {side: float(np.mean(mask)) for side, mask in as_extreme(distribution, observed).items()}
