"""Charts as pure functions from results to Altair specifications.

The histograms are drawn from counts binned in numpy (a few dozen rows), never from the scores
themselves, so a space of millions of schemes costs the browser nothing. For live updates the
``*_spec`` functions fill a cached, validated Vega-Lite template with new data (Altair's schema
validation would cost more than the statistics).

>>> import pandas as pd
>>> bins = pd.DataFrame({"left": [0.0, 1.0], "right": [1.0, 2.0], "total": [5, 3], "kept": [5, 1]})
>>> zoom = pd.DataFrame({"left": [0.0, 0.5], "right": [0.5, 1.2], "count": [2, 4]})
>>> spec = score_histogram(bins, cutoff=1.2, chosen=0.5, zoom=zoom).to_dict()
>>> [layer["mark"]["type"] for layer in spec["hconcat"][0]["layer"]]
['bar', 'bar', 'rule']
>>> [m["value"] for m in histogram_spec(bins, cutoff=1.2, chosen=0.5, zoom=zoom)["datasets"]["marks"]]
[1.2, 0.5]
"""
from __future__ import annotations

import copy
from functools import lru_cache

import altair as alt
import numpy as np
import pandas as pd

HISTOGRAM_TITLE = "Balance scores of all candidate schemes"
# above this many clusters the pair heatmap (n^2 cells) would flood the browser on every slider move
HEATMAP_MAX_CLUSTERS = 120
ZOOM_TITLE = "Zoom: constrained space"
# one colour scale for bars and rules, so there is one legend
PARTS = ["kept", "not kept", "cutoff", "chosen scheme"]
COLOURS = ["#2b7bba", "#c9d6e3", "#d62728", "#ff9f1c"]
COUNT_AXIS = alt.Axis(tickMinStep=1, format=",d")  # counts: no 0.5 ticks when a space is small


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def _marks(cutoff: float | None, chosen: float | None) -> pd.DataFrame:
    rows = [{"value": float(v), "what": w} for v, w in ((cutoff, "cutoff"), (chosen, "chosen scheme")) if v is not None]
    return pd.DataFrame(rows or [{"value": np.nan, "what": "cutoff"}])


def _parts(chosen: bool) -> tuple[list[str], list[str]]:
    """The legend's entries: "chosen scheme" only once a scheme is drawn (before, nothing names one)."""
    keep = [i for i, p in enumerate(PARTS) if chosen or p != "chosen scheme"]
    return [PARTS[i] for i in keep], [COLOURS[i] for i in keep]


def _colour(chosen: bool = True, legend: bool = True, **kwargs) -> dict:
    domain, colours = _parts(chosen)
    return {"scale": alt.Scale(domain=domain, range=colours),
            "legend": alt.Legend(title=None, orient="top") if legend else None, **kwargs}


def _rules(marks, chosen: bool = True, legend: bool = True) -> alt.Chart:
    dashes = ["cutoff", "chosen scheme"] if chosen else ["cutoff"]
    return alt.Chart(marks).mark_rule(strokeWidth=2).encode(
        x="value:Q",
        color=alt.Color("what:N", **_colour(chosen, legend)),
        strokeDash=alt.StrokeDash("what:N", scale=alt.Scale(domain=dashes, range=[[5, 3], [1, 0]][:len(dashes)]),
                                  legend=None),
        tooltip=["what:N", alt.Tooltip("value:Q", format=".3f")],
    )


def _full_histogram(bins, marks, chosen: bool = True, width: int | str = 330) -> alt.LayerChart:
    base = alt.Chart(bins).encode(
        x=alt.X("left:Q", title="balance score", scale=alt.Scale(zero=False)), x2="right:Q",
        tooltip=[alt.Tooltip("left:Q", format=".3f", title="from"), alt.Tooltip("right:Q", format=".3f", title="to"),
                 alt.Tooltip("total:Q", title="schemes"), alt.Tooltip("kept:Q", title="kept")])
    # exact counts per bin: kept schemes from 0, the others stacked above them (a bin can hold both)
    kept = base.mark_bar(binSpacing=0).encode(y=alt.Y("kept:Q", title="schemes", axis=COUNT_AXIS), y2=alt.datum(0),
                                              color=alt.ColorDatum("kept"))
    rest = base.mark_bar(binSpacing=0).encode(y="total:Q", y2="kept:Q",
                                              color=alt.ColorDatum("not kept"))
    return alt.layer(kept, rest, _rules(marks, chosen), title=HISTOGRAM_TITLE).properties(width=width, height=220)


