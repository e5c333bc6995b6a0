"""The app's Design section in a real browser: served by Voila, rendered offline, driven like a user would."""
from __future__ import annotations

import re
import sys
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect
from support import ARTIFACTS

from crt_widgets import ConstrainedDesign
from crt_widgets.datasets import load_dickinson

pytestmark = [pytest.mark.browser, pytest.mark.slow]
COVARIATES = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]


def _type_into(page, widget: str, field: str, label: str, value: str) -> None:
    """Type a value into the ``field`` of the labelled ``widget`` and confirm with Enter, as a user does."""
    box = page.locator(widget, has=page.locator(".widget-label", has_text=re.compile(f"^{label}$")))
    target = box.locator(field).first
    target.click()
    target.press("Control+A")
    target.type(value)
    target.press("Enter")


def _set_readout(page, label: str, value: str) -> None:
    """A slider's editable readout."""
    _type_into(page, ".widget-slider", ".widget-readout", label, value)


def _set_text(page, label: str, value: str) -> None:
    """A labelled text box (IntText)."""
    _type_into(page, ".widget-text", "input", label, value)


def _kept(page) -> str:
    return page.locator(".crt-kept").first.inner_text()


def _draw(page, seed: str) -> None:
    """Type the draw's seed, press Draw, confirm the draw the confirmation names."""
    _type_into(page, ".widget-text", "input", "draw seed", seed)
    # the kernel has the whole seed (typing sends it a key at a time; a click can overtake the last keys)
    expect(page.locator(".crt-seed-note")).to_contain_text(f"seed {seed} (typed)", timeout=30_000)
    page.get_by_role("button", name="Draw allocation").click()
    expect(page.locator(".crt-pending-seed")).to_have_text(seed, timeout=30_000)
    page.get_by_role("button", name="Confirm draw").click()


def test_dashboard_end_to_end(page, voila_url, records, tmp_path):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(voila_url, timeout=120_000)
    page.wait_for_selector(".crt-kept", timeout=120_000)
    page.wait_for_selector(".vega-embed svg, .vega-embed canvas", timeout=60_000)
    assert _kept(page) == "1,288"
    # both charts drawn by vega-embed: the score histogram (with its zoom) and the pair heatmap
    page.wait_for_function("() => document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length >= 2",
                           timeout=60_000)
    assert "Balance scores of all candidate schemes" in page.locator(".vega-embed").first.inner_html()
    page.screenshot(path=str(ARTIFACTS / "01_loaded.png"), full_page=True)
    # charts render with no network: every request went to this machine
    hosts = {urlparse(u).hostname for u in requests if u.startswith("http")}
    assert hosts <= {"127.0.0.1", "localhost"}, [u for u in requests if "127.0.0.1" not in u]

    smd_before = page.locator(".crt-smd-distribution").first.inner_text()
    histogram_before = page.locator(".vega-embed svg").first.inner_html()
    _set_readout(page, "inciis", "4")
    page.wait_for_function("() => document.querySelector('.crt-smd-distribution') && "
                           f"document.querySelector('.crt-smd-distribution').innerText !== {smd_before!r}",
                           timeout=30_000)
    _set_readout(page, "cutoff q", "0.05")
    core = ConstrainedDesign(load_dickinson(), COVARIATES, 8, categorical=["location", "incomecat"],
                             cluster_id="county", weights=[1, 4, 1, 1, 1], cutoff=0.05, seed=12345)
    page.wait_for_function(f"() => document.querySelector('.crt-kept').innerText === '{len(core.space_index):,}'",
                           timeout=30_000)
    # redrawn in place (the chart's update is its own message: wait for it)
    page.wait_for_function("(before) => document.querySelector('.vega-embed svg').innerHTML !== before",
                           arg=histogram_before, timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "02_rescored.png"), full_page=True)

    _draw(page, "12345")
    page.wait_for_selector(".crt-drawn", timeout=30_000)
    with page.expect_download() as info:
        page.get_by_text("Allocation (CSV)").click()
    path = tmp_path / "allocation.csv"
    info.value.save_as(path)
    downloaded = pd.read_csv(path)
    np.testing.assert_array_equal(downloaded["arm"].to_numpy(), core.draw(12345).arm)
    assert downloaded["county"].tolist() == list(range(1, 17))
    # the kernel also kept a copy on disk, identical to the download
    saved = sorted(records.glob("*/allocation_seed12345.csv"))
    assert len(saved) == 1 and saved[0].read_text() == path.read_text()
    with page.expect_download() as info:
        page.get_by_text("Report (HTML)").click()
    report = tmp_path / "report.html"
    info.value.save_as(report)
    text = report.read_text()
    # readable offline: charts are inline SVG, nothing is fetched
    assert text.count("<svg") == 2 and "<script" not in text and "12345" in text
    page.screenshot(path=str(ARTIFACTS / "03_drawn.png"), full_page=True)
    report_page = page.context.new_page()
    report_page.goto(report.as_uri())
    report_page.screenshot(path=str(ARTIFACTS / "05_report.png"), full_page=True)
    report_page.close()

    # dragging the cutoff handle updates the count while the mouse moves, nothing to press
    before = _kept(page)
    handle = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=re.compile("^cutoff q$"))) \
        .locator(".noUi-handle").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] - 80, box["y"] + box["height"] / 2, steps=8)
    page.wait_for_function("(before) => document.querySelector('.crt-kept').innerText !== before", arg=before,
                           timeout=30_000)
    page.mouse.up()

    bad = tmp_path / "bad.csv"
    bad.write_text("just one column\n1\n2\n")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("Upload CSV")).click()
    chooser.value.set_files(str(bad))
    page.wait_for_selector(".crt-error", timeout=30_000)
    assert "at least two columns" in page.locator(".crt-error").first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "04_bad_upload.png"), full_page=True)


