"""``cptest`` with cvcrand's argument names and result names.

Deliberate differences from cvcrand, one sentence each:

* ``outcometype="count"`` is accepted (Poisson regression).
* With unequal arms the statistic is formula (5) of the paper (difference of arm means), not
  cptest's +1/-1 coding (identical p-values when the arms are equal).
* ``pvalue`` is exact (Dickinson: 54/1287 = 0.041958...); cvcrand returns it rounded to 4 decimals
  (0.042), which is what ``pvalue_statement`` shows, in cvcrand's words.
* Ties between a scheme's statistic and the observed one are decided with a relative tolerance of
  1e-9, so floating-point noise cannot drop a tied scheme (R compares exactly).
* Rows with a missing outcome, cluster or covariate are dropped and counted
  (``result.n_dropped``); cvcrand's ``lm``/``glm`` would drop them and then misalign the clusters.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.permutation.test import permutation_test


def cptest(
    outcome: Sequence,
    clustername: Sequence,
    z: pd.DataFrame | None = None,
    cspacedatname: Any = None,
    outcometype: str = "continuous",
    categorical: Sequence | None = None,
) -> dict[str, Any]:
    """Clustered permutation test over a saved constrained space, as cvcrand's ``cptest``.

    ``cspacedatname`` is the space file cvcrand's ``cvrall``/``cvrcov`` saved (or ours, or any space
    :func:`crt_widgets.permutation_test` accepts); cvcrand's CSV has no cluster labels, so its columns
    are taken to be the clusters in sorted order of ``clustername``, as cvcrand's ``tapply`` orders
    them. ``categorical`` names columns of ``z`` (or gives their 1-based positions, as in R).

    Returns cvcrand's elements: ``FinalScheme`` (a data frame of ``Cluster_ID`` and ``Intervention``),
    ``pvalue`` and ``pvalue_statement``, plus ``result`` (our full :class:`PermutationResult`).

    >>> from crt_widgets.datasets import load_dickinson_outcome, dickinson_cvcrand_space_path
    >>> d = load_dickinson_outcome()
    >>> r = cptest(outcome=d["outcome"], clustername=d["county"],
    ...     z=d[["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]],
    ...     cspacedatname=dickinson_cvcrand_space_path(), outcometype="binary",
    ...     categorical=["location", "incomecat"])
    >>> round(r["pvalue"], 3)
    0.042
    """
    y = np.asarray(outcome)
    ids = np.asarray(clustername)
    if len(y) != len(ids):
        raise ValueError(f"clustername: {len(ids)} values for {len(y)} outcomes")
    if cspacedatname is None:
        raise ValueError("cspacedatname: give the file of the constrained space saved at design time")
    frame = pd.DataFrame({"__outcome": y, "__cluster": ids})
    covariates: list[str] = []
    if z is not None:
        z = pd.DataFrame(z).reset_index(drop=True)
        if len(z) != len(y):
            raise ValueError(f"z: {len(z)} rows for {len(y)} outcomes")
        covariates = list(z.columns)
        frame = pd.concat([frame, z], axis=1)
    cats = _categorical_names(categorical, covariates)
    result = permutation_test(frame, "__outcome", "__cluster", cspacedatname, covariates, cats, outcometype)
    return {
        "FinalScheme": pd.DataFrame({"Cluster_ID": result.cluster_ids,
                                     "Intervention": result.observed_scheme.astype(int)}),
        "pvalue": result.p_value,
        "pvalue_statement": f"Clustered permutation test p-value = {_r_round4(result.p_value)}",
        "result": result,
    }


def _r_round4(p: float) -> str:
    """``paste(round(p, 4))`` in R: 0.041958 -> "0.042", 0.0001 -> "1e-04", 1 -> "1"."""
    value = round(p, 4)
    if 0 < value < 0.001 and round(value * 1e4) < 10:  # R prints 5e-04 (shorter than 0.0005)
        return f"{round(value * 1e4)}e-04"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _categorical_names(categorical: Any, covariates: list[str]) -> list[str]:
    """Column names of the categorical covariates (R-style 1-based positions are accepted)."""
    if categorical is None:
        return []
    cats = [categorical] if isinstance(categorical, (str, int, np.integer)) else list(categorical)
    if not covariates and cats:
        raise ValueError("categorical: given without z (no covariates)")
    names = []
    for c in cats:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            if not 1 <= c <= len(covariates):
                raise ValueError(f"categorical: column number {c} is outside 1..{len(covariates)} (the columns of z)")
            names.append(covariates[c - 1])
        else:
            names.append(c)
    return names
