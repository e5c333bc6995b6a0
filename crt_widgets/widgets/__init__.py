"""ipywidgets panels: thin views over one state object; charts are functions from results to Altair specs.

>>> from crt_widgets.widgets import TrialApp  # doctest: +SKIP
>>> TrialApp(example="dickinson").widget       # doctest: +SKIP
"""
from __future__ import annotations

from crt_widgets.widgets.startup import defer_slow_imports

defer_slow_imports()  # before Altair is imported: see crt_widgets.widgets.startup

from crt_widgets.widgets.analysis import AnalysisDashboard
from crt_widgets.widgets.app import TrialApp
from crt_widgets.widgets.dashboard import DesignDashboard
from crt_widgets.widgets.power_panel import PowerPanel
from crt_widgets.widgets.state import DesignState

__all__ = ["AnalysisDashboard", "DesignDashboard", "DesignState", "PowerPanel", "TrialApp"]