def test_own_file_and_four_arms(page, voila_url, tmp_path):
    from crt_widgets.core.randomization.multiarm import MultiArmDesign
    from crt_widgets.widgets.panels import read_uploaded_csv
    from crt_widgets.widgets.state import DesignState

    page.goto(voila_url, timeout=120_000)
    page.wait_for_selector(".crt-kept", timeout=120_000)
    # a European spreadsheet export: semicolons and decimal commas
    mine = tmp_path / "my_counties.csv"
    mine.write_bytes(load_dickinson()[["county", "location", "inciis", "hispanic", "income"]]
                     .to_csv(index=False, sep=";", decimal=",").encode())
    expected = DesignState()
    expected.load(read_uploaded_csv(mine.read_bytes(), mine.name), mine.name)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("Upload CSV")).click()
    chooser.value.set_files(str(mine))
    page.wait_for_function("() => document.body.innerText.includes('my_counties.csv')", timeout=30_000)
    page.wait_for_function(f"() => document.querySelector('.crt-kept').innerText === '{expected.kept:,}'",
                           timeout=30_000)
    # own data: choosing covariates comes first (the tab switch arrives in its own message: wait for it)
    expect(page.get_by_role("tab", name="Covariates")).to_have_attribute("aria-selected", "true", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "06_own_file.png"), full_page=True)

    page.get_by_text("Arms & seed").click()
    _set_text(page, "arms", "4")
    data = read_uploaded_csv(mine.read_bytes(), mine.name)
    core = MultiArmDesign(data, expected.covariates, 4, categorical=expected.categorical, cluster_id="county",
                          size=expected.size, seed=expected.seed, cutoff=expected.cutoff,
                          weights=[1.0] * len(expected.covariates))
    page.wait_for_function(f"() => document.querySelector('.crt-kept').innerText === '{len(core.space_index):,}'",
                           timeout=60_000)
    _draw(page, "31")
    page.wait_for_selector(".crt-drawn", timeout=30_000)
    with page.expect_download() as info:
        page.get_by_text("Allocation (CSV)").click()
    path = tmp_path / "four_arms.csv"
    info.value.save_as(path)
    downloaded = pd.read_csv(path)
    assert downloaded.iloc[:, 1].astype(str).tolist() == [str(v) for v in core.draw(31).allocation.iloc[:, 1]]
    page.screenshot(path=str(ARTIFACTS / "07_four_arms.png"), full_page=True)


def test_power_tab_answers_at_once(page, voila_url):
    from crt_widgets.core.power.analytic import crt_power

    page.goto(voila_url, timeout=120_000)
    page.wait_for_selector(".crt-kept", timeout=120_000)
    page.get_by_role("tab", name="Power").click()
    default = crt_power(0.3, icc=0.05, cluster_size=50, clusters_per_arm=8).power
    expect(page.locator(".crt-power").first).to_contain_text(f"Power {default:.3f}", timeout=30_000)
    _set_text(page, "ICC", "0.01")
    lower_icc = crt_power(0.3, icc=0.01, cluster_size=50, clusters_per_arm=8).power
    expect(page.locator(".crt-power").first).to_contain_text(f"Power {lower_icc:.3f}", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "09_power.png"), full_page=True)


@pytest.fixture(scope="module")
def analysis_url():
    from pathlib import Path

    from conftest import free_port, serving

    port = free_port()
    notebook = Path(__file__).parents[2] / "notebooks" / "analysis_dashboard.ipynb"
    url = f"http://127.0.0.1:{port}/"
    with serving([sys.executable, "-m", "crt_widgets", "dashboard", "--port", str(port), "--notebook", str(notebook)],
                 url, "Voila"):
        yield url


def test_analysis_dashboard_served_offline(page, analysis_url):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(analysis_url, timeout=120_000)
    expect(page.locator(".crt-statement").first).to_contain_text("p-value = 0.04196", timeout=120_000)
    page.wait_for_selector(".vega-embed svg", timeout=60_000)
    assert "Permutation distribution over 1,287 schemes" in page.locator(".vega-embed").first.inner_html()
    page.locator(".widget-toggle-buttons").get_by_text("continuous").click()  # a linear model of the 0/1 outcome
    expect(page.locator(".crt-statement").first).to_contain_text("(gaussian, two-sided)", timeout=60_000)
    expect(page.locator(".crt-models").first).to_contain_text("REML", timeout=60_000)  # the linear mixed model
    page.screenshot(path=str(ARTIFACTS / "10_analysis.png"), full_page=True)
    hosts = {urlparse(u).hostname for u in requests if u.startswith("http")}
    assert hosts <= {"127.0.0.1", "localhost"}, sorted(hosts)
