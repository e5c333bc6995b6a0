"""The app's Multi-period section in a real browser: the grid chart, the power following the steps, and the order
of the Design section's clusters drawn with a typed seed, confirmed, shown and logged (concealed until then)."""
from __future__ import annotations

import json
import re
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect
from support import ARTIFACTS, PAPER_CATEGORICAL, PAPER_COVARIATES

import crt_widgets as crt
from crt_widgets.core.randomization.stepped_wedge import SteppedWedgeDesign
from crt_widgets.datasets import load_dickinson

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _core_power(steps: int) -> str:
    design = crt.stepped_wedge(steps, 16 // steps)
    return f"Power {crt.multiperiod_power(design, 0.2, icc=0.05, cac=0.8, cluster_size=20).power:.3f}"


def _field(section, label: str):
    """The input of the section's text field labelled ``label``."""
    return section.locator(".widget-inline-hbox", has=section.page.locator(
        ".widget-label", has_text=re.compile(f"^{re.escape(label)}$"))).locator("input")


def _grid_title(chart_selector: str, title: str) -> str:
    """A condition for wait_for_function: the chart (a .vega-embed element) shows ``title``."""
    return (f"() => [...document.querySelectorAll('{chart_selector}')].some("
            f"e => e.innerHTML.includes({json.dumps(title)}))")


def test_multiperiod_section_grid_power_and_a_concealed_draw(page, voila_url, records):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_viewport_size({"width": 1024, "height": 900})
    page.goto(voila_url, timeout=120_000)
    page.wait_for_selector(".crt-kept", timeout=120_000)
    page.get_by_role("tab", name="Multi-period").click()
    section = page.locator(".crt-multiperiod")
    expect(section).to_be_visible(timeout=120_000)
    # the design's grid (16 Dickinson counties, 4 steps: 5 periods), drawn as a chart
    page.wait_for_function(_grid_title(".crt-multiperiod .crt-mp-grid", "16 clusters x 5 periods"), timeout=60_000)
    power = section.locator(".crt-mp-power")
    expect(power).to_contain_text(_core_power(4), timeout=30_000)
    expect(section.locator(".crt-mp-kept")).to_have_text(re.compile(r"^[1-9][0-9,]*$"), timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "multiperiod_1024.png"), full_page=True)

    # more steps: a new grid and the power of the new design, at once
    steps = _field(section, "steps")
    steps.fill("8")
    steps.press("Enter")
    page.wait_for_function(_grid_title(".crt-multiperiod .crt-mp-grid", "16 clusters x 9 periods"), timeout=60_000)
    expect(power).to_contain_text(_core_power(8), timeout=60_000)
    assert _core_power(8) != _core_power(4)
    # a bad input is a message, and the power of other inputs goes
    steps.fill("20")
    steps.press("Enter")
    expect(section.locator(".crt-error").first).to_contain_text("steps: 20 steps need at least one cluster each",
                                                                timeout=60_000)
    expect(power).to_have_count(0, timeout=30_000)
    steps.fill("8")
    steps.press("Enter")
    expect(power).to_contain_text(_core_power(8), timeout=60_000)
    expect(section.locator(".crt-mp-kept")).to_have_text(re.compile(r"^[1-9][0-9,]*$"), timeout=60_000)

    # the order: concealed until a confirmed draw with the typed seed
    assert not section.locator(".crt-drawn, .crt-allocation").count()
    commitment = section.locator(".crt-commitment code").inner_text()
    seed = _field(section, "draw seed")
    seed.fill("777")
    seed.press("Enter")
    expect(section.locator(".crt-seed-note")).to_contain_text("seed 777 (typed)", timeout=30_000)
    section.get_by_role("button", name="Draw allocation").click()
    expect(section.locator(".crt-pending-seed")).to_have_text("777", timeout=30_000)
    assert not section.locator(".crt-allocation").count()  # named, not drawn
    section.get_by_role("button", name="Confirm draw").click()
    drawn = section.locator(".crt-drawn")
    expect(drawn).to_contain_text("Draw 1 of this session", timeout=60_000)
    expect(section.locator(".crt-allocation")).to_be_visible(timeout=30_000)
    page.wait_for_function(_grid_title(".crt-multiperiod .crt-mp-drawn-grid", "The order drawn (seed 777)"),
                           timeout=60_000)

    # the order drawn is the core's, logged with the Design section's draws
    log = [json.loads(line) for line in (records / "draws.jsonl").read_text().splitlines()]
    entry = [e for e in log if isinstance(e["settings"].get("design"), dict)][-1]  # the multi-period draws
    assert entry["seed"] == 777 and entry["seed_source"] == "typed" and entry["space_sha256"] == commitment
    core = SteppedWedgeDesign(load_dickinson(), PAPER_COVARIATES, crt.stepped_wedge(8, 2), cluster_id="county",
                              categorical=PAPER_CATEGORICAL, weights=[1.0] * 5, size=50_000, seed=12345)
    expected = core.draw(777)
    table = section.locator(".crt-allocation").inner_text()
    rows = [line.split("\t") for line in table.strip().splitlines()[1:]]
    assert {int(r[0]): int(r[1]) for r in rows} == {int(c): int(s) + 1 for c, s in
                                                    zip(core.cluster_ids, expected.sequence)}
    assert (records / entry["folder"] / "treatment_matrix_seed777.csv").exists()
    section.locator(".crt-mp-drawn-grid").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "multiperiod_drawn_1024.png"), full_page=True)
    section.locator(".crt-drawn").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "multiperiod_drawn_table_1024.png"), full_page=True)

    # a phone's width and the dark scheme: the section stays usable (inspected by eye)
    page.set_viewport_size({"width": 420, "height": 900})
    expect(section.locator(".crt-mp-power")).to_be_visible(timeout=30_000)
    section.locator(".crt-mp-grid").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "multiperiod_420.png"), full_page=True)
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(ARTIFACTS / "multiperiod_420_dark.png"), full_page=True)
    page.set_viewport_size({"width": 1024, "height": 900})
    page.screenshot(path=str(ARTIFACTS / "multiperiod_1024_dark.png"), full_page=True)
    hosts = {urlparse(u).hostname for u in requests if u.startswith("http")}
    assert hosts <= {"127.0.0.1", "localhost"}, sorted(hosts)