def _zoom_histogram(zoom, zoom_marks, chosen: bool = True, width: int | str = 170,
                    legend: bool = True) -> alt.LayerChart:
    # the zoom is narrow: few ticks, and a label that would overlap its neighbour is dropped (multi-arm scores
    # such as 0.0123 are wide)
    zoomed = alt.Chart(zoom).mark_bar(binSpacing=0).encode(
        x=alt.X("left:Q", title="balance score", scale=alt.Scale(zero=False),
                axis=alt.Axis(tickCount=4, labelOverlap="greedy", labelFlush=True)), x2="right:Q",
        y=alt.Y("count:Q", title="kept schemes", axis=COUNT_AXIS), y2=alt.datum(0), color=alt.ColorDatum("kept"),
        tooltip=[alt.Tooltip("left:Q", format=".3f", title="from"), alt.Tooltip("right:Q", format=".3f", title="to"),
                 alt.Tooltip("count:Q", title="schemes")])
    return alt.layer(zoomed, _rules(zoom_marks, chosen, legend), title=ZOOM_TITLE).properties(width=width, height=220)


def _histogram_layers(bins, marks, zoom, zoom_marks, chosen: bool = True) -> alt.HConcatChart:
    return alt.hconcat(_full_histogram(bins, marks, chosen), _zoom_histogram(zoom, zoom_marks, chosen), spacing=16)


def _zoom_frame(zoom: pd.DataFrame | None) -> pd.DataFrame:
    return zoom if zoom is not None else pd.DataFrame({"left": [], "right": [], "count": []})


def score_histogram(bins: pd.DataFrame, cutoff: float | None, chosen: float | None,
                    zoom: pd.DataFrame | None = None) -> alt.HConcatChart:
    """All candidate scores (kept and not kept per bin) with rules at the cutoff and the chosen scheme,
    and beside it a zoom on the constrained space's scores (``zoom``: left, right, count); fixed widths,
    for the report (the Design section draws the two as charts of their own, see :func:`full_histogram_spec`
    and :func:`zoom_spec`)."""
    return _histogram_layers(bins, _marks(cutoff, chosen), _zoom_frame(zoom), _marks(cutoff, chosen),
                             chosen is not None)


@lru_cache(maxsize=2)
def _histogram_template(chosen: bool) -> dict:
    names = ("bins", "marks", "zoom", "zoom_marks")
    return _histogram_layers(*(alt.NamedData(n) for n in names), chosen=chosen).to_dict()


def histogram_spec(bins: pd.DataFrame, cutoff: float | None, chosen: float | None,
                   zoom: pd.DataFrame | None = None) -> dict:
    """The Vega-Lite dict of :func:`score_histogram` (fixed widths), filled into a cached template (fast)."""
    spec = copy.deepcopy(_histogram_template(chosen is not None))
    marks = _records(_marks(cutoff, chosen))
    spec["datasets"] = {"bins": _records(bins), "marks": marks, "zoom": _records(_zoom_frame(zoom)),
                        "zoom_marks": marks}
    return spec


# the Design section's two histograms are charts of their own, each as wide as its box: Vega-Lite sizes a
# single view to its container, never a concatenation, and on a narrow screen the zoom goes below the full view
@lru_cache(maxsize=2)
def _full_template(chosen: bool) -> dict:
    return _full_histogram(alt.NamedData("bins"), alt.NamedData("marks"), chosen, "container").to_dict()


@lru_cache(maxsize=2)
def _zoom_template(chosen: bool) -> dict:
    # no legend of its own: the full histogram's, beside or above it, names the same colours
    return _zoom_histogram(alt.NamedData("zoom"), alt.NamedData("marks"), chosen, "container", legend=False).to_dict()


def full_histogram_spec(bins: pd.DataFrame, cutoff: float | None, chosen: float | None) -> dict:
    """The Vega-Lite dict of the histogram of all candidate scores, as wide as its container, filled into
    a cached template (fast).

    >>> full_histogram_spec(pd.DataFrame({"left": [0.0], "right": [1.0], "total": [5], "kept": [5]}), 1.0, None)["width"]
    'container'
    """
    spec = copy.deepcopy(_full_template(chosen is not None))
    spec["datasets"] = {"bins": _records(bins), "marks": _records(_marks(cutoff, chosen))}
    return spec


def zoom_spec(zoom: pd.DataFrame | None, cutoff: float | None, chosen: float | None) -> dict:
    """The Vega-Lite dict of the zoom on the constrained space's scores (``zoom``: left, right, count), as
    wide as its container.

    >>> zoom_spec(pd.DataFrame({"left": [0.0], "right": [0.5], "count": [2]}), 0.5, None)["width"]
    'container'
    """
    spec = copy.deepcopy(_zoom_template(chosen is not None))
    spec["datasets"] = {"zoom": _records(_zoom_frame(zoom)), "marks": _records(_marks(cutoff, chosen))}
    return spec


