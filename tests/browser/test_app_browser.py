"""The one app in a real browser: Design, Analysis and Power on one page; a concealed, confirmed and logged
draw; a space above Jupyter's 10 MiB message limit handed over to the analysis and tested exactly."""
from __future__ import annotations

import json
import re
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect
from support import ARTIFACTS, PAPER_CATEGORICAL, PAPER_COVARIATES

from crt_widgets import ConstrainedDesign, permutation_test
from crt_widgets.datasets import load_dickinson

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOT = ARTIFACTS / "app.png"   # copied to docs/app.png for the README


@pytest.fixture(scope="module")
def big_trial(tmp_path_factory):
    """A 30-school trial: its cvcrand CSV space (191,882 schemes, 11.9 MB: above Jupyter's 10 MiB websocket
    message limit) and the pupils' outcomes (a per-pupil id, school-level covariates, a score)."""
    folder = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(11)
    schools = pd.DataFrame({"school": [f"S{i:02d}" for i in range(1, 31)], "pupils": rng.integers(200, 900, 30),
                            "fsm": rng.uniform(0.05, 0.6, 30).round(3), "urban": rng.choice(["yes", "no"], 30)})
    design = ConstrainedDesign(schools, ["pupils", "fsm", "urban"], 15, categorical=["urban"], cluster_id="school",
                               size=200_000, enumerate=False, cutoff=0.96, seed=5)
    allocation = design.draw(77)
    space = allocation.save_space(folder / "schools_space_cvcrand.csv")
    arm = dict(zip(design.cluster_ids, allocation.arm))
    pupils = pd.DataFrame({"school": np.repeat(schools["school"], 20), "pupil": np.arange(600) + 1000})
    pupils["score"] = (rng.normal(50, 10, 600) + np.repeat(rng.normal(0, 4, 30), 20)
                       + 6 * pupils["school"].map(arm)).round(1)
    outcomes = folder / "pupils.csv"
    pupils.merge(schools, on="school").to_csv(outcomes, index=False)
    assert space.stat().st_size > 10 * 1024 * 1024
    return outcomes, space, len(design.space_index)


def _brute_force_p(outcomes: pd.DataFrame, space_path) -> tuple[int, int]:
    """The unadjusted test counted by hand over every scheme of the cvcrand CSV: residuals of the grand mean,
    averaged per school (columns in sorted id order, as cptest reads them), treated minus control."""
    m = np.loadtxt(space_path, delimiter=",", skiprows=1, dtype=np.int8)
    chosen, schemes = m[:, 0], m[:, 1:].astype(float)
    ids = np.sort(outcomes["school"].unique())
    residual = (outcomes["score"] - outcomes["score"].mean()).groupby(outcomes["school"]).mean().reindex(ids).to_numpy()
    u = schemes @ residual / schemes.sum(axis=1) - (1 - schemes) @ residual / (1 - schemes).sum(axis=1)
    observed = u[chosen == 1][0]
    return int(np.sum(np.abs(u) >= abs(observed) * (1 - 1e-9))), len(u)


def _log(records) -> list[dict]:
    path = records / "draws.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _confirm_draw(page, seed: str) -> str:
    """Type the seed (or leave it empty), press Draw, read the seed the confirmation names, confirm;
    returns that seed."""
    box = page.locator(".widget-text", has=page.locator(".widget-label", has_text=re.compile("^draw seed$")))
    box.locator("input").fill(seed)
    box.locator("input").press("Enter")
    # the kernel has the seed as typed before Draw is pressed (a click can overtake the text's last update)
    expect(page.locator(".crt-seed-note")).to_contain_text(f"seed {seed} (typed)" if seed else "entropy",
                                                          timeout=30_000)
    page.get_by_role("button", name="Draw allocation").click()
    named = page.locator(".crt-pending-seed")
    expect(named).to_be_visible(timeout=30_000)
    if seed:
        expect(named).to_have_text(seed, timeout=30_000)
    shown = named.inner_text()
    page.get_by_role("button", name="Confirm draw").click()
    return shown


