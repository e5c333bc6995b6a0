"""What Binder needs to open the dashboard: an environment, the package installed, the notebook the badge opens."""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from urllib.parse import unquote

from crt_widgets.commands.dashboard import add_arguments

ROOT = Path(__file__).parents[1]


def test_binder_installs_the_package():
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)  # repo2docker runs it as a program
    assert re.search(r"pip install .*\.\s*$", post_build.read_text(), re.MULTILINE)
    requirements = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("voila") for line in requirements)  # the server extension behind voila/render


def test_badge_opens_an_existing_notebook():
    badges = re.findall(r"mybinder\.org/v2/gh/[^)\s]+urlpath=([^)\s&]+)", (ROOT / "README.md").read_text())
    assert badges, "README has no Binder badge"
    for urlpath in badges:
        path = unquote(urlpath)
        assert path.startswith("voila/render/")
        assert (ROOT / path.removeprefix("voila/render/")).exists(), path


def test_demo_script_serves_the_dashboard_on_localhost():
    demo = (ROOT / "scripts" / "demo").read_text()
    assert os.access(ROOT / "scripts" / "demo", os.X_OK)
    assert "_env.sh" in demo and re.search(r"crt-widgets dashboard", demo)
    # the command it runs listens on this machine only unless told otherwise
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).ip == "127.0.0.1"


def test_binder_opens_the_one_app_and_takes_large_uploads():
    badge = re.search(r"urlpath=([^)\s&]+)", (ROOT / "README.md").read_text()).group(1)
    assert unquote(badge) == "voila/render/notebooks/app.ipynb"
    assert "write_jupyter_server_config()" in (ROOT / "binder" / "postBuild").read_text()


def test_demo_serves_the_one_app():
    from crt_widgets.widgets.notebook import PACKAGED_APP

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).notebook is None  # no --notebook: the packaged app (notebooks/app.ipynb)
    assert PACKAGED_APP.name == "app.ipynb" and "TrialApp" in PACKAGED_APP.read_text()
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/demo     # the main job: the app (Design, Analysis, Power)" in readme


def test_the_readme_shows_a_small_screenshot_of_the_app():
    assert "](docs/app.png)" in (ROOT / "README.md").read_text()
    png = ROOT / "docs" / "app.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 300_000
