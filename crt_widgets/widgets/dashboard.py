"""The design dashboard: all panels over one :class:`DesignState`, laid out for JupyterLab and Voilà.

>>> dash = DesignDashboard(example="dickinson")
>>> dash.state.kept
1288
"""
from __future__ import annotations

import os

import ipywidgets as w

from crt_widgets.widgets.accessibility import PageHelpers
from crt_widgets.widgets.glossary import glossary_html
from crt_widgets.widgets.panels import (EXAMPLES, ArmPanel, CovariatePanel, CutoffPanel, DataPanel, DrawPanel, OutputPanel,
                                        WeightPanel, load_example)
from crt_widgets.widgets.power_panel import PowerPanel
from crt_widgets.widgets.reflow import ChartReflow
from crt_widgets.widgets.space_build import SpaceBuildPanel
from crt_widgets.widgets.session_panel import SessionPanel
from crt_widgets.widgets.state import DesignState
from crt_widgets.widgets.theme import PAGE_CSS

RECORDS_VARIABLE = "CRT_WIDGETS_RECORDS"  # how the dashboard command tells the kernel where to keep records

HEADING = "<h2 style='margin:0'>crt-widgets: covariate-constrained randomization</h2>"
INTRO = ("<p style='margin:0 0 6px'>Load your clusters (one row each) or an example, set the covariates and their "
         "weights, move the cutoff and watch the balance and validity of the constrained space; then draw (the "
         "allocation stays concealed until then, and every draw is logged), and download what the trial's records "
         "need.</p>")
TITLE = HEADING + INTRO
# tabs of the left column, in this order
TABS = ("Balance", "Covariates", "Arms & seed", "Power")


class DesignDashboard:
    """The whole dashboard; ``.widget`` is what a notebook displays.

    Parameters
    ----------
    example : a bundled example to start with (``"dickinson"``, ``"edlead"``, ``"callcenter"``) or None.
    offline : render charts with the JavaScript bundled in Altair (no network), as clinics' networks need.
    records_dir : a folder where every draw is logged (``draws.jsonl``) and its files written (default: the
        ``CRT_WIDGETS_RECORDS`` environment variable, set by ``crt-widgets dashboard --records``; none if unset).
    power_tab : show the analytic power in a tab (the app shows power in its own section instead).
    title : show the dashboard's heading (the app has its own).
    """

    def __init__(self, example: str | None = "dickinson", offline: bool = True,
                 records_dir: str | None = None, power_tab: bool = True, title: bool = True) -> None:
        if offline:
            from crt_widgets.widgets.startup import enable_offline_charts

            enable_offline_charts()  # the bundle kept between kernels (startup.py)
        self.state = DesignState(records_dir=records_dir if records_dir is not None
                                 else os.environ.get(RECORDS_VARIABLE, ""))
        self.data = DataPanel(self.state)
        self.covariates = CovariatePanel(self.state)
        self.weights = WeightPanel(self.state)
        self.arms = ArmPanel(self.state)
        self.cutoff = CutoffPanel(self.state)
        self.outputs = OutputPanel(self.state)
        self.draw = DrawPanel(self.state)
        self.session = SessionPanel(self.state)  # save, re-open, undo
        self.power = PowerPanel(self.state) if power_tab else None
        # tabs keep the controls used most (weights, cutoff) beside the histogram on a laptop screen
        balance = w.VBox([self.weights.widget, w.HTML("<b>Cutoff</b>"), self.cutoff.controls])
        tabs = [balance, self.covariates.widget, self.arms.widget] + ([self.power.widget] if power_tab else [])
        self.tabs = w.Tab(children=tabs)
        for i, name in enumerate(TABS[:len(tabs)]):
            self.tabs.set_title(i, name)
        self.building = SpaceBuildPanel(self.state.building)  # progress and Cancel while a large space is built
        # controls and results side by side when both fit, else the results below the controls (the
        # classes of theme.PAGE_CSS let each shrink to the screen's width); the progress bar sits below the
        # tabs, with the kept count: in view on a narrow screen too
        left = w.VBox([self.tabs, self.building.widget, self.cutoff.status, self.draw.widget],
                      layout=w.Layout(flex="0 1 470px", min_width="0", max_width="100%"))
        right = w.VBox([self.outputs.widget], layout=w.Layout(flex="1 1 420px", min_width="0", overflow="auto"))
        columns = w.HBox([left, right], layout=w.Layout(flex_flow="row wrap"))
        columns.add_class("crt-columns")
        # on its own the dashboard carries the glossary and the page helper (in the app, the app carries them)
        extras = [PageHelpers(), w.HTML(glossary_html())] if title else []
        self.widget = w.VBox([w.HTML(PAGE_CSS), ChartReflow(), w.HTML(TITLE if title else INTRO), self.data.widget,
                              self.session.widget, columns, *extras])
        self.widget.add_class("crt-section")
        # the user's own file: choosing the cluster id and covariates comes first
        self.state.observe(self._new_source, names="source")
        if example:
            label = next((k for k, v in EXAMPLES.items() if v == example), example)
            data, kwargs = load_example(example)
            self.state.load(data, label, **kwargs)

    def _new_source(self, change) -> None:
        self.tabs.selected_index = 0 if change["new"] in EXAMPLES else 1

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