def test_one_app_draws_twice_then_analyses_a_large_space(page, voila_url, records, big_trial, tmp_path):
    outcomes_path, space_path, n_schemes = big_trial
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(voila_url, timeout=120_000)
    page.wait_for_selector(".crt-kept", timeout=120_000)
    page.wait_for_function("() => document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length >= 2",
                           timeout=60_000)
    # three sections, named on the first page; it opens on the Dickinson example
    for name in ("Design", "Analysis", "Power"):
        expect(page.get_by_role("tab", name=name)).to_be_visible(timeout=30_000)
    assert page.locator(".crt-kept").first.inner_text() == "1,288"
    expect(page.locator(".crt-smd-distribution")).to_contain_text("95th percentile |SMD|", timeout=30_000)
    page.screenshot(path=str(SCREENSHOT))  # the README's picture (the opening page, 1280 x 900)

    # the page before Draw: what describes the space, nothing of a scheme
    before_text = page.locator("body").inner_text()
    before_html = page.content()
    assert not page.locator(".crt-drawn, .crt-allocation, .crt-baseline").count()
    commitment = page.locator(".crt-commitment code").inner_text()
    logged_before = len(_log(records))

    first_seed = _confirm_draw(page, "20240611")
    expect(page.locator(".crt-drawn")).to_contain_text("of this session", timeout=60_000)
    drawn_text = page.locator(".crt-drawn").inner_text()
    expect(page.locator(".crt-confirm")).to_be_hidden(timeout=30_000)
    second_seed = _confirm_draw(page, "")  # no seed typed: the operating system's entropy at the draw
    expect(page.locator(".crt-drawn")).to_contain_text(f"seed {second_seed}", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "app_drawn.png"), full_page=True)

    log = _log(records)[logged_before:]
    assert [e["seed"] for e in log] == [int(first_seed), int(second_seed)]
    assert [e["seed_source"] for e in log] == ["typed", "entropy"]
    assert [e["draw"] for e in log] == [1, 2] and log[0]["session"] == log[1]["session"]
    assert {e["space_sha256"] for e in log} == {commitment}
    assert all((records / e["folder"] / "draw.json").exists() for e in log)
    core = ConstrainedDesign(load_dickinson(), PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL,
                             cluster_id="county", weights=[1.0] * 5, seed=12345)
    for entry in log:
        treated = core.draw(entry["seed"]).treated_clusters
        assert entry["allocation"]["1"] == treated
        # what Draw returned was nowhere on the page before it: no list of treated clusters, no chosen score
        assert f"Intervention: {', '.join(map(str, treated))}" not in before_text
    assert f"Intervention: {', '.join(map(str, log[0]['allocation']['1']))}" in drawn_text
    assert "chosen scheme" not in before_html and f"{core.draw(int(first_seed)).score:.3f}" not in before_text
    report = (records / log[1]["folder"] / f"randomization_report_seed{second_seed}.html").read_text()
    assert "draw 2 of this session" in report and "Earlier draws of this session (1)" in report

    # the Analysis section follows the draw, then takes the outcomes and an 11.9 MB cvcrand CSV
    page.get_by_role("tab", name="Analysis").click()
    expect(page.locator(".crt-section").nth(1)).to_contain_text(f"seed {second_seed}", timeout=30_000)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("outcomes", re.IGNORECASE)).click()
    chooser.value.set_files(str(outcomes_path))
    expect(page.locator(".crt-section").nth(1)).to_contain_text("pupils.csv (600 rows)", timeout=60_000)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("space", re.IGNORECASE)).click()
    chooser.value.set_files(str(space_path))
    pvalue = page.locator(".crt-pvalue")
    expect(pvalue).to_contain_text(f"of {n_schemes:,} schemes", timeout=240_000)
    shown = re.search(r"p (=|<) ([0-9.e-]+) \(([0-9,]+) of ([0-9,]+) schemes", pvalue.inner_text())
    count, total = int(shown.group(3).replace(",", "")), int(shown.group(4).replace(",", ""))
    pupils = pd.read_csv(outcomes_path)
    expected = permutation_test(pupils, "score", "school", space_path)  # no covariates: none named by the file
    assert (count, total) == _brute_force_p(pupils, space_path)
    assert count / total == expected.p_value and total == expected.n_schemes == n_schemes
    assert shown.group(2) == ("0.001" if expected.p_value < 0.001 else f"{expected.p_value:.4g}")
    # the columns were read from the data's structure: the school, the score, no per-pupil id to adjust for
    analysis = page.locator(".crt-section").nth(1)
    assert "schools_space_cvcrand.csv" in analysis.inner_text()
    adjust = analysis.locator(".widget-select-multiple", has=page.locator(".widget-label", has_text="adjust for"))
    assert "pupil" not in adjust.locator("select").inner_text().split()
    page.screenshot(path=str(ARTIFACTS / "app_analysis.png"), full_page=True)

    # a file above the upload limit: refused with a message before it is sent; no result stays beside it
    huge = tmp_path / "huge_space.csv"
    with open(huge, "wb") as fh:
        fh.truncate(300_000_000)  # sparse: nothing is written, the browser only sees its size
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("space", re.IGNORECASE)).click()
    chooser.value.set_files(str(huge))
    expect(analysis.locator(".crt-error")).to_contain_text("huge_space.csv is 300.0 MB, more than the 200 MB",
                                                          timeout=60_000)
    expect(analysis.locator(".crt-pvalue")).to_have_count(0, timeout=30_000)  # the last file's result went with it
    page.screenshot(path=str(ARTIFACTS / "app_too_large.png"), full_page=True)
    hosts = {urlparse(u).hostname for u in requests if u.startswith("http")}
    assert hosts <= {"127.0.0.1", "localhost"}, sorted(hosts)


