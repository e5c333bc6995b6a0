"""The app for a screen reader and a keyboard (WCAG 2.1 AA): every control of the three sections has an
accessible name of its own, sliders announce the value their readout shows and move with the arrow keys,
the charts' menus export under meaningful file names and link nowhere outside, the arms carry the names
the user gives them through the confirmation and the drawn allocation."""
from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect
from support import ARTIFACTS

from crt_widgets.datasets import load_dickinson

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# the roles a user operates (links and list options are named by their text)
CONTROLS = {"textbox", "spinbutton", "combobox", "listbox", "slider", "checkbox", "button", "radio", "switch",
            "searchbox", "tab", "menuitem"}
# names that do not say which control it is: several share them, or they name nothing
GENERIC = {"", "stratify", "upload", "button", "slider", "select", "null", "none", "n"}
PRIVATE_USE = re.compile("[\ue000-\uf8ff]")  # icon-font glyphs, read out as gibberish


def _open(page, voila_url) -> None:
    page.goto(voila_url, timeout=120_000)
    page.wait_for_selector(".crt-kept", timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length >= 2",
                           timeout=60_000)
    # the page helper has named the controls (it runs after every change of the page)
    page.wait_for_function("() => document.querySelectorAll('.noUi-handle[aria-label]').length >= 6", timeout=60_000)


def _named_controls(cdp) -> list[tuple[str, str]]:
    """(role, accessible name) of every control the accessibility tree exposes now (hidden ones are not)."""
    nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    found = []
    for node in nodes:
        role = node.get("role", {}).get("value")
        if node.get("ignored") or role not in CONTROLS:
            continue
        found.append((role, str(node.get("name", {}).get("value", "")).strip()))
    return found


def test_every_control_of_the_three_sections_has_a_name_of_its_own(page, voila_url):
    _open(page, voila_url)
    cdp = page.context.new_cdp_session(page)
    seen: dict[str, list[tuple[str, str]]] = {}
    for section in ("Design", "Analysis", "Power"):
        page.get_by_role("tab", name=section, exact=True).click()
        expect(page.get_by_role("tab", name=section, exact=True)).to_have_attribute("aria-selected", "true",
                                                                                     timeout=30_000)
        inner = ("Balance", "Covariates", "Arms & seed") if section == "Design" else (None,)
        for tab in inner:
            if tab is not None:
                page.get_by_role("tab", name=tab, exact=True).click()
                expect(page.get_by_role("tab", name=tab, exact=True)).to_have_attribute("aria-selected", "true",
                                                                                        timeout=30_000)
            page.wait_for_function("() => !document.querySelector('.noUi-handle:not([aria-label])')", timeout=30_000)
            seen[f"{section}/{tab}"] = _named_controls(cdp)
    everything = [control for controls in seen.values() for control in controls]
    roles = {role for role, _ in everything}
    assert {"slider", "checkbox", "combobox", "listbox", "spinbutton", "textbox", "button", "tab"} <= roles, roles
    unnamed = [(where, role, name) for where, controls in seen.items() for role, name in controls
               if name.casefold() in GENERIC or PRIVATE_USE.search(name)]
    assert not unnamed, unnamed
    # the Multi-period section (built when opened): every control there has a name too, the sliders and groups
    # its label's words where the section gave them no name of their own
    page.get_by_role("tab", name="Multi-period", exact=True).click()
    page.wait_for_selector(".crt-multiperiod .noUi-handle", timeout=120_000)
    page.wait_for_function("() => !document.querySelector('.noUi-handle:not([aria-label])')", timeout=30_000)
    periods = [(role, name) for role, name in _named_controls(cdp) if (role, name) not in everything]
    assert any(role == "slider" for role, _ in periods), periods
    assert all(name and not PRIVATE_USE.search(name) for _, name in periods), periods
    names = {name for _, name in everything}
    # each covariate's controls say which covariate they set
    covariates = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]
    assert {f"Weight of {c}" for c in covariates} <= names
    assert {"Stratify on location", "Stratify on incomecat"} <= names
    assert {"Covariates to balance on", "Categorical covariates", "cutoff q (share of schemes kept)",
            "Arm names, separated by commas", "Outcomes (CSV): upload, one row per person",
            "Simulate power"} <= names
    # every group of toggle buttons is a named group (its buttons are named by their options)
    groups = page.eval_on_selector_all(".widget-toggle-buttons", "els => els.map(e => [e.getAttribute('role'), "
                                       "e.getAttribute('aria-label')])")
    assert len(groups) >= 4 and all(role == "group" and label for role, label in groups), groups
    assert ["group", "Outcome type for the power"] in groups
    # no two sliders or check boxes share a name (the old page had two called "stratify")
    for role in ("slider", "checkbox"):
        shown = [name for where, controls in seen.items() if where.startswith("Design/Balance")
                 for r, name in controls if r == role]
        assert len(shown) == len(set(shown)), shown
    # the upload buttons say what they take, without a "(0)" file count
    assert not page.locator(".widget-upload", has_text=re.compile(r"\(\d+\)")).count()


