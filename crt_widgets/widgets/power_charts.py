"""Power curves as Altair specifications: power against clusters per arm, cluster size or the ICC, with the band
an ICC range spans (from :func:`crt_widgets.core.power.analytic.power_curve`).

The data travel inside the specification (a few hundred rows at most), never as a URL, so the chart renders
offline with the JavaScript bundled in Altair.

>>> from crt_widgets.core.power.analytic import power_curve
>>> curve = power_curve(0.3, against="clusters_per_arm", values=range(4, 21), icc=0.05, cluster_size=[20, 50],
...                     band=(0.02, 0.1))
>>> spec = power_curve_chart(curve, target=0.8).to_dict()
>>> [layer["mark"]["type"] for layer in spec["layer"]]
['area', 'line', 'rule']
"""
from __future__ import annotations

import altair as alt
import pandas as pd

AXIS_TITLES = {"clusters_per_arm": "clusters per arm", "cluster_size": "individuals per cluster",
               "icc": "intra-cluster correlation (ICC)", "rate_cv": "CV of the cluster rates (k)",
               "effect": "effect", "steps": "number of steps",
               "clusters_per_step": "clusters per step (per sequence)"}


def _against(curve: pd.DataFrame, against: str | None) -> str:
    if against is not None:
        if against not in curve.columns:
            raise ValueError(f"against: {against!r} is not a column of the curve")
        return against
    if curve.attrs.get("against") in curve.columns:  # power_curve records its x axis
        return curve.attrs["against"]
    for name in AXIS_TITLES:
        if name in curve.columns:
            return name
    raise ValueError(f"against: the curve has none of the axes {tuple(AXIS_TITLES)}; name its x column")


def power_curve_chart(curve: pd.DataFrame, against: str | None = None, target: float | None = 0.8,
                      title: str | None = None, width: int | str = 380, height: int = 240) -> alt.LayerChart:
    """Lines of power (one per ``line`` of the curve), the shaded band between ``power_low`` and
    ``power_high`` when the curve has one, and a dashed rule at the ``target`` power.

    >>> import pandas as pd
    >>> chart = power_curve_chart(pd.DataFrame({"icc": [0.0, 0.1], "power": [0.9, 0.5]}), target=None)
    >>> [layer["mark"]["type"] for layer in chart.to_dict()["layer"]]
    ['line']
    """
    if not isinstance(curve, pd.DataFrame) or "power" not in curve.columns or curve.empty:
        raise ValueError("curve: give power_curve()'s table (a DataFrame with a power column and at least one row)")
    if target is not None and not 0 < target < 1:
        raise ValueError(f"target must be in (0, 1), got {target}")
    x_name = _against(curve, against)
    frame = curve.copy()
    if "line" not in frame.columns:
        frame["line"] = "power"
    x = alt.X(f"{x_name}:Q", title=AXIS_TITLES.get(x_name, x_name),
              scale=alt.Scale(type="log") if x_name == "cluster_size" else alt.Scale(zero=False))
    y_scale = alt.Scale(domain=[0, 1])
    colour = alt.Color("line:N", title=None, legend=alt.Legend(orient="top") if frame.line.nunique() > 1 else None)
    layers = []
    if {"power_low", "power_high"} <= set(frame.columns):
        band = frame.attrs.get("band_label") or (
            f"{frame.band_of.iloc[0]} from {frame.band_low.iloc[0]:g} to {frame.band_high.iloc[0]:g}"
            if "band_of" in frame.columns else "range")
        frame["band"] = band
        layers.append(alt.Chart(frame).mark_area(opacity=0.2).encode(
            x=x, y=alt.Y("power_low:Q", scale=y_scale, title="power"), y2="power_high:Q", color=colour,
            tooltip=[alt.Tooltip(f"{x_name}:Q", title=AXIS_TITLES.get(x_name, x_name)),
                     alt.Tooltip("band:N", title="band"),
                     alt.Tooltip("power_low:Q", format=".3f", title="lowest power"),
                     alt.Tooltip("power_high:Q", format=".3f", title="highest power")]))
    layers.append(alt.Chart(frame).mark_line(point=len(frame) <= 60).encode(
        x=x, y=alt.Y("power:Q", scale=y_scale, title="power"), color=colour,
        tooltip=[alt.Tooltip(f"{x_name}:Q", title=AXIS_TITLES.get(x_name, x_name)), "line:N",
                 alt.Tooltip("power:Q", format=".3f")]))
    if target is not None:
        layers.append(alt.Chart(pd.DataFrame({"target": [target]})).mark_rule(strokeDash=[5, 3], color="#d62728")
                      .encode(y="target:Q", tooltip=[alt.Tooltip("target:Q", format=".0%", title="target power")]))
    return alt.layer(*layers, title=title or "").properties(width=width, height=height)
