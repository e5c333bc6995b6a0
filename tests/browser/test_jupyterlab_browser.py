"""The dashboard notebook in JupyterLab itself: run its cell, the panels and the chart appear (offline)."""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect
from conftest import free_port, serving
from support import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "design.ipynb"


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (pip install -e .[test] installs it)")
    # a copy in a scratch folder: Lab's autosave must never write outputs into the repository's notebook
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(NOTEBOOK, root / "design.ipynb")
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".config"),
           "JUPYTER_RUNTIME_DIR": str(root / ".runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces")}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               "--IdentityProvider.token=", "--allow-root", f"--ServerApp.root_dir={root}"]
    with serving(command, f"http://127.0.0.1:{port}/api", "JupyterLab", env=env):
        yield f"http://127.0.0.1:{port}/lab/tree/design.ipynb"


def _run_first_cell(page, attempts: int = 3) -> None:
    """Run the first cell in place (Ctrl+Enter) until its prompt shows it queued or run.

    Lab can report an idle kernel a moment before its session takes requests, and a run asked for in
    that moment is dropped without a trace (the prompt stays ``[ ]``): a user would press again."""
    cell = page.locator(".jp-Notebook .jp-Cell").first
    for attempt in range(attempts):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        try:
            expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=20_000)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise


def test_notebook_runs_in_jupyterlab(page, lab_url):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(lab_url, timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # the kernel is up and idle before the cell runs (Lab may still be connecting on a busy machine)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    _run_first_cell(page)
    try:
        page.wait_for_selector(".jp-OutputArea .crt-kept", timeout=120_000)
    finally:  # what Lab showed, whatever happened
        page.screenshot(path=str(ARTIFACTS / "08_jupyterlab_run.png"))
    page.wait_for_selector(".jp-OutputArea .vega-embed svg", timeout=60_000)
    assert page.locator(".jp-OutputArea .crt-kept").first.inner_text() == "1,288"
    assert not page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count()
    page.screenshot(path=str(ARTIFACTS / "08_jupyterlab.png"))
    hosts = {urlparse(u).hostname for u in requests if u.startswith("http")}
    assert hosts <= {"127.0.0.1", "localhost"}, sorted(hosts)
