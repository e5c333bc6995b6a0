"""The one app for the whole trial: Design, Analysis, Power and Multi-period in one page (what ``crt-widgets
dashboard`` serves).

The Design section is the design dashboard (the allocation concealed until a confirmed, logged draw);
the Analysis section analyses over the allocation drawn in the Design section, in the same session with
no file in between (or over an uploaded space file, of any size the design saves); the Power section
gives the analytic power, power curves and the simulated power of the design being made. All three
share one :class:`~crt_widgets.widgets.state.DesignState`. The Multi-period section (a stepped-wedge or crossover
design, its power, the randomization of the Design section's clusters to its sequences) is built when first
opened: until then it costs the page nothing.

>>> app = TrialApp(offline=False)
>>> [app.sections.get_title(i) for i in range(4)], app.design.state.kept
(['Design', 'Analysis', 'Power', 'Multi-period'], 1288)
>>> allocation = app.design.state.draw(2024)
>>> app.analysis.state.space is allocation
True
>>> app.sections.selected_index = 3
>>> app.multiperiod.order.design.n_clusters
16
"""
from __future__ import annotations

import ipywidgets as w

from crt_widgets.widgets.accessibility import PageHelpers
from crt_widgets.widgets.analysis import AnalysisDashboard
from crt_widgets.widgets.dashboard import DesignDashboard
from crt_widgets.widgets.glossary import glossary_html
from crt_widgets.widgets.power_panel import PowerSection

SECTIONS = ("Design", "Analysis", "Power", "Multi-period")
MULTIPERIOD = SECTIONS.index("Multi-period")
TITLE = ("<h2 style='margin:0'>crt-widgets: a cluster randomized trial from design to analysis</h2>"
         "<p style='margin:0 0 6px'><b>Design</b> the constrained randomization and draw the allocation; "
         "<b>Analysis</b> of the outcomes over the space it was drawn from; <b>Power</b> of the design being made; "
         "<b>Multi-period</b> designs (stepped wedge, crossover): their power and the randomized order.</p>")


class TrialApp:
    """Design, Analysis and Power sections over one design state; ``.widget`` is what a notebook displays.

    Parameters
    ----------
    example : the bundled example the Design section opens on (``"dickinson"``, ``"edlead"``, ``"callcenter"``).
    offline : render charts with the JavaScript bundled in Altair (no network).
    records_dir : where every draw is logged and its files kept (default: ``crt-widgets dashboard --records``).
    """

    def __init__(self, example: str | None = "dickinson", offline: bool = True, records_dir: str | None = None) -> None:
        self.design = DesignDashboard(example=example, offline=offline, records_dir=records_dir, power_tab=False,
                                      title=False)
        self.analysis = AnalysisDashboard(example=None, offline=offline, title=False)
        self.analysis.follow(self.design)  # the allocation drawn in Design is analysed at once, no file between
        self.power = PowerSection(self.design.state)
        # built on first opening (its orders take a second to list): the page loads as fast as before
        self._multiperiod = None
        self._records_dir = records_dir
        self._multiperiod_box = w.VBox([w.HTML("<i>Building the multi-period section…</i>")])
        self.sections = w.Tab(children=[self.design.widget, self.analysis.widget, self.power.widget,
                                        self._multiperiod_box])
        for i, name in enumerate(SECTIONS):
            self.sections.set_title(i, name)
        self.sections.add_class("crt-sections")
        self.sections.observe(self._opened, names="selected_index")
        # the glossary (terms, references) under the sections; the page helper names the controls for screen readers
        self.glossary = w.HTML(glossary_html())
        self.widget = w.VBox([w.HTML(TITLE), PageHelpers(), self.sections, self.glossary])

    @property
    def multiperiod(self):
        """The Multi-period section (:class:`~crt_widgets.widgets.multiperiod_panel.MultiPeriodSection`), built
        on first use over the Design section's clusters."""
        if self._multiperiod is None:
            from crt_widgets.widgets.multiperiod_panel import MultiPeriodSection

            self._multiperiod = MultiPeriodSection(self.design.state, records_dir=self._records_dir)
            self._multiperiod_box.children = [self._multiperiod.widget]
        return self._multiperiod

    def _opened(self, change) -> None:
        if change["new"] == MULTIPERIOD:
            self.multiperiod

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
