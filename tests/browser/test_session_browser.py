"""The session bar (Save, Open, Undo), the baseline table's Word download and the pilot ICC in a real browser."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect
from support import ARTIFACTS

from crt_widgets.core.io.baseline import docx_table
from crt_widgets.core.io.session import read_session
from crt_widgets.datasets import load_dickinson_outcome

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _open(page, url: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 1400})
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".crt-kept", timeout=120_000)
    expect(page.locator(".crt-kept").first).to_have_text("1,288", timeout=60_000)


def _kept(page, text: str) -> None:
    expect(page.locator(".crt-kept").first).to_have_text(text, timeout=60_000)


def test_save_reopen_undo_and_the_word_table(page, voila_url, records, tmp_path):
    _open(page, voila_url, 1024)
    session = page.locator(".crt-session")
    undo = session.get_by_role("button", name="Undo")
    expect(undo).to_be_disabled(timeout=30_000)

    # a change, then Undo: the space is back as it was, and there is nothing more to undo
    page.get_by_role("button", name="best N").click()
    _kept(page, "100")
    expect(undo).to_be_enabled(timeout=30_000)
    undo.click()
    _kept(page, "1,288")
    expect(undo).to_be_disabled(timeout=30_000)

    # Save session: a download, and a copy in the records folder
    session.get_by_role("button", name="Save session").click()
    link = session.locator("a.crt-download", has_text="Download the session")
    expect(link).to_be_visible(timeout=30_000)
    with page.expect_download(timeout=60_000) as download:
        link.click()
    saved = tmp_path / "design_session.json"
    download.value.save_as(saved)
    assert read_session(saved).settings["cutoff"] == 0.1 and read_session(saved).data.shape == (16, 11)
    assert (records / "design_session.json").exists()
    expect(session.locator(".crt-info")).to_contain_text("Session saved in", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "session_1024.png"), full_page=False)

    # another change, then Open session: every setting back
    page.get_by_role("button", name="best N").click()
    _kept(page, "100")
    with page.expect_file_chooser() as chooser:
        session.get_by_role("button", name=re.compile("Open session")).click()
    chooser.value.set_files(str(saved))
    _kept(page, "1,288")
    expect(session.locator(".crt-info")).to_contain_text("every setting restored", timeout=60_000)

    # an edited copy is refused with a message, and nothing changes
    edited = tmp_path / "edited_session.json"
    record = json.loads(saved.read_text())
    record["settings"]["cutoff"] = 0.5
    edited.write_text(json.dumps(record))
    with page.expect_file_chooser() as chooser:
        session.get_by_role("button", name=re.compile("Open session")).click()
    chooser.value.set_files(str(edited))
    expect(session.locator(".crt-error")).to_contain_text("edited_session.json was changed since it was saved",
                                                          timeout=60_000)
    _kept(page, "1,288")

    # a draw: the baseline table downloads as a Word document with the cells shown on the page
    box = page.locator(".widget-text", has=page.locator(".widget-label", has_text=re.compile("^draw seed$")))
    box.locator("input").fill("31")
    box.locator("input").press("Enter")
    expect(page.locator(".crt-seed-note")).to_contain_text("seed 31 (typed)", timeout=30_000)
    page.get_by_role("button", name="Draw allocation").click()
    page.get_by_role("button", name="Confirm draw").click()
    expect(page.locator(".crt-drawn")).to_contain_text("seed 31", timeout=60_000)
    with page.expect_download(timeout=60_000) as download:
        page.locator("a.crt-download", has_text="Baseline table (Word)").click()
    docx = tmp_path / "table.docx"
    download.value.save_as(docx)
    rows = docx_table(docx.read_bytes())
    screen = page.locator("table.crt-baseline tbody tr")
    expect(screen).to_have_count(len(rows) - 1, timeout=30_000)
    for i, row in enumerate(rows[1:]):
        cells = [c.strip() for c in screen.nth(i).locator("td").all_inner_texts()]
        assert cells == row[1:], (i, cells, row)
    assert rows[0] == ["Characteristic", "Control", "Intervention", "Standardized mean difference"]
    page.screenshot(path=str(ARTIFACTS / "session_drawn_1024.png"), full_page=True)


def test_pilot_icc_goes_into_the_power_inputs(page, voila_url, tmp_path):
    pilot = tmp_path / "pilot.csv"
    load_dickinson_outcome().to_csv(pilot, index=False)
    _open(page, voila_url, 1024)
    page.get_by_role("tab", name="Power").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("Pilot data")).click()
    chooser.value.set_files(str(pilot))
    value = page.locator(".crt-pilot-icc-value")
    expect(value).to_contain_text("ICC 0.0164 (95% CI 0.0075 to 0.0427", timeout=120_000)
    expect(page.locator(".crt-pilot-icc")).to_contain_text("Latent (logistic) scale: 0.0277", timeout=120_000)
    page.get_by_role("button", name="Use this ICC").click()
    icc = page.locator(".widget-inline-hbox", has=page.locator(".widget-label", has_text=re.compile("^ICC$")))
    expect(icc.locator("input")).to_have_value("0.01641", timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('.vega-embed')].some("
                           "e => e.innerHTML.includes('ICC from 0.00752 to 0.0427'))", timeout=60_000)
    expect(page.get_by_role("button", name="Remove the band")).to_be_enabled(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "pilot_icc_1024.png"), full_page=True)


@pytest.mark.parametrize("width,scheme", [(1024, "light"), (420, "light"), (1024, "dark"), (420, "dark")])
def test_screenshots_of_the_session_bar(browser, voila_url, width, scheme):
    context = browser.new_context(viewport={"width": width, "height": 1200}, color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(voila_url + ("?theme=dark" if scheme == "dark" else ""), timeout=120_000)
        page.wait_for_selector(".crt-kept", timeout=120_000)
        expect(page.locator(".crt-session").get_by_role("button", name="Save session")).to_be_visible(timeout=60_000)
        # every control of the bar is on the page, none cut off at the right edge
        for name in ("Save session", "Undo"):
            box = page.locator(".crt-session").get_by_role("button", name=name).bounding_box()
            assert box is not None and box["x"] >= 0 and box["width"] > 20
        page.screenshot(path=str(ARTIFACTS / f"session_{width}_{scheme}.png"), full_page=False)
    finally:
        context.close()