def flag_thresholds(design) -> tuple[float, float]:
    """The (low, high) same-arm fractions a design flags (Greene's 0.25 and 0.75 unless set)."""
    return getattr(design, "samearmlo", 0.25), getattr(design, "samearmhi", 0.75)


def heatmap_reference(design) -> tuple[float, str]:
    """The same-arm fraction of the unconstrained design (the heatmap's neutral colour) and a caption.

    Two arms: the exact unconstrained fraction and Greene's flags; more arms: the mean unconstrained
    fraction (a pair's departure from it is what the multi-arm engine reports).

    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> heatmap_reference(ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county"))[1]
    'Pairs in the same arm (unconstrained: 47%; flag below 25% or above 75%)'
    """
    validity = design.validity
    if hasattr(validity, "unconstrained_fraction"):  # multi-arm
        expected = validity.constrained.expected_fraction
        return float(expected), f"Pairs in the same arm (unconstrained design: about {expected:.0%})"
    low, high = flag_thresholds(design)
    expected = validity.expected_fraction if validity.expected_fraction is not None else 0.5
    return float(expected), (f"Pairs in the same arm (unconstrained: {expected:.0%}; "
                             f"flag below {low:.0%} or above {high:.0%})")


def _pairs(same_fraction: np.ndarray, cluster_ids: np.ndarray) -> tuple[list[str], pd.DataFrame]:
    ids = [str(c) for c in cluster_ids]
    i, j = np.meshgrid(np.arange(len(ids)), np.arange(len(ids)), indexing="ij")
    off = i.ravel() != j.ravel()
    frame = pd.DataFrame({"a": np.array(ids)[i.ravel()[off]], "b": np.array(ids)[j.ravel()[off]],
                          "fraction": np.round(same_fraction.ravel()[off], 4)})
    return ids, frame


def _title(text: str) -> alt.TitleParams:
    """A title whose parenthesis goes to a second, smaller line (a long title would widen a narrow chart).

    >>> _title("Pairs in the same arm (unconstrained: 47%)").to_dict()
    {'text': 'Pairs in the same arm', 'subtitle': 'unconstrained: 47%'}
    """
    head, _, rest = text.partition(" (")
    return alt.TitleParams(head, subtitle=rest[:-1]) if rest.endswith(")") else alt.TitleParams(text)


def _heatmap_chart(source, ids: list[str], expected: float, caption: str, width: int | str = 300) -> alt.Chart:
    # diverging around the unconstrained rate: red = kept apart more than chance, blue = together more
    return alt.Chart(source).mark_rect().encode(
        # with many clusters Vega drops overlapping labels (every other one, and so on); tooltips name each cell
        x=alt.X("a:N", sort=ids, title="cluster", axis=alt.Axis(labelOverlap="parity", labelFontSize=9)),
        y=alt.Y("b:N", sort=ids, title="cluster", axis=alt.Axis(labelOverlap="parity", labelFontSize=9)),
        color=alt.Color("fraction:Q", title="same arm",
                        scale=alt.Scale(domain=[0, expected, 1], range=["#b2182b", "#f7f7f7", "#2166ac"])),
        tooltip=[alt.Tooltip("a:N", title="cluster"), alt.Tooltip("b:N", title="and cluster"),
                 alt.Tooltip("fraction:Q", format=".3f", title="share of schemes in the same arm")],
    ).properties(width=width, height=300, title=_title(caption))


def coincidence_heatmap(same_fraction: np.ndarray, cluster_ids: np.ndarray, expected: float = 0.5,
                        caption: str = "Pairs in the same arm") -> alt.Chart:
    """How often each pair of clusters shares an arm in the constrained space (white at ``expected``)."""
    ids, frame = _pairs(same_fraction, cluster_ids)
    # inline values: a trial of 80 clusters has 6,320 pairs, above Altair's default row limit for frames
    return _heatmap_chart(alt.Data(values=_records(frame)), ids, expected, caption)


def heatmap_spec(same_fraction: np.ndarray, cluster_ids: np.ndarray, expected: float = 0.5,
                 caption: str = "Pairs in the same arm") -> dict:
    """The Vega-Lite dict of :func:`coincidence_heatmap`, built without re-validating the schema."""
    ids, frame = _pairs(same_fraction, cluster_ids)
    spec = copy.deepcopy(_heatmap_template(tuple(ids), round(expected, 6), caption))
    spec["datasets"] = {"pairs": _records(frame)}
    return spec