def test_sliders_announce_the_readout_and_move_with_the_keyboard(page, voila_url):
    _open(page, voila_url)
    page.get_by_role("tab", name="Balance", exact=True).click()
    cutoff = page.get_by_role("slider", name="cutoff q (share of schemes kept)")
    cutoff_readout = page.locator(".widget-slider", has=cutoff).locator(".widget-readout")
    # the log-scale slider announces q as the readout shows it, never the exponent (-1)
    expect(cutoff).to_have_attribute("aria-valuetext", cutoff_readout.inner_text(), timeout=30_000)
    assert 0 < float(cutoff.get_attribute("aria-valuetext")) <= 1
    kept = page.locator(".crt-kept").first.inner_text()
    cutoff.focus()
    cutoff.press("ArrowLeft")   # a twentieth of a decade down: q = 10^-1.05 = 0.089, fewer schemes kept
    expect(cutoff_readout).to_have_text("0.0890", timeout=60_000)
    expect(page.locator(".crt-kept").first).not_to_have_text(kept, timeout=60_000)
    expect(cutoff).to_have_attribute("aria-valuetext", "0.0890", timeout=30_000)
    cutoff.press("ArrowRight")  # and back to 0.1, the 1,288 schemes of the paper
    expect(cutoff_readout).to_have_text("0.100", timeout=60_000)
    expect(page.locator(".crt-kept").first).to_have_text(kept, timeout=60_000)
    assert cutoff.evaluate("el => document.activeElement === el")  # the focus stays on the slider

    weight = page.get_by_role("slider", name="Weight of inciis")
    readout = page.locator(".widget-slider", has=weight).locator(".widget-readout")
    expect(readout).to_have_text("1.0", timeout=30_000)
    weight.focus()
    weight.press("ArrowRight")
    expect(readout).to_have_text("1.1", timeout=30_000)
    expect(weight).to_have_attribute("aria-valuetext", "1.1", timeout=30_000)
    # the long covariate name, cut by the label's width, is there in full on hover
    label = page.locator(".widget-slider", has=page.get_by_role("slider", name="Weight of uptodateonimmunizations"))
    expect(label.locator(".widget-label")).to_have_attribute("title", "Weight of uptodateonimmunizations")

    # stratifying balances a covariate exactly: its weight slider is switched off, and says so
    page.get_by_role("checkbox", name="Stratify on location").check()
    location = page.locator(".widget-slider", has=page.get_by_role("slider", name="Weight of location"))
    expect(location.locator(".noUi-target")).to_have_attribute("disabled", re.compile(".*"), timeout=60_000)
    expect(location.locator(".widget-label")).to_have_attribute("title", re.compile("balanced exactly"))
    # the help beside the controls opens from the keyboard
    summary = page.locator("summary[aria-label='About cutoff q']")
    summary.focus()
    summary.press("Enter")
    expect(page.locator("details.crt-help", has=summary)).to_have_attribute("open", "", timeout=10_000)
    expect(page.locator("details.crt-help", has=summary)).to_contain_text("Moulton 2004")
    for width in (1024, 420):
        page.set_viewport_size({"width": width, "height": 1400})
        page.screenshot(path=str(ARTIFACTS / f"accessibility_{width}.png"))


def test_chart_menus_export_under_meaningful_names_and_link_nowhere_outside(page, voila_url):
    _open(page, voila_url)
    menus = page.locator(".vega-embed details")
    expect(menus.first).to_be_attached(timeout=30_000)
    for i in range(menus.count()):
        menu = menus.nth(i)
        if not menu.is_visible():
            continue
        menu.locator("summary").click()
        links = menu.locator(".vega-actions a")
        expect(links.first).to_be_visible(timeout=10_000)
        texts = [links.nth(k).inner_text() for k in range(links.count())]
        assert sorted(texts) == ["Save as PNG", "Save as SVG"], texts
        for k in range(links.count()):
            href = links.nth(k).get_attribute("href") or ""
            assert urlparse(href).hostname in (None, "127.0.0.1", "localhost"), href
        menu.locator("summary").click()
    assert not page.get_by_text("Open in Vega Editor").count()
    assert "vega.github.io" not in page.content()
    # the score histogram exports as crt_balance_scores.svg (vega-embed's default is visualization.svg)
    histogram = page.locator(".vega-embed", has=page.locator("text=Balance scores of all candidate schemes")).first
    histogram.locator("details summary").click()
    with page.expect_download(timeout=60_000) as download:
        histogram.get_by_text("Save as SVG").click()
    assert download.value.suggested_filename == "crt_balance_scores.svg"


def test_named_arms_reach_the_confirmation_and_the_allocation(page, voila_url):
    _open(page, voila_url)
    page.get_by_role("tab", name="Arms & seed", exact=True).click()
    names = page.get_by_role("textbox", name="Arm names, separated by commas")
    expect(names).to_have_value("Control, Intervention", timeout=30_000)
    names.fill("Usual care, Text reminders")
    names.press("Enter")
    expect(page.locator(".crt-probabilities")).to_contain_text("P(Text reminders)", timeout=60_000)
    seed = page.get_by_role("textbox", name=re.compile("^Draw seed"))
    seed.fill("2024")
    seed.press("Enter")
    expect(page.locator(".crt-seed-note")).to_contain_text("seed 2024 (typed)", timeout=30_000)
    page.get_by_role("button", name="Draw allocation").click()
    expect(page.locator(".crt-pending-arms")).to_have_text("Usual care and Text reminders", timeout=30_000)
    page.get_by_role("button", name="Confirm draw").click()
    drawn = page.locator(".crt-drawn")
    expect(drawn).to_contain_text("Text reminders: ", timeout=60_000)
    assert "Usual care: " in drawn.inner_text()
    expect(page.locator(".crt-baseline th", has_text="Usual care")).to_be_visible(timeout=30_000)
    assert len(load_dickinson()) == 16 == page.locator(".crt-allocation tbody tr").count()
    page.screenshot(path=str(ARTIFACTS / "accessibility_named_arms.png"), full_page=True)
