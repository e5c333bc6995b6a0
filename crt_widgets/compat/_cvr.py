"""``cvrall`` and ``cvrcov`` with cvcrand's argument names, defaults and result names.

Deliberate differences from cvcrand, one sentence each:

* l2 user weights enter linearly, as in the paper's formula (3); cvcrand's code squares them.
* Ties at the cutoff are all kept (Dickinson: 1,288 schemes; cvcrand's floating point drops one
  of the two mirror-image schemes tied at the cutoff and keeps 1,287).
* ``stratify`` restricts the space to schemes balancing every stratum exactly, which the
  weight-1000 trick only approximates, and the score then uses the other covariates.
* Our random numbers come from numpy, so the same ``seed`` selects a different scheme than R.
* ``savedata`` and ``savebscores`` never replace an existing file (R's ``write.csv`` does): a space
  already saved under that name is refused with a message.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.randomization.constrained import Allocation, ConstrainedDesign
from crt_widgets.core.io.files import write_file


def _frame(x: Any, clustername: Any) -> tuple[pd.DataFrame, str | None]:
    if not isinstance(x, pd.DataFrame):
        raise ValueError(f"x: expected a pandas DataFrame of cluster-level covariates, got {type(x).__name__}")
    data = x.reset_index(drop=True).copy()
    if clustername is None:
        return data, None
    ids = np.asarray(clustername)
    if len(ids) != len(data):
        raise ValueError(f"clustername: {len(ids)} labels for {len(data)} rows of x")
    name = "clustername" if "clustername" not in data.columns else "clustername_"
    data.insert(0, name, ids)
    return data, name


def _names(x: pd.DataFrame, cols: Sequence | str | None) -> list[str]:
    if cols is None:
        return []
    cols = [cols] if isinstance(cols, (str, int)) else list(cols)
    if all(isinstance(c, (int, np.integer)) for c in cols):  # R-style 1-based column numbers
        if any(not 1 <= c <= x.shape[1] for c in cols):
            raise ValueError(f"categorical: column numbers must be between 1 and {x.shape[1]}")
        return [x.columns[c - 1] for c in cols]
    return cols


def _check_sizes(data: pd.DataFrame, ntotal_cluster: int, ntrt_cluster: int) -> None:
    if ntotal_cluster != len(data):
        raise ValueError(f"ntotal_cluster: {ntotal_cluster} does not match the {len(data)} rows of x")
    if not 0 < ntrt_cluster < ntotal_cluster:
        raise ValueError(f"ntrt_cluster: must be between 1 and {ntotal_cluster - 1}, got {ntrt_cluster}")


def _check_free(**files: str | None) -> None:
    """Refuse, before any work, a ``savedata``/``savebscores`` name that is taken (R's write.csv would replace it;
    we never replace a file the trial produced, and cvcrand's interface has no argument to allow it)."""
    for argument, name in files.items():
        if name is not None and Path(name).exists():
            raise FileExistsError(f"{argument}: {name} exists already: a file the trial produced is never "
                                  "overwritten; give another file name, or move the old file away first")


def _common(allocation: Allocation, check_validity: bool) -> dict[str, Any]:
    design = allocation.design
    data_cr = allocation.data_cr.reset_index(drop=True)
    out: dict[str, Any] = {
        "allocation": allocation.arm.copy(),
        "assignment_message": design.assignment_message,
        "scheme_message": design.scheme_message,
        "data_CR": data_cr,
        "baseline_table": allocation.baseline_table,
        "design": design,
        "allocation_object": allocation,
    }
    if check_validity:
        out["cluster_coin_des"] = design.validity.table()
        out["cluster_coincidence"] = design.validity.matrix()
    return out


def cvrall(
    clustername: Sequence | None = None,
    x: pd.DataFrame | None = None,
    categorical: Sequence | None = None,
    weights: Sequence[float] | None = None,
    ntotal_cluster: int | None = None,
    ntrt_cluster: int | None = None,
    cutoff: float = 0.1,
    numschemes: int | None = None,
    size: int = 50_000,
    stratify: Sequence[str] | str | None = None,
    seed: int | None = None,
    balancemetric: str = "l2",
    nosim: bool = False,
    savedata: str | None = None,
    savebscores: str | None = None,
    bhist: bool = False,
    check_validity: bool = False,
    samearmhi: float = 0.75,
    samearmlo: float = 0.25,
) -> dict[str, Any]:
    """Covariate-constrained randomization by a balance score, as cvcrand's ``cvrall``.

    Returns a dict with cvcrand's names: ``balancemetric``, ``allocation``, ``bscores``, the four
    messages, ``data_CR``, ``baseline_table``, and with ``check_validity=True``
    ``cluster_coin_des`` and ``cluster_coincidence``; also ``design`` (our object) and
    ``histogram`` (counts and edges) when ``bhist=True``.

    >>> from crt_widgets.datasets import load_dickinson
    >>> d = load_dickinson()
    >>> r = cvrall(clustername=d["county"], x=d[["location", "inciis", "uptodateonimmunizations",
    ...     "hispanic", "incomecat"]], ntotal_cluster=16, ntrt_cluster=8,
    ...     categorical=["location", "incomecat"], cutoff=0.1, seed=12345)
    >>> round(float(r["bscores"].loc["cutoff score", "value"]), 3)
    7.638
    """
    data, cid = _frame(x, clustername)
    covariates = [c for c in data.columns if c != cid]
    if ntotal_cluster is None or ntrt_cluster is None:
        raise ValueError("ntotal_cluster and ntrt_cluster are required")
    _check_sizes(data, ntotal_cluster, ntrt_cluster)
    _check_free(savedata=savedata, savebscores=savebscores)
    design = ConstrainedDesign(
        data, covariates, ntrt_cluster, categorical=_names(data[covariates], categorical),
        cluster_id=cid, metric=balancemetric, weights=weights,
        cutoff=None if numschemes is not None else cutoff, n_best=numschemes,
        stratify=stratify, size=size, enumerate=True if nosim else None, seed=seed,
        samearmhi=samearmhi, samearmlo=samearmlo)
    allocation = design.draw()
    out = {"balancemetric": balancemetric, **_common(allocation, check_validity),
           "bscores": allocation.summary, "cutoff_message": design.cutoff_message,
           "choice_message": allocation.choice_message}
    if bhist:
        out["histogram"] = design.histogram()
    if savedata:
        allocation.save_space(savedata, "cvcrand")
    if savebscores:
        # float64 as cvcrand writes them (a large enumeration holds float32 scores for its histogram)
        bscores = design.candidates.scores(design.column_weights, design.metric)
        write_file(savebscores, pd.DataFrame({"bscores": bscores}).to_csv(index=False))
    return out


def cvrcov(
    clustername: Sequence | None = None,
    x: pd.DataFrame | None = None,
    categorical: Sequence | None = None,
    constraints: Sequence[str] | None = None,
    ntotal_cluster: int | None = None,
    ntrt_cluster: int | None = None,
    size: int = 50_000,
    seed: int | None = None,
    nosim: bool = False,
    savedata: str | None = None,
    check_validity: bool = False,
    samearmhi: float = 0.75,
    samearmlo: float = 0.25,
) -> dict[str, Any]:
    """Covariate-by-covariate constrained randomization, as cvcrand's ``cvrcov``.

    Returns a dict with ``allocation``, ``assignment_message``, ``scheme_message``, ``data_CR``,
    ``baseline_table``, ``overall_allocations`` (schemes checked and accepted),
    ``overall_summary`` (a sentence), and with ``check_validity=True`` ``cluster_coin_des`` and
    ``cluster_coincidence``.
    """
    data, cid = _frame(x, clustername)
    covariates = [c for c in data.columns if c != cid]
    if constraints is None:
        raise ValueError("constraints: give one constraint per covariate, e.g. ['s5', 'mf.5', 'any']")
    if ntotal_cluster is None or ntrt_cluster is None:
        raise ValueError("ntotal_cluster and ntrt_cluster are required")
    _check_sizes(data, ntotal_cluster, ntrt_cluster)
    _check_free(savedata=savedata)
    design = ConstrainedDesign(
        data, covariates, ntrt_cluster, categorical=_names(data[covariates], categorical),
        cluster_id=cid, constraints=list(constraints), size=size,
        enumerate=True if nosim else None, seed=seed, samearmhi=samearmhi, samearmlo=samearmlo)
    allocation = design.draw()
    checked, accepted = len(design.scores), len(design.space_index)
    out = {**_common(allocation, check_validity),
           "overall_allocations": pd.Series({"all": checked, "accepted": accepted}),
           "overall_summary": design.cutoff_message}
    if savedata:
        allocation.save_space(savedata, "cvcrand")
    return out
