"""The dashboard notebook, generated from one place: ``notebooks/design.ipynb`` and what
``crt-widgets dashboard`` serves are both this.

>>> [c.cell_type for c in dashboard_notebook().cells]
['markdown', 'code']
"""
from __future__ import annotations

from pathlib import Path

import nbformat

INTRO = """# Designing a cluster randomized trial

Covariate-constrained randomization with crt-widgets: load your clusters (or an example), choose the
covariates and weights, set the cutoff, check balance and validity, then draw and download the allocation,
the constrained space, the audit record and a report for the trial master file."""

CODE = """from crt_widgets.widgets import DesignDashboard

dashboard = DesignDashboard(example="dickinson")
dashboard.widget"""


def dashboard_notebook() -> nbformat.NotebookNode:
    """The notebook that assembles the dashboard."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(INTRO), nbformat.v4.new_code_cell(CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def write_dashboard_notebook(path: str | Path) -> Path:
    """Write the dashboard notebook to ``path``."""
    path = Path(path)
    nbformat.write(dashboard_notebook(), str(path))
    return path