def test_power_section_simulates_with_progress_and_cancel(page, voila_url):
    page.goto(voila_url, timeout=120_000)
    page.wait_for_selector(".crt-kept", timeout=120_000)
    page.get_by_role("tab", name="Power").click()
    expect(page.locator(".crt-power").first).to_contain_text("Power 0.566", timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('.vega-embed')].some("
                           "e => e.innerHTML.includes('Power against intra-cluster correlation'))", timeout=60_000)
    trials = page.locator(".widget-inline-hbox", has=page.locator(".widget-label", has_text=re.compile("^trials$")))
    trials.locator("input").fill("20")
    trials.locator("input").press("Enter")
    page.get_by_role("button", name="Simulate power").click()
    expect(page.locator(".crt-simulated")).to_contain_text("this design", timeout=180_000)
    expect(page.locator(".crt-simulated")).to_contain_text("20 simulated trials", timeout=30_000)
    trials.locator("input").fill("100000")
    trials.locator("input").press("Enter")
    running = page.get_by_text(re.compile(r"^[1-9][0-9,]* of 100,000$"))  # the progress bar's count
    page.get_by_role("button", name="Simulate power").click()
    expect(page.get_by_role("button", name="Cancel")).to_be_enabled(timeout=30_000)
    expect(running).to_be_visible(timeout=120_000)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".crt-warning", has_text="Cancelled after")).to_be_visible(timeout=120_000)
    expect(page.locator(".crt-simulated")).to_contain_text("this design", timeout=30_000)  # the power of the trials done
    expect(page.get_by_role("button", name="Simulate power")).to_be_enabled(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "app_power.png"), full_page=True)
    # while simulating the kernel keeps answering: a new ICC gives its analytic power at once, and stops the
    # simulation, whose result would belong to the old ICC
    page.get_by_role("button", name="Simulate power").click()
    expect(page.get_by_role("button", name="Cancel")).to_be_enabled(timeout=30_000)  # the new run is on
    expect(running).to_be_visible(timeout=120_000)
    icc = page.locator(".widget-inline-hbox", has=page.locator(".widget-label", has_text=re.compile("^ICC$")))
    icc.locator("input").fill("0.01")
    icc.locator("input").press("Enter")
    expect(page.locator(".crt-power").first).to_contain_text("Power 0.898", timeout=30_000)
    expect(page.locator(".crt-error", has_text="changed while simulating")).to_be_visible(timeout=120_000)
    expect(page.locator(".crt-simulated")).to_have_count(0, timeout=30_000)
