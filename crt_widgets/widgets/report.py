"""The one-file HTML report of a drawn allocation, for the trial master file (readable offline).

Charts are inline SVG (rendered by vl-convert, no JavaScript, no network); tables are plain HTML.

>>> from crt_widgets.datasets import load_dickinson
>>> from crt_widgets import ConstrainedDesign
>>> a = ConstrainedDesign(load_dickinson(), ["inciis", "hispanic"], 8, cluster_id="county", seed=1).draw()
>>> "<svg" in allocation_report(a)
True
"""
from __future__ import annotations

import html
import json
from collections.abc import Sequence

import pandas as pd

from crt_widgets.core.io.spacehash import sha256_of_space
from crt_widgets.widgets.charts import (HEATMAP_MAX_CLUSTERS, coincidence_heatmap, heatmap_reference,
                                       score_histogram)
from crt_widgets.widgets.formatting import smd_table_html

METHOD = ("Covariate-constrained randomization (Raab and Butcher 2001; Li et al. 2016, 2017), as implemented "
          "by cvcrand (Yu et al. 2019): every candidate scheme was scored by the {metric} balance metric over the "
          "standardised covariates; the constrained space kept {rule}; one scheme was chosen uniformly at random "
          "from it with the recorded seed. Validity was checked as in Greene (2017): how often each pair of "
          "clusters shares an arm in the constrained space.")

ORDER_METHOD = ("Covariate-constrained randomization of the order in which clusters cross over (Moulton 2004; Li et al. "
                "2016), on the sequences of a {kind} design: every candidate assignment of the clusters to the "
                "sequences was scored by the {metric} metric of {balance}; the constrained space kept {rule}; one "
                "assignment was chosen uniformly at random from it with the recorded seed. Validity: how often each "
                "pair of clusters shares a sequence in the constrained space, against the unconstrained rate.")
ORDER_BALANCE = {"sequences": "the differences of the standardised covariates' means between sequences",
                 "time": "the correlations of the standardised covariates with time on treatment (Lew et al. 2019)"}


def _svg(chart) -> str:
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_dict())


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.{digits}f}", border=0, classes="t")


def input_data_name(allocation) -> str:
    """File name of the input data as offered for download beside the allocation."""
    return f"input_data_seed{allocation.seed}.csv"


def reproduce_code(allocation) -> str:
    """Python that re-creates the allocation from the input data file with the package's API.

    The input file is the design's data written as CSV (its SHA-256 is the audit's ``data_sha256``).

    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> a = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=3).draw()
    >>> reproduce_code(a).splitlines()[4]
    "data = pd.read_csv('input_data_seed3.csv')"
    """
    d = allocation.design
    params = {k: _plain(v) for k, v in d.get_params().items() if k != "data"}
    names = [type(d).__name__] + ["MultiPeriodDesign"] * any(isinstance(v, _Code) for v in params.values())
    lines = ["import pandas as pd", "", f"from crt_widgets import {', '.join(names)}", "",
             f"data = pd.read_csv({input_data_name(allocation)!r})",
             f"design = {type(d).__name__}(data,"]
    lines += [f"    {k}={v!r}," for k, v in params.items()]
    lines[-1] = lines[-1][:-1] + ")"
    draw = "design.draw()" if allocation.seeded_by_design else f"design.draw(seed={allocation.seed!r})"
    lines += [f"allocation = {draw}  # seed {allocation.seed}",
              "print(allocation.allocation)"]
    return "\n".join(lines)


class _Code(str):
    """Python source that stands for an argument (its repr is the code itself)."""

    def __repr__(self) -> str:
        return str(self)


def _plain(value):
    """Arguments as plain Python (numpy numbers and arrays as floats and lists, a multi-period design as the call
    that makes it), for code that reads well."""
    if hasattr(value, "clusters_per_sequence") and hasattr(value, "sequences"):
        rows = [[None if v != v else float(v) for v in row] for row in value.sequences.tolist()]
        return _Code(f"MultiPeriodDesign({rows!r}, {value.clusters_per_sequence.tolist()!r}, kind={value.kind!r})")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    return value


def draw_section(draw: dict | None, earlier: Sequence[dict] = ()) -> str:
    """The report's account of the draw: which draw of the session it is, how its seed was chosen, the
    space's SHA-256, and every earlier draw of the session (none is hidden).

    >>> "draw 2 of this session" in draw_section({"draw": 2, "seed": 5, "seed_source": "typed", "time": "t",
    ...     "space_sha256": "ab", "n_schemes": 9, "allocation": {"1": [1]}}, [{"draw": 1, "seed": 4,
    ...     "seed_source": "entropy", "time": "t0", "space_sha256": "ab", "n_schemes": 9, "allocation": {"1": [2]}}])
    True
    """
    if draw is None:
        return ""
    from crt_widgets.core.io.drawlog import SEED_SOURCES

    n = int(draw["draw"])
    lead = (f"<p>This is <b>draw {n} of this session</b>"
            + (f" (session {html.escape(str(draw.get('session')))})" if draw.get("session") else "")
            + f", made at {html.escape(str(draw['time']))} with seed <code>{html.escape(str(draw['seed']))}</code>, "
            f"{html.escape(SEED_SOURCES.get(draw['seed_source'], str(draw['seed_source'])))}; from the "
            f"{int(draw['n_schemes']):,} schemes of the space with SHA-256 <code>{html.escape(draw['space_sha256'])}"
            "</code>.</p>")
    if not earlier:
        return lead + "<p>No earlier draw in this session.</p>"
    rows = "".join(
        f"<tr><td>{int(e['draw'])}</td><td>{html.escape(str(e['time']))}</td><td>{html.escape(str(e['seed']))}</td>"
        f"<td>{html.escape(str(e['seed_source']))}</td><td><code>{html.escape(e['space_sha256'][:16])}…</code></td>"
        f"<td>{html.escape('; '.join(f'arm {k}: ' + ', '.join(map(str, v)) for k, v in e['allocation'].items()))}</td></tr>"
        for e in earlier)
    return (lead + f"<p>Earlier draws of this session ({len(earlier)}):</p><table class='t'><tr><th>draw</th>"
            "<th>time (UTC)</th><th>seed</th><th>seed chosen</th><th>space SHA-256</th><th>clusters by arm</th></tr>"
            f"{rows}</table>")


