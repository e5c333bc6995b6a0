"""The dashboard notebook in JupyterLab itself: run its cell, the panels and the chart appear (offline)."""
from __future__ import annotations

import json
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
    # no autosave (no "file changed on disk" questions) and no news toast: the test sees only the notebook
    settings = root / ".settings" / "@jupyterlab"
    for plugin, values in {"docmanager-extension/plugin": {"autosave": False},
                           "apputils-extension/notification": {"fetchNews": "false"}}.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".config"), "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
           "JUPYTER_RUNTIME_DIR": str(root / ".runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces")}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               "--IdentityProvider.token=", "--allow-root", f"--ServerApp.root_dir={root}"]
    with serving(command, f"http://127.0.0.1:{port}/api", "JupyterLab", env=env):
        yield f"http://127.0.0.1:{port}/lab/tree/design.ipynb"


def _accept_dialogs(page) -> list[str]:
    """Accept any dialog Lab put up (its default button, as a user pressing Enter); returns their texts.

    A run asked for before the kernel's session is ready makes Lab ask which kernel to use; its
    default is the notebook's own Python 3 kernel."""
    texts = []
    for _ in range(5):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count() or not dialog.first.is_visible():
            break
        texts.append(" ".join(dialog.first.inner_text().split()))
        accept = dialog.first.locator(".jp-Dialog-button.jp-mod-accept")
        (accept if accept.count() else dialog.first.locator(".jp-Dialog-button").last).click()
        page.wait_for_timeout(500)
    if texts:  # kept with the screenshots, to see what Lab asked
        with open(ARTIFACTS / "08_jupyterlab_dialogs.txt", "a") as log:
            log.write("\n".join(texts) + "\n")
    return texts


def _run_first_cell(page, attempts: int = 4) -> None:
    """Run the first cell in place (Ctrl+Enter) until its prompt shows it queued or run.

    Lab can report an idle kernel a moment before its session takes requests, and a run asked for in
    that moment is dropped (the prompt stays ``[ ]``) or answered by a dialog: a user would close it
    and press again."""
    cell = page.locator(".jp-Notebook .jp-Cell").first
    dialogs: list[str] = []
    for attempt in range(attempts):
        dialogs += _accept_dialogs(page)
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        try:
            expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=20_000)
            return
        except AssertionError:
            if attempt == attempts - 1:
                page.screenshot(path=str(ARTIFACTS / "08_jupyterlab_run.png"))
                raise AssertionError(f"the cell never ran; Lab's dialogs: {dialogs}") from None


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
