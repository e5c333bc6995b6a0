"""The served notebooks, generated from one place: the one app (``notebooks/app.ipynb``, what
``crt-widgets dashboard`` serves) and the design dashboard alone (``notebooks/design.ipynb``); the
package carries a copy of each.

>>> [c.cell_type for c in app_notebook().cells], "TrialApp" in app_notebook().cells[0].source
(['code'], True)
"""
from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).parent
# the copies inside the package (notebooks/app.ipynb and notebooks/design.ipynb are the same)
PACKAGED_APP = HERE / "app.ipynb"
PACKAGED_NOTEBOOK = HERE / "design.ipynb"

APP_CODE = """# A cluster randomized trial from design to analysis (serve with: crt-widgets dashboard)
from crt_widgets.widgets.app import TrialApp

app = TrialApp(example="dickinson")
app.widget"""

CODE = """# Covariate-constrained randomization of a cluster randomized trial (serve with: voila design.ipynb)
from crt_widgets.widgets import DesignDashboard

dashboard = DesignDashboard(example="dickinson")
dashboard.widget"""


def _notebook(code: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    # one code cell: the app carries its own title and help (Voila would show a markdown cell too)
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def app_notebook() -> nbformat.NotebookNode:
    """The notebook of the one app: Design, Analysis and Power."""
    return _notebook(APP_CODE)


def dashboard_notebook() -> nbformat.NotebookNode:
    """The notebook of the design dashboard alone."""
    return _notebook(CODE)


def write_dashboard_notebook(path: str | Path, app: bool = False) -> Path:
    """Write the design dashboard's notebook (or, with ``app``, the one app's) to ``path``."""
    path = Path(path)
    nbformat.write(app_notebook() if app else dashboard_notebook(), str(path))
    return path