def allocation_report(allocation, draw: dict | None = None, earlier: Sequence[dict] = ()) -> str:
    """A self-contained HTML document describing the design, the draw and its checks
    (a two-arm :class:`Allocation` or a multi-arm allocation); ``draw`` and ``earlier``: the draw's log
    entry and the session's earlier ones (see :func:`draw_section`)."""
    from crt_widgets.widgets.binning import histogram_data, zoom_data

    d = allocation.design
    audit = allocation.audit()
    best = d.n_best
    constraints = getattr(d, "constraints", None)
    rule = (f"the {best:,} best schemes" if best is not None else
            f"schemes scoring at or below the {d.cutoff:g} quantile (cutoff score {d.cutoff_score:.4f})"
            if constraints is None else f"schemes satisfying the constraints {', '.join(constraints)}")
    if hasattr(d, "multiperiod"):  # the order of a multi-period trial: clusters to sequences
        method = ORDER_METHOD.format(kind=d.multiperiod.kind, metric=d.metric, balance=ORDER_BALANCE[d.balance],
                                     rule=rule)
    else:
        method = METHOD.format(metric=d.metric, rule=rule)
    hist = _svg(score_histogram(histogram_data(d), d.cutoff_score, allocation.score, zoom_data(d)))
    # a static file can hold a big heatmap, but past a few hundred clusters it is unreadable and heavy
    heat = ("" if len(d.cluster_ids) > 4 * HEATMAP_MAX_CLUSTERS or not d.validity.available else
            _svg(coincidence_heatmap(d.validity.same_fraction, d.cluster_ids, *heatmap_reference(d))))
    params = pd.DataFrame({"value": {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                                     for k, v in audit["parameters"].items()}})
    record = pd.DataFrame({"value": {"package": f"crt-widgets {audit['package_version']}", "created (UTC)": audit["created"],
                                     "draw seed": str(audit["draw_seed"]), "input data SHA-256": audit["data_sha256"],
                                     "space SHA-256": sha256_of_space(d),
                                     "candidate schemes": f"{audit['n_candidates']:,}",
                                     "constrained space": f"{audit['n_constrained']:,}",
                                     "chosen score": f"{audit['chosen_score']:.4f}"}})
    messages = "".join(f"<li>{html.escape(m)}</li>" for m in allocation.messages.values())
    warnings = "".join(f"<li>{html.escape(m)}</li>" for m in d.diagnostics) or "<li>none</li>"
    validity = (_table(d.validity.table()) if d.validity.available
                else f"<p>{html.escape(d.validity.unavailable)}</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Randomization report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}}
table.t{{border-collapse:collapse;margin:.5em 0 1.5em}} .t td,.t th{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}}
.t th{{text-align:left}} h2{{border-bottom:2px solid #2b7bba;padding-bottom:2px}}</style></head>
<body><h1>Randomization report</h1>
<p>{html.escape(method)}</p>
<h2>Record</h2>{draw_section(draw, earlier)}{_table(record)}
<h2>Parameters</h2>{_table(params)}
<h2>Messages</h2><ul>{messages}</ul>
<h2>Input data</h2><p>{len(d.data)} clusters; SHA-256 of the CSV below
(downloaded as <code>{html.escape(input_data_name(allocation))}</code>): <code>{audit["data_sha256"]}</code></p>
<div style="overflow-x:auto;font-size:85%">{d.data.to_html(index=False, border=0, classes="t")}</div>
<h2>Allocation</h2>{_table(allocation.allocation.set_index(allocation.allocation.columns[0]))}
<h2>Balance scores</h2>{hist}{_table(allocation.summary)}
<h2>Baseline characteristics by arm</h2>{smd_table_html(allocation.baseline_table, 't')}
<p><small>Standardized mean differences above 0.1 are shaded, above 0.2 in bold red.</small></p>
<h2>Randomization validity</h2><p>How often each pair of clusters shares an arm across the constrained space (Greene 2017).</p>{validity}<h3>Warnings</h3><ul>{warnings}</ul>{heat}
<h2>Reproduce</h2><p>With the input data file and crt-widgets {html.escape(str(audit["package_version"]))}:</p>
<pre style="background:#f6f8fa;padding:10px;overflow:auto">{html.escape(reproduce_code(allocation))}</pre>
</body></html>"""
