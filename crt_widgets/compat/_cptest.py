"""``cptest`` with cvcrand's argument names and result names.

Deliberate differences, one sentence each: ``outcometype="count"`` is accepted (Poisson
regression), and with unequal arms the statistic is formula (5) of the paper (difference of arm means),
not cptest's +1/-1 coding.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from crt_widgets.core.permutation import permutation_test


def cptest(
    outcome: Sequence,
    clustername: Sequence,
    z: pd.DataFrame | None = None,
    cspacedatname: Any = None,
    outcometype: str = "continuous",
    categorical: Sequence | None = None,
) -> dict[str, Any]:
    """Clustered permutation test over a saved constrained space, as cvcrand's ``cptest``.

    ``cspacedatname`` is the space file cvcrand's ``cvrall``/``cvrcov`` saved (or ours); its columns
    are the clusters in sorted order of ``clustername``. Returns ``FinalScheme``, ``pvalue`` and
    ``pvalue_statement``, plus ``result`` (our full result object).

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
    cats = list(categorical or [])
    if cats and all(isinstance(c, (int, np.integer)) for c in cats):  # R-style column numbers
        cats = [covariates[c - 1] for c in cats]
    result = permutation_test(frame, "__outcome", "__cluster", cspacedatname, covariates, cats, outcometype)
    return {
        "FinalScheme": result.observed_scheme,
        "pvalue": result.p_value,
        "pvalue_statement": f"The permutation test p-value is {result.p_value:.3f}",
        "result": result,
    }
