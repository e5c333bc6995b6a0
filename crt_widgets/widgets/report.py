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

import pandas as pd

from crt_widgets.widgets.charts import (HEATMAP_MAX_CLUSTERS, coincidence_heatmap, heatmap_reference,
                                       score_histogram)
from crt_widgets.widgets.formatting import allocation_messages, smd_table_html

METHOD = ("Covariate-constrained randomization (Raab and Butcher 2001; Li et al. 2016, 2017), as implemented "
          "by cvcrand (Yu et al. 2019): every candidate scheme was scored by the {metric} balance metric over the "
          "standardised covariates; the constrained space kept {rule}; one scheme was chosen uniformly at random "
          "from it with the recorded seed. Validity was checked as in Greene (2017): how often each pair of "
          "clusters shares an arm in the constrained space.")


def _svg(chart) -> str:
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_dict())


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.{digits}f}", border=0, classes="t")


def allocation_report(allocation) -> str:
    """A self-contained HTML document describing the design, the draw and its checks
    (a two-arm :class:`Allocation` or a multi-arm allocation)."""
    from crt_widgets.widgets.downloads import allocation_audit
    from crt_widgets.widgets.state import _diagnostics, histogram_data, zoom_data

    d = allocation.design
    audit = allocation_audit(allocation)
    best = getattr(d, "n_schemes", None) or getattr(d, "n_best", None)
    constraints = getattr(d, "constraints", None)
    rule = (f"the {best:,} best schemes" if best is not None else
            f"schemes scoring at or below the {d.cutoff:g} quantile (cutoff score {d.cutoff_score:.4f})"
            if constraints is None else f"schemes satisfying the constraints {', '.join(constraints)}")
    hist = _svg(score_histogram(histogram_data(d), d.cutoff_score, allocation.score, zoom_data(d)))
    # a static file can hold a big heatmap, but past a few hundred clusters it is unreadable and heavy
    heat = ("" if len(d.cluster_ids) > 4 * HEATMAP_MAX_CLUSTERS else
            _svg(coincidence_heatmap(d.validity.same_fraction, d.cluster_ids, *heatmap_reference(d))))
    params = pd.DataFrame({"value": {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                                     for k, v in audit["parameters"].items()}})
    record = pd.DataFrame({"value": {"package": f"crt-widgets {audit['package_version']}", "created (UTC)": audit["created"],
                                     "draw seed": str(audit["draw_seed"]), "input data SHA-256": audit["data_sha256"],
                                     "candidate schemes": f"{audit['n_candidates']:,}",
                                     "constrained space": f"{audit['n_constrained']:,}",
                                     "chosen score": f"{audit['chosen_score']:.4f}"}})
    messages = "".join(f"<li>{html.escape(m)}</li>" for m in allocation_messages(allocation).values())
    warnings = "".join(f"<li>{html.escape(m)}</li>" for m in _diagnostics(d)) or "<li>none</li>"
    validity = d.validity.table() if hasattr(d.validity, "table") else d.validity.constrained.table()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Randomization report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}}
table.t{{border-collapse:collapse;margin:.5em 0 1.5em}} .t td,.t th{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}}
.t th{{text-align:left}} h2{{border-bottom:2px solid #2b7bba;padding-bottom:2px}}</style></head>
<body><h1>Randomization report</h1>
<p>{html.escape(METHOD.format(metric=d.metric, rule=rule))}</p>
<h2>Record</h2>{_table(record)}
<h2>Parameters</h2>{_table(params)}
<h2>Messages</h2><ul>{messages}</ul>
<h2>Allocation</h2>{_table(allocation.allocation.set_index(allocation.allocation.columns[0]))}
<h2>Balance scores</h2>{hist}{_table(allocation.summary)}
<h2>Baseline characteristics by arm</h2>{smd_table_html(allocation.baseline_table, 't')}
<p><small>Standardized mean differences above 0.1 are shaded, above 0.2 in bold red.</small></p>
<h2>Randomization validity</h2><p>How often each pair of clusters shares an arm across the constrained space (Greene 2017).</p>{_table(validity)}<h3>Warnings</h3><ul>{warnings}</ul>{heat}
</body></html>"""
