"""The one app for the whole trial: Design, Analysis and Power in one page (what ``crt-widgets dashboard`` serves).

The Design section is the design dashboard (the allocation concealed until a confirmed, logged draw);
the Analysis section analyses over the allocation drawn in the Design section, in the same session with
no file in between (or over an uploaded space file, of any size the design saves); the Power section
gives the analytic power, power curves and the simulated power of the design being made. All three
share one :class:`~crt_widgets.widgets.state.DesignState`.

>>> app = TrialApp(offline=False)
>>> [app.sections.get_title(i) for i in range(3)], app.design.state.kept
(['Design', 'Analysis', 'Power'], 1288)
>>> allocation = app.design.state.draw(2024)
>>> app.analysis.state.space is allocation
True
"""
from __future__ import annotations

import ipywidgets as w

from crt_widgets.widgets.accessibility import PageHelpers
from crt_widgets.widgets.analysis import AnalysisDashboard
from crt_widgets.widgets.dashboard import DesignDashboard
from crt_widgets.widgets.glossary import glossary_html
from crt_widgets.widgets.power_panel import PowerSection

SECTIONS = ("Design", "Analysis", "Power")
TITLE = ("<h2 style='margin:0'>crt-widgets: a cluster randomized trial from design to analysis</h2>"
         "<p style='margin:0 0 6px'><b>Design</b> the constrained randomization and draw the allocation; "
         "<b>Analysis</b> of the outcomes over the space it was drawn from; <b>Power</b> of the design being made.</p>")


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
        self.sections = w.Tab(children=[self.design.widget, self.analysis.widget, self.power.widget])
        for i, name in enumerate(SECTIONS):
            self.sections.set_title(i, name)
        self.sections.add_class("crt-sections")
        # the glossary (terms, references) under the sections; the page helper names the controls for screen readers
        self.glossary = w.HTML(glossary_html())
        self.widget = w.VBox([w.HTML(TITLE), PageHelpers(), self.sections, self.glossary])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
