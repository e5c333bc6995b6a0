"""Charts as pure functions from results to Altair specifications.

The histogram is drawn from counts binned in numpy (a few dozen rows), never from the scores
themselves, so a space of millions of schemes costs the browser nothing. For live updates the
``*_spec`` functions fill a cached, validated Vega-Lite template with new data (Altair's schema
validation would cost more than the statistics).

>>> import pandas as pd
>>> bins = pd.DataFrame({"left": [0.0, 1.0], "right": [1.0, 2.0], "count": [5, 3], "kept": [True, False]})
>>> score_histogram(bins, cutoff=1.0, chosen=0.5).to_dict()["layer"][0]["mark"]["type"]
'bar'
>>> histogram_spec(bins, cutoff=1.0, chosen=0.5)["datasets"]["marks"][0]["value"]
1.0
"""
from __future__ import annotations

import copy
from functools import lru_cache

import altair as alt
import numpy as np
import pandas as pd

HISTOGRAM_TITLE = "Balance scores of all candidate schemes"


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def _marks(cutoff: float | None, chosen: float | None) -> pd.DataFrame:
    rows = [{"value": float(v), "what": w} for v, w in ((cutoff, "cutoff"), (chosen, "chosen scheme")) if v is not None]
    return pd.DataFrame(rows or [{"value": np.nan, "what": "cutoff"}])


def _histogram_layers(bins, marks, title: str) -> alt.LayerChart:
    bars = alt.Chart(bins).mark_bar(binSpacing=0).encode(
        x=alt.X("left:Q", title="balance score", scale=alt.Scale(zero=False)),
        x2="right:Q",
        y=alt.Y("count:Q", title="schemes"),
        y2=alt.datum(0),
        color=alt.Color("kept:N", scale=alt.Scale(domain=[True, False], range=["#2b7bba", "#c9d6e3"]),
                        legend=alt.Legend(title="in constrained space", orient="top-right")),
        tooltip=[alt.Tooltip("left:Q", format=".3f", title="from"), alt.Tooltip("right:Q", format=".3f", title="to"),
                 "count:Q"],
    )
    rules = alt.Chart(marks).mark_rule(strokeWidth=2).encode(
        x="value:Q",
        color=alt.Color("what:N", scale=alt.Scale(domain=["cutoff", "chosen scheme"], range=["#d62728", "#ff9f1c"]),
                        legend=alt.Legend(title=None, orient="top")),
        strokeDash=alt.StrokeDash("what:N", legend=None),
        tooltip=["what:N", alt.Tooltip("value:Q", format=".3f")],
    )
    return alt.layer(bars, rules, title=title).resolve_scale(color="independent").properties(width=520, height=220)


def score_histogram(bins: pd.DataFrame, cutoff: float | None, chosen: float | None,
                    title: str = HISTOGRAM_TITLE) -> alt.LayerChart:
    """Bars of counts per score bin (kept bins coloured), a rule at the cutoff and one at the chosen scheme."""
    return _histogram_layers(bins, _marks(cutoff, chosen), title)


@lru_cache(maxsize=1)
def _histogram_template() -> dict:
    return _histogram_layers(alt.NamedData("bins"), alt.NamedData("marks"), HISTOGRAM_TITLE).to_dict()


def histogram_spec(bins: pd.DataFrame, cutoff: float | None, chosen: float | None) -> dict:
    """The Vega-Lite dict of :func:`score_histogram`, filled into a cached template (fast)."""
    spec = copy.deepcopy(_histogram_template())
    spec["datasets"] = {"bins": _records(bins), "marks": _records(_marks(cutoff, chosen))}
    return spec


def flag_thresholds(design) -> tuple[float, float]:
    """The (low, high) same-arm fractions a design flags (Greene's 0.25 and 0.75 unless set)."""
    return getattr(design, "samearmlo", 0.25), getattr(design, "samearmhi", 0.75)


def _pairs(same_fraction: np.ndarray, cluster_ids: np.ndarray) -> tuple[list[str], pd.DataFrame]:
    ids = [str(c) for c in cluster_ids]
    i, j = np.meshgrid(np.arange(len(ids)), np.arange(len(ids)), indexing="ij")
    off = i.ravel() != j.ravel()
    frame = pd.DataFrame({"a": np.array(ids)[i.ravel()[off]], "b": np.array(ids)[j.ravel()[off]],
                          "fraction": np.round(same_fraction.ravel()[off], 4)})
    return ids, frame


def _heatmap_chart(source, ids: list[str], low: float, high: float) -> alt.Chart:
    return alt.Chart(source).mark_rect().encode(
        x=alt.X("a:N", sort=ids, title="cluster"),
        y=alt.Y("b:N", sort=ids, title="cluster"),
        color=alt.Color("fraction:Q", title="same arm",
                        scale=alt.Scale(domain=[0, 0.5, 1], range=["#b2182b", "#f7f7f7", "#2166ac"])),
        tooltip=["a:N", "b:N", alt.Tooltip("fraction:Q", format=".3f")],
    ).properties(width=300, height=300, title=f"Pairs in the same arm (flag below {low:.0%} or above {high:.0%})")


def coincidence_heatmap(same_fraction: np.ndarray, cluster_ids: np.ndarray, low: float = 0.25,
                        high: float = 0.75) -> alt.Chart:
    """How often each pair of clusters shares an arm in the constrained space."""
    ids, frame = _pairs(same_fraction, cluster_ids)
    # inline values: a trial of 80 clusters has 6,320 pairs, above Altair's default row limit for frames
    return _heatmap_chart(alt.Data(values=_records(frame)), ids, low, high)


def heatmap_spec(same_fraction: np.ndarray, cluster_ids: np.ndarray, low: float = 0.25, high: float = 0.75) -> dict:
    """The Vega-Lite dict of :func:`coincidence_heatmap`, built without re-validating the schema."""
    ids, frame = _pairs(same_fraction, cluster_ids)
    spec = _heatmap_chart(alt.NamedData("pairs"), ids, low, high).to_dict(validate=False)
    spec["datasets"] = {"pairs": _records(frame)}
    return spec
