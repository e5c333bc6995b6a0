"""Summary tables of a design: the balance-score summary (cvcrand's ``bscores``) and the baseline table by arm.

>>> import numpy as np
>>> float(score_summary(np.arange(1.0, 11.0), selected=2.0, cutoff=1.9).loc["Mean", "value"])
5.5
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crt_widgets.core.covariates import categorical_levels

SUMMARY_QUANTILES = {"5%": 0.05, "10%": 0.10, "20%": 0.20, "25%": 0.25, "30%": 0.30,
                     "50%": 0.50, "75%": 0.75, "95%": 0.95}


def score_summary(scores: np.ndarray, selected: float, cutoff: float) -> pd.DataFrame:
    """cvcrand's ``bscores``: the selected scheme's score, the cutoff, and the distribution of all scores.

    Quantiles are R's default (type 7), which is numpy's default ("linear").
    """
    q = np.quantile(scores, list(SUMMARY_QUANTILES.values()))
    values = {
        "score (selected scheme)": selected,
        "cutoff score": cutoff,
        "Mean": float(np.mean(scores)),
        "SD": float(np.std(scores, ddof=1)) if len(scores) > 1 else float("nan"),
        "Min": float(np.min(scores)),
        **dict(zip(SUMMARY_QUANTILES, map(float, q))),
        "Max": float(np.max(scores)),
    }
    return pd.DataFrame({"value": values}).rename_axis("statistic")


def standardized_difference(x1: np.ndarray, x0: np.ndarray) -> float:
    """Standardized mean difference (mean1 - mean0) / sqrt((var1 + var0) / 2), 0 when both are constant."""
    m1, m0 = np.mean(x1), np.mean(x0)
    v1 = np.var(x1, ddof=1) if len(x1) > 1 else 0.0
    v0 = np.var(x0, ddof=1) if len(x0) > 1 else 0.0
    pooled = np.sqrt((v1 + v0) / 2)
    if pooled == 0:
        return 0.0 if m1 == m0 else float(np.sign(m1 - m0) * np.inf)
    return float((m1 - m0) / pooled)


def categorical_smd(p1: np.ndarray, p0: np.ndarray) -> float:
    """Yang and Dalton's (2012) SMD of a categorical variable from level proportions (reference level dropped)."""
    diff = (p1 - p0)[1:]
    cov = (np.diag(p1[1:]) - np.outer(p1[1:], p1[1:]) + np.diag(p0[1:]) - np.outer(p0[1:], p0[1:])) / 2
    if not diff.any():
        return 0.0
    try:
        return float(np.sqrt(diff @ np.linalg.pinv(cov) @ diff))
    except np.linalg.LinAlgError:  # pragma: no cover
        return float("nan")


def baseline_table(data: pd.DataFrame, covariates: Sequence[str], categorical: Sequence[str],
                   arm: np.ndarray, arm_labels: Sequence | None = None) -> pd.DataFrame:
    """Baseline characteristics by arm, in the style of cvcrand (R's tableone), plus the SMD.

    Columns ``arm = a`` for each arm (formatted text) and ``SMD`` (the largest absolute standardized
    mean difference between any two arms; for a categorical covariate, Yang and Dalton's multi-level
    SMD). Rows: ``n``; a two-level categorical as ``name = level (%)``, others as a header row
    ``name (%)`` with one indented row per level; a continuous covariate as ``name (mean (sd))``.
    """
    arm = np.asarray(arm)
    arms = list(arm_labels) if arm_labels is not None else sorted(np.unique(arm).tolist())
    cols = [f"arm = {a}" for a in arms]
    groups = [arm == a for a in arms]
    rows: list[tuple[str, list[str], float | None]] = [("n", [str(int(g.sum())) for g in groups], None)]
    for name in covariates:
        col = data[name].to_numpy()
        if name in categorical:
            levels = categorical_levels(data[name])
            props = [np.array([np.mean(col[g] == lv) if g.any() else 0.0 for lv in levels]) for g in groups]
            smd = _max_pairwise(lambda i, j: categorical_smd(props[i], props[j]), len(groups))
            cells = lambda lv: [f"{int(np.sum(col[g] == lv))} ({100 * np.mean(col[g] == lv):.1f})"
                                if g.any() else "0 (-)" for g in groups]
            if len(levels) == 2:
                rows.append((f"{name} = {levels[1]} (%)", cells(levels[1]), smd))
            else:
                rows.append((f"{name} (%)", [""] * len(groups), smd))
                rows.extend((f"   {lv}", cells(lv), None) for lv in levels)
        else:
            x = col.astype(float)
            smd = _max_pairwise(lambda i, j: abs(standardized_difference(x[groups[i]], x[groups[j]])), len(groups))
            rows.append((f"{name} (mean (sd))",
                         [f"{x[g].mean():.2f} ({x[g].std(ddof=1) if g.sum() > 1 else float('nan'):.2f})" for g in groups],
                         smd))
    table = pd.DataFrame([r[1] for r in rows], index=[r[0] for r in rows], columns=cols)
    table["SMD"] = [("" if r[2] is None else f"{r[2]:.3f}") for r in rows]
    table.attrs["smd"] = {r[0]: r[2] for r in rows if r[2] is not None}
    return table


def _max_pairwise(smd, n_groups: int) -> float:
    values = [abs(smd(i, j)) for i in range(n_groups) for j in range(i + 1, n_groups)]
    return float(max(values)) if values else float("nan")
