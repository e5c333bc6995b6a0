"""Under CI=true the browser tests cannot quietly skip: a missing Chromium fails the run."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support import missing_chromium

ROOT = Path(__file__).parents[1]


def test_a_missing_chromium_fails_under_ci_and_skips_elsewhere(tmp_path):
    absent = str(tmp_path / "no-chromium")
    with pytest.raises(pytest.fail.Exception, match="CI=true: Debian's chromium is not installed"):
        missing_chromium(absent, ci="true")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        missing_chromium(absent, ci="")
    missing_chromium(__file__, ci="true")  # present: nothing happens


def _install(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    # no apt-get on this PATH and no Chromium at the path given: the script cannot install it
    env = {"PATH": str(tmp_path), "CHROMIUM": str(tmp_path / "no-chromium"), "CI": ci, "HOME": str(tmp_path)}
    return subprocess.run(["/bin/bash", str(ROOT / "scripts" / "install_chromium.sh")], env=env,
                          capture_output=True, text=True)


def test_the_install_script_stops_a_ci_run_without_chromium(tmp_path):
    strict = _install(tmp_path, "true")
    assert strict.returncode == 1 and "CI=true needs the browser tests" in strict.stderr
    relaxed = _install(tmp_path, "")
    assert relaxed.returncode == 0 and "browser tests will be skipped" in relaxed.stderr


def test_ci_runs_with_ci_true():
    text = (ROOT / ".ci" / "run").read_text()
    assert "export CI=true" in text and text.index("export CI=true") < text.index("./scripts/test")
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
