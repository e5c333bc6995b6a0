"""Charts as wide as their box, redrawn when the box changes width.

Vega-Lite's ``width="container"`` measures the chart's box when the chart is drawn and again on the
window's ``resize`` event only. A box also changes width without one: a tab shown for the first time (its
charts were drawn at width 0), the column reflowing below the controls, JupyterLab's file browser opening.
:class:`ChartReflow`, an invisible widget each section carries, watches the width of every chart
(class ``crt-chart``) with a ``ResizeObserver`` and sends the window's ``resize`` event when one changes,
and again, for up to 10 s, while a chart drawn anew does not fit its box (its box was hidden while it was
drawn, or its view was not yet listening); the page needs nothing from a network (the script is in the widget).

>>> chart = container_chart()
>>> "crt-chart" in chart._dom_classes, chart.embed_options["renderer"]
(True, 'svg')
>>> ChartReflow().layout.display
'none'
"""
from __future__ import annotations

import altair as alt
import anywidget
import pandas as pd

from crt_widgets.widgets.embedding import embed_options

# SVG, so that a dark theme's CSS can colour the text; the menu saves the chart as SVG or PNG and has no
# "Open in Vega Editor", which would send the chart with its data to a website
EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False, "editor": False}}

# Installed once per page (several sections carry the widget); only a change of a chart's width counts,
# so a chart redrawn at its new width (a new height) does not call for another round.
_ESM = """
export default {
  render({ el }) {
    el.style.display = "none";
    if (window.__crtChartReflow) return;
    window.__crtChartReflow = true;
    const widths = new WeakMap();
    // after a change, rounds 250 ms apart for up to 10 s: on a busy machine a chart may still be drawing (its
    // view listening to no event yet) for seconds; a round sends the event only while a shown chart misfits
    let rounds = 0;
    const settle = () => {
      const running = rounds > 0;
      rounds = 40;
      if (running) return;
      const round = () => {
        const misfits = [...document.querySelectorAll(".crt-chart")].some(misfit);
        if (misfits) window.dispatchEvent(new Event("resize"));
        rounds = misfits ? rounds - 1 : 0;
        if (rounds > 0) setTimeout(round, 250);
      };
      requestAnimationFrame(round);
    };
    const observer = new ResizeObserver((entries) => {
      let changed = false;
      for (const entry of entries) {
        const width = Math.round(entry.contentRect.width);
        if (widths.get(entry.target) !== width) { widths.set(entry.target, width); changed = true; }
      }
      if (changed) settle();
    });
    // a chart drawn anew (a new specification) while its box was hidden or changing measured the wrong width
    const misfit = (chart) => {
      const svg = chart.querySelector("svg");
      if (!svg || !chart.offsetWidth) return false;
      const style = getComputedStyle(chart);
      const box = chart.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      const width = svg.getBoundingClientRect().width;
      return width > box + 1 || width < box - 40;
    };
    const watch = (node) => {
      if (node.nodeType !== 1) return;
      if (node instanceof SVGSVGElement) {
        const chart = node.closest(".crt-chart");
        if (chart) settle();
        return;
      }
      if (node instanceof SVGElement) return;
      if (node.classList.contains("crt-chart")) observer.observe(node);
      node.querySelectorAll(".crt-chart").forEach((chart) => observer.observe(chart));
    };
    watch(document.body);
    // a chart's element may get its class after it is on the page: class changes count as well as new nodes
    new MutationObserver((records) => {
      for (const record of records) {
        if (record.type === "attributes") {
          if (record.target.classList.contains("crt-chart")) observer.observe(record.target);
        } else {
          record.addedNodes.forEach(watch);
        }
      }
    }).observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ["class"] });
  },
};
"""


class ChartReflow(anywidget.AnyWidget):
    """Invisible: redraws every ``crt-chart`` at its box's width when that width changes (see the module)."""

    _esm = _ESM

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.layout.display = "none"


def container_chart(file_name: str = "crt_chart", spec: dict | None = None) -> alt.JupyterChart:
    """A live chart whose specification may use ``width="container"``: it fills its box (class
    ``crt-chart``, see :data:`~crt_widgets.widgets.theme.PAGE_CSS`), drawn as SVG (:data:`EMBED_OPTIONS`);
    its menu saves it as ``file_name``.svg or .png (:func:`~crt_widgets.widgets.embedding.embed_options`)."""
    options = {**EMBED_OPTIONS, **embed_options(file_name)}
    chart = alt.JupyterChart(alt.Chart(pd.DataFrame({"x": []})).mark_bar(), embed_options=options)
    if spec is not None:
        chart.spec = spec
    chart.add_class("crt-chart")
    return chart