@lru_cache(maxsize=4)
def _heatmap_template(ids: tuple[str, ...], expected: float, caption: str) -> dict:
    # the same clusters between slider moves: build the Altair chart once per data set
    # the app's heatmap is as wide as its box (the report's keeps 300 px)
    return _heatmap_chart(alt.NamedData("pairs"), list(ids), expected, caption, "container").to_dict(validate=False)


def too_many_for_heatmap(n_clusters: int) -> dict:
    """A small Vega-Lite spec that says why there is no pair heatmap (the validity table still has the numbers).

    >>> too_many_for_heatmap(150)["mark"]["type"]
    'text'
    """
    text = (f"{n_clusters} clusters: the pair heatmap is drawn for at most {HEATMAP_MAX_CLUSTERS}; "
            "the validity table above summarises every pair")
    # the text breaks at its commas and semicolons: one line would be wider than a narrow screen
    return alt.Chart(alt.Data(values=[{"t": text.replace(": ", ":\n").replace("; ", ";\n")}])).mark_text(
        align="left", baseline="top", fontSize=12, lineBreak="\n").encode(text="t:N").properties(
        width="container", height=50).to_dict(validate=False)


PERMUTATION_PARTS = ["at least as extreme", "less extreme", "observed"]
PERMUTATION_COLOURS = ["#d62728", "#c9d6e3", "#222222"]  # the ink: the theme's font colour in a dark theme


def permutation_histogram(result, bins: int = 40, arm_names=("Control", "Intervention")) -> alt.LayerChart:
    """The permutation distribution of a :class:`~crt_widgets.core.permutation.PermutationResult`
    (binned in numpy), schemes at least as extreme as the observed statistic in red, a rule at it; a red
    triangle under every bin that holds any, so that a handful among thousands stays visible (a bar of
    height 1 beside bars of hundreds is less than a pixel). ``arm_names``: control first.

    >>> import numpy as np
    >>> from crt_widgets.core.permutation.test import PermutationResult
    >>> r = PermutationResult(1.0, np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), 4 / 6, {}, "two-sided",
    ...                       "gaussian", 6, 4, 40, 0, np.array([1, 1, 0, 0]), np.arange(4))
    >>> [layer["mark"]["type"] for layer in permutation_histogram(r, bins=5).to_dict()["layer"]]
    ['bar', 'bar', 'point', 'rule']
    """
    counts = result.histogram(bins)
    control, intervention = arm_names
    colour = {"scale": alt.Scale(domain=PERMUTATION_PARTS, range=PERMUTATION_COLOURS),
              "legend": alt.Legend(title=None, orient="top")}
    base = alt.Chart(counts).encode(
        x=alt.X("left:Q", title=f"statistic U ({intervention} minus {control} mean residual)"), x2="right:Q",
        tooltip=[alt.Tooltip("left:Q", format=".4f", title="from"), alt.Tooltip("right:Q", format=".4f", title="to"),
                 alt.Tooltip("total:Q", title="schemes"), alt.Tooltip("extreme:Q", title="as extreme")])
    extreme = base.mark_bar(binSpacing=0).encode(y=alt.Y("extreme:Q", title="schemes", axis=COUNT_AXIS),
                                                 y2=alt.datum(0), color=alt.ColorDatum("at least as extreme"))
    rest = base.mark_bar(binSpacing=0).encode(y="total:Q", y2="extreme:Q", color=alt.ColorDatum("less extreme"))
    centres = counts.assign(centre=(counts["left"] + counts["right"]) / 2)[counts["extreme"] > 0]
    markers = alt.Chart(centres).mark_point(shape="triangle-up", filled=True, size=60, opacity=1, yOffset=7).encode(
        x="centre:Q", y=alt.datum(0), color=alt.ColorDatum("at least as extreme"),
        tooltip=[alt.Tooltip("left:Q", format=".4f", title="from"), alt.Tooltip("right:Q", format=".4f", title="to"),
                 alt.Tooltip("extreme:Q", title="schemes at least as extreme")])
    observed = alt.Chart(pd.DataFrame({"value": [result.statistic], "what": ["observed"]})).mark_rule(
        strokeWidth=2).encode(x="value:Q", color=alt.Color("what:N", **colour),
                              tooltip=[alt.Tooltip("value:Q", format=".4f", title="observed U")])
    title = f"Permutation distribution over {result.n_schemes:,} schemes (p = {result.p_value:.4g}, {result.alternative})"
    return alt.layer(extreme, rest, markers, observed, title=_title(title)).properties(width="container", height=220)
