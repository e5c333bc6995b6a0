"""Constants shared by test modules and benchmarks (conftest.py files hold only fixtures)."""
from __future__ import annotations

from pathlib import Path

PAPER_COVARIATES = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]
PAPER_CATEGORICAL = ["location", "incomecat"]

# Debian's Chromium, never a browser downloaded by Playwright
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parents[1] / "artifacts"   # screenshots (git-ignored)
