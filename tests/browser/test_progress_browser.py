"""A large randomization space in the app: 30 clusters in three regions of ten, stratified and enumerated
(16,003,008 schemes). The page shows a progress bar that moves, Cancel stops the build with a message, and
the controls still work afterwards. Every wait is on page state."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect
from support import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BAR_WIDTH = ("() => { const bar = document.querySelector('.crt-build-bar .progress-bar');"
             " return bar ? parseFloat(bar.style.width) || 0 : -1; }")


@pytest.fixture(scope="module")
def sites_csv(tmp_path_factory):
    rng = np.random.default_rng(30)
    sites = pd.DataFrame({"site": [f"S{i:02d}" for i in range(1, 31)], "region": np.repeat(["north", "south", "east"], 10),
                          "beds": rng.integers(20, 400, 30), "staff": rng.normal(50, 12, 30).round(1)})
    path = tmp_path_factory.mktemp("sites") / "sites.csv"
    sites.to_csv(path, index=False)
    return path


def test_large_enumeration_shows_progress_and_cancels(page, voila_url, sites_csv):
    page.set_viewport_size({"width": 1024, "height": 1400})
    page.goto(voila_url, timeout=120_000)
    expect(page.locator(".crt-kept").first).to_have_text("1,288", timeout=120_000)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("Upload CSV")).first.click()
    chooser.value.set_files(str(sites_csv))
    design = page.locator(".crt-section").first
    expect(design).to_contain_text("sites.csv", timeout=60_000)

    # every one of the 155,117,520 schemes is more than the app holds: a message, at once
    page.get_by_role("tab", name="Arms & seed").click()
    schemes = page.locator(".widget-dropdown", has=page.locator(".widget-label", has_text=re.compile("^schemes$")))
    schemes.locator("select").select_option(label="enumerate all")
    expect(design).to_contain_text("155,117,520 possible schemes", timeout=60_000)

    # stratified by region: 16,003,008 schemes, built in the background with a progress bar
    page.get_by_role("tab", name="Balance").click()
    page.get_by_role("checkbox", name="stratify").check()
    progress = page.locator(".crt-build")
    expect(progress).to_be_visible(timeout=60_000)
    expect(page.locator(".crt-build-text")).to_contain_text(re.compile(r"Step \d of 4"), timeout=60_000)
    expect(page.locator(".crt-results").first).to_be_hidden(timeout=30_000)  # nothing of the old space beside it
    page.wait_for_function(f"() => ({BAR_WIDTH})() > 0", timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "progress_1024.png"))
    first = page.evaluate(BAR_WIDTH)
    page.wait_for_function(f"(first) => ({BAR_WIDTH})() !== first", arg=first, timeout=120_000)  # it moves
    text = page.locator(".crt-build-text").inner_text()
    assert re.search(r"Step \d of 4, .*(of 16,003,008 schemes|of [\d,]+ schemes|working)", text), text
    expect(page.locator(".crt-error").filter(has_text="155,117,520")).to_have_count(0)

    page.locator(".crt-build-cancel").click()
    expect(design).to_contain_text("Cancelled: the randomization space was not built", timeout=120_000)
    expect(progress).to_be_hidden(timeout=30_000)
    expect(page.locator(".crt-results").first).to_be_hidden()
    expect(page.get_by_role("button", name="Draw allocation")).to_be_disabled()
    page.screenshot(path=str(ARTIFACTS / "progress_cancelled_1024.png"))

    # the controls still work: sampling builds a space at once
    page.get_by_role("tab", name="Arms & seed").click()
    schemes.locator("select").select_option(label="sample")
    expect(page.locator(".crt-results").first).to_be_visible(timeout=120_000)
    expect(design).not_to_contain_text("Cancelled", timeout=60_000)
    expect(page.get_by_role("button", name="Draw allocation")).to_be_enabled(timeout=30_000)
    assert int(page.locator(".crt-kept").first.inner_text().replace(",", "")) > 0

    # on a phone-sized screen, the whole enumeration this time: the bar, then the space
    page.set_viewport_size({"width": 420, "height": 1400})
    schemes.locator("select").select_option(label="enumerate all")
    expect(progress).to_be_visible(timeout=60_000)   # under the controls: in view on a narrow screen too
    page.wait_for_function(f"() => ({BAR_WIDTH})() > 0", timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "progress_420.png"), full_page=True)
    expect(progress).to_be_hidden(timeout=300_000)
    page.set_viewport_size({"width": 1024, "height": 1400})
    expect(page.locator(".crt-results").first).to_be_visible(timeout=60_000)
    expect(page.locator(".crt-kept").first).to_have_text(re.compile(r"^1,6\d\d,\d{3}$"), timeout=60_000)
    expect(design).to_contain_text("of 16,003,008", timeout=60_000)
