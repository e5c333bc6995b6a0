"""The dashboard notebook, generated from one place: ``notebooks/design.ipynb`` and what
``crt-widgets dashboard`` serves are both this.

>>> [c.cell_type for c in dashboard_notebook().cells]
['code']
"""
from __future__ import annotations

from pathlib import Path

import nbformat

# the copy inside the package, served by ``crt-widgets dashboard`` (notebooks/design.ipynb is the same)
PACKAGED_NOTEBOOK = Path(__file__).with_name("design.ipynb")

CODE = """# Covariate-constrained randomization of a cluster randomized trial (serve with: voila design.ipynb)
from crt_widgets.widgets import DesignDashboard

dashboard = DesignDashboard(example="dickinson")
dashboard.widget"""


def dashboard_notebook() -> nbformat.NotebookNode:
    """The notebook that assembles the dashboard."""
    nb = nbformat.v4.new_notebook()
    # one code cell: the dashboard carries its own title and help (Voila would show a markdown cell too)
    nb.cells = [nbformat.v4.new_code_cell(CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def write_dashboard_notebook(path: str | Path) -> Path:
    """Write the dashboard notebook to ``path``."""
    path = Path(path)
    nbformat.write(dashboard_notebook(), str(path))
    return path
