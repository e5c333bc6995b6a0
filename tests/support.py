"""Constants shared by test modules and benchmarks (conftest.py files hold only fixtures)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PAPER_COVARIATES = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]
PAPER_CATEGORICAL = ["location", "incomecat"]

# Debian's Chromium, never a browser downloaded by Playwright
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parents[1] / "artifacts"   # screenshots (git-ignored)


def missing_chromium(path: str = CHROMIUM, ci: str | None = None) -> None:
    """Without Chromium the browser tests skip on a developer's machine, but fail the run under ``CI=true``
    (a CI that cannot run them must not pass as if it had)."""
    if os.path.exists(path):
        return
    message = f"Debian's chromium is not installed at {path} (scripts/install_chromium.sh installs it)"
    if (os.environ.get("CI", "") if ci is None else ci).lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true: {message}; the browser tests must run in CI", pytrace=False)
    pytest.skip(message)
