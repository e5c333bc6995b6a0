"""A Voila server on a free localhost port, and Debian's Chromium driven by Playwright (never a downloaded browser)."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, missing_chromium


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(command: list[str], url: str, name: str, env: dict | None = None, timeout: float = 90):
    """Start a server process, wait until ``url`` answers, yield, then stop it (whatever happened)."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"{name} exited before serving")
                time.sleep(0.5)
        else:
            pytest.fail(f"{name} did not start within {timeout:g} s")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def records(tmp_path_factory):
    """The folder the served dashboard saves every drawn allocation in (``--records``)."""
    return tmp_path_factory.mktemp("records")


@pytest.fixture(scope="session")
def voila_url(records):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serving([sys.executable, "-m", "crt_widgets", "dashboard", "--port", str(port), "--records", str(records)],
                 url, "Voila"):
        yield url


@pytest.fixture(scope="session")
def browser():
    missing_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 2300}, accept_downloads=True)
    p = context.new_page()
    yield p
    context.close()
