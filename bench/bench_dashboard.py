"""Benchmark of the dashboard's live path. Prints a table.

Server: wall time from a widget change (weight slider, cutoff) to all outputs updated, in process,
for a space of 1,000,000 sampled schemes (30 clusters, 6 covariates). Browser: the same dashboard
served by Voila in headless Chromium; time from pressing Enter in a slider's readout to the
histogram's SVG being redrawn (measured from Python, so it includes the polling overhead).

    python bench/bench_dashboard.py            # both
    python bench/bench_dashboard.py --server   # server only
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd

SETUP = """import numpy as np, pandas as pd
from crt_widgets.widgets import DesignDashboard
rng = np.random.default_rng(2026)
data = pd.DataFrame(rng.normal(size=(30, 6)).round(3), columns=[f"x{i}" for i in range(6)])
data.insert(0, "site", range(1, 31))
dashboard = DesignDashboard(example=None)
dashboard.state.load(data, "30 simulated sites", cluster_id="site", n_treat=15, sampling="sample", size=1_000_000)
dashboard.tabs.selected_index = 0  # the Balance tab: weights and cutoff
dashboard.widget"""


def server(repeats: int = 7) -> list[tuple[str, float]]:
    from crt_widgets.widgets import DesignDashboard

    rng = np.random.default_rng(2026)
    data = pd.DataFrame(rng.normal(size=(30, 6)).round(3), columns=[f"x{i}" for i in range(6)])
    data.insert(0, "site", range(1, 31))
    dash = DesignDashboard(example=None, offline=False)
    t0 = time.perf_counter()
    dash.state.load(data, "sim", cluster_id="site", n_treat=15, sampling="sample", size=1_000_000)
    build = time.perf_counter() - t0
    rows = [("build 1,000,000 schemes (data change)", build, build)]
    for label, widget, values in [("weight slider", dash.weights.sliders["x0"], [2.0, 3.0, 1.5, 2.5, 1.0, 4.0, 0.5]),
                                  ("cutoff q", dash.cutoff.quantile, [0.05, 0.02, 0.1, 0.2, 0.01, 0.08, 0.1])]:
        times = []
        for v in values[:repeats]:
            t0 = time.perf_counter()
            widget.value = v
            times.append(time.perf_counter() - t0)
        rows.append((f"{label} -> outputs updated (median of {len(times)})", statistics.median(times), max(times)))
    rows += multiarm()
    return rows


def multiarm() -> list[tuple[str, float, float]]:
    """Eight arms, 80 simulated EDs stratified by health system, 50,000 candidates. A weight change
    re-scores the drawn candidates (``MultiArmDesign.rescore``) and recomputes validity from scratch
    (reported, no target)."""
    from crt_widgets.widgets import DesignDashboard

    dash = DesignDashboard(example="edlead", offline=False)
    dash.arms.n_arms.value = 8
    dash.weights.stratify["health_system"].value = True
    times = []
    for v in [2.0, 3.0, 1.5]:
        t0 = time.perf_counter()
        dash.weights.sliders["volume"].value = v
        times.append(time.perf_counter() - t0)
    return [(f"multi-arm weight slider (8 arms, 50,000) -> outputs (median of {len(times)})",
             statistics.median(times), max(times))]


def browser() -> list[tuple[str, float]]:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from support import CHROMIUM, CHROMIUM_ARGS

    from crt_widgets.commands.dashboard import voila_command, voila_environment

    with tempfile.TemporaryDirectory() as tmp:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(SETUP)]
        path = Path(tmp) / "bench.ipynb"
        nbformat.write(nb, str(path))
        port = _free_port()
        proc = subprocess.Popen(voila_command(path, port, "127.0.0.1"), env=voila_environment(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/"
            for _ in range(120):
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            with sync_playwright() as pw:
                b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = b.new_page(viewport={"width": 1400, "height": 1600})
                page.goto(url, timeout=180_000)
                page.wait_for_selector(".vega-embed svg", timeout=180_000)
                rows = []
                for label, name, values in [("weight slider x0", "x0", ["2", "3", "1.5", "2.5", "1", "4", "0.5"]),
                                            ("cutoff q", "cutoff q", ["0.05", "0.02", "0.1", "0.2", "0.01", "0.08", "0.1"])]:
                    readout = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=name)) \
                        .locator(".widget-readout").first
                    times = []
                    for v in values:
                        before = page.locator(".vega-embed svg").first.inner_html()
                        readout.click()
                        readout.press("Control+A")
                        readout.type(v)
                        t0 = time.perf_counter()
                        readout.press("Enter")
                        page.wait_for_function(
                            "(before) => document.querySelector('.vega-embed svg').innerHTML !== before",
                            arg=before, timeout=30_000, polling="raf")
                        times.append(time.perf_counter() - t0)
                    rows.append((f"browser: {label} Enter -> histogram redrawn (median of {len(times)})",
                                 statistics.median(times), max(times)))
                # dragging the cutoff handle: each mouse move to the redrawn histogram (updates while dragging)
                handle = page.locator(".widget-slider", has=page.locator(".widget-label", has_text="cutoff q")) \
                    .locator(".noUi-handle").first
                box = handle.bounding_box()
                x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                page.mouse.move(x, y)
                page.mouse.down()
                times = []
                for step in range(1, 8):
                    before = page.locator(".vega-embed svg").first.inner_html()
                    t0 = time.perf_counter()
                    page.mouse.move(x - 12 * step, y)
                    page.wait_for_function(
                        "(before) => document.querySelector('.vega-embed svg').innerHTML !== before",
                        arg=before, timeout=30_000, polling="raf")
                    times.append(time.perf_counter() - t0)
                page.mouse.up()
                rows.append((f"browser: cutoff handle dragged -> histogram redrawn (median of {len(times)})",
                             statistics.median(times), max(times)))
                b.close()
        finally:
            proc.terminate()
            proc.wait(20)
    return rows


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", action="store_true")
    args = parser.parse_args()
    rows = server()
    if not args.server and os.path.exists("/usr/bin/chromium"):
        rows += browser()
    targets = {"weight slider": 0.1, "cutoff q": 0.1, "browser": 0.5}
    print(f"{'case':<72} {'median ms':>9} {'max ms':>7} {'target':>7}")
    for label, seconds, worst in rows:
        target = next((v for k, v in targets.items() if label.startswith(k)), None)
        flag = "" if target is None else ("OK" if seconds <= target else "MISS")
        print(f"{label:<72} {seconds * 1000:>9.1f} {worst * 1000:>7.1f} "
              f"{'' if target is None else f'{target * 1000:.0f}':>7} {flag}")


if __name__ == "__main__":
    main()
