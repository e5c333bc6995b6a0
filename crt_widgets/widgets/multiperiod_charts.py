"""Charts of multi-period designs as pure functions from tidy tables to Altair specifications (offline: the data
travel inside the specification, nothing is fetched).

- :func:`design_matrix_chart`: the clusters x periods grid of a design or of a drawn order, colour = condition
  (from :func:`~crt_widgets.core.multiperiod.designs.design_grid` or
  :meth:`~crt_widgets.core.randomization.stepped_wedge.SteppedWedgeAllocation.cluster_periods`);
- :func:`time_balance_chart`: the balance comparison of a constrained order against simple randomization
  (:meth:`~crt_widgets.core.randomization.stepped_wedge.SteppedWedgeDesign.balance_comparison`).

>>> import crt_widgets as crt
>>> spec = design_matrix_chart(crt.stepped_wedge(3, 2)).to_dict()
>>> spec["mark"]["type"], spec["encoding"]["color"]["scale"]["domain"]
('rect', ['control', 'treatment'])
>>> len(spec["datasets"][spec["data"]["name"]])
24
"""
from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from crt_widgets.core.multiperiod.designs import MultiPeriodDesign, design_grid

CONTROL_COLOUR = "#c9d6e3"
TREATMENT_COLOURS = ["#2b7bba", "#ff9f1c", "#2ca02c", "#9467bd", "#8c564b"]
UNOBSERVED_COLOUR = "#ffffff"
# above this many clusters the rows of the grid are not labelled one by one
LABEL_MAX_CLUSTERS = 60


def _grid(what: Any) -> pd.DataFrame:
    if isinstance(what, MultiPeriodDesign):
        return design_grid(what)
    if isinstance(what, pd.DataFrame) and {"cluster", "period", "value", "condition"} <= set(what.columns):
        return what
    if hasattr(what, "cluster_periods"):  # a drawn order
        return what.cluster_periods()
    raise ValueError("grid: expected a MultiPeriodDesign, an allocation of one, or the table design_grid returns "
                     f"(columns cluster, period, value, condition); got {type(what).__name__}")


def condition_scale(grid: pd.DataFrame) -> alt.Scale:
    """Control first, the treated conditions by increasing value (shades of one colour for fractions of the
    effect, one colour per level), not observed last (white).

    >>> condition_scale(pd.DataFrame({"value": [0.0, 0.5, 1.0, np.nan],
    ...     "condition": ["control", "treatment (50% of the effect)", "treatment", "not observed"]})).domain
    ['control', 'treatment (50% of the effect)', 'treatment', 'not observed']
    """
    treated = grid[grid["value"] > 0].drop_duplicates("condition").sort_values("value")
    domain, colours = [], []
    if (grid["value"] == 0).any():
        domain.append("control")
        colours.append(CONTROL_COLOUR)
    fractional = len(treated) and treated["value"].max() <= 1.0 and len(treated) > 1
    for k, (value, label) in enumerate(zip(treated["value"], treated["condition"])):
        domain.append(label)
        if fractional:  # one blue, lighter for a smaller share of the effect
            shade = 0.35 + 0.65 * value
            colours.append(_blend(TREATMENT_COLOURS[0], shade))
        else:
            colours.append(TREATMENT_COLOURS[k % len(TREATMENT_COLOURS)])
    if grid["value"].isna().any():
        domain.append("not observed")
        colours.append(UNOBSERVED_COLOUR)
    return alt.Scale(domain=domain, range=colours)


def _blend(colour: str, share: float) -> str:
    rgb = np.array([int(colour[i: i + 2], 16) for i in (1, 3, 5)])
    mixed = np.rint(255 - share * (255 - rgb)).astype(int)
    return "#" + "".join(f"{v:02x}" for v in mixed)


def design_matrix_chart(what: Any, *, title: str | None = None, cell: int = 18) -> alt.Chart:
    """The clusters x periods grid, one rectangle per cluster-period coloured by its condition; clusters top to
    bottom in the table's order (sequence order for a design, the data's order for a drawn order), the sequence in
    the tooltip.

    ``what`` is a :class:`MultiPeriodDesign`, a drawn order (anything with ``cluster_periods()``), or the tidy
    table of :func:`design_grid`.
    """
    grid = _grid(what).copy()
    grid["cluster"] = grid["cluster"].astype(str)
    order = list(pd.unique(grid["cluster"]))
    n_clusters, n_periods = len(order), int(grid["period"].max())
    axis = alt.Axis(labels=n_clusters <= LABEL_MAX_CLUSTERS, ticks=False, title="cluster")
    chart = alt.Chart(grid).mark_rect(stroke="#ffffff", strokeWidth=1).encode(
        x=alt.X("period:O", title="period", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("cluster:N", sort=order, axis=axis),
        color=alt.Color("condition:N", scale=condition_scale(grid), legend=alt.Legend(title=None, orient="top")),
        tooltip=["cluster:N", "sequence:O", "period:O", "condition:N"],
    )
    height = max(60, min(cell * n_clusters, 900))
    return chart.properties(width=max(120, cell * 2 * n_periods), height=height,
                            title=title or f"{n_clusters} clusters x {n_periods} periods")


def time_balance_chart(comparison: pd.DataFrame) -> alt.Chart:
    """Dots per covariate: the median and 95th percentile of |correlation with time on treatment| over the
    constrained space against the unconstrained one (the table of ``balance_comparison()``).

    >>> table = pd.DataFrame([[0.1, 0.3, 0.2, 0.6]], index=pd.Index(["size"], name="covariate"),
    ...     columns=pd.MultiIndex.from_product([["|r| with time on treatment"],
    ...         ["constrained median", "constrained 95%", "unconstrained median",
    ...          "unconstrained 95%"]]))
    >>> len(time_balance_chart(table).to_dict()["datasets"].popitem()[1])
    4
    """
    top = "|r| with time on treatment"
    if not isinstance(comparison, pd.DataFrame) or top not in comparison.columns.get_level_values(0):
        raise ValueError("comparison: expected the table of SteppedWedgeDesign.balance_comparison()")
    part = comparison[top]
    rows = []
    for column in part.columns:
        space, _, stat = column.partition(" ")
        rows.append(pd.DataFrame({"covariate": part.index.astype(str), "space": space, "statistic": stat,
                                  "value": part[column].to_numpy()}))
    long = pd.concat(rows, ignore_index=True)
    return alt.Chart(long).mark_point(filled=True, size=80).encode(
        x=alt.X("value:Q", title=top, scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("covariate:N", title=None),
        color=alt.Color("space:N", scale=alt.Scale(domain=["constrained", "unconstrained"],
                                                   range=[TREATMENT_COLOURS[0], "#d62728"]),
                        legend=alt.Legend(title=None, orient="top")),
        shape=alt.Shape("statistic:N", legend=alt.Legend(title=None, orient="top")),
        tooltip=["covariate:N", "space:N", "statistic:N", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=360, height=max(60, 28 * len(part)))
