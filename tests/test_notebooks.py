"""Every notebook runs top to bottom; the dashboard notebook is the one the package serves."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from crt_widgets.widgets.notebook import PACKAGED_NOTEBOOK, dashboard_notebook

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path):
    nb = nbformat.read(str(path), as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_dashboard_notebook_is_generated_and_packaged():
    expected = [c.source for c in dashboard_notebook().cells]
    for path in (Path(__file__).parents[1] / "notebooks" / "design.ipynb", PACKAGED_NOTEBOOK):
        assert [c.source for c in nbformat.read(str(path), as_version=4).cells] == expected
