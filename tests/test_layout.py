"""The app's layout and colours without a browser: the theme's colours meet WCAG AA in JupyterLab Light and
Dark (computed here from the themes' variables, as the browser mixes them), the formatted HTML carries no
fixed colour, every section reflows and every live chart takes its box's width; ``--theme`` of the command.
(tests/browser/test_layout_browser.py checks the same in a real browser at 1024 and 420 px.)"""
from __future__ import annotations

import argparse
import re

import numpy as np
import pandas as pd
import pytest

from crt_widgets.widgets.theme import ERROR_TEXT, INFO_TEXT, LINK_TEXT, PAGE_CSS, SHADE_BACKGROUND, WARNING_TEXT

# JupyterLab 4's theme variables as the browser computes them (read from Voila's --theme=light and --theme=dark)
LIGHT = {"--jp-error-color1": "#d32f2f", "--jp-warn-color0": "#e65100", "--jp-warn-color1": "#f57c00",
         "--jp-success-color0": "#1b5e20", "--jp-ui-font-color0": "#000000", "--jp-layout-color0": "#ffffff",
         "--jp-layout-color1": "#ffffff", "--jp-content-link-color": "#0d47a1"}
DARK = {"--jp-error-color1": "#f44336", "--jp-warn-color0": "#f57c00", "--jp-warn-color1": "#ff9800",
        "--jp-success-color0": "#388e3c", "--jp-ui-font-color0": "#ffffff", "--jp-layout-color0": "#111111",
        "--jp-layout-color1": "#212121", "--jp-content-link-color": "#64b5f6"}
# the themes' content text: black at 87% opacity in Light, white in Dark
CONTENT_TEXT = {"light": (0, 0, 0, 0.87), "dark": (255, 255, 255, 1.0)}
MIX = re.compile(r"color-mix\(in srgb, (var\([^)]*\)) (\d+)%, (var\([^)]*\))\)")
VAR = re.compile(r"var\((--[\w-]+), (#[0-9a-f]{3,6})\)")


def _hex(text: str) -> np.ndarray:
    text = text.lstrip("#")
    text = "".join(c * 2 for c in text) if len(text) == 3 else text
    return np.array([int(text[i:i + 2], 16) for i in (0, 2, 4)], dtype=float)


def resolve(expression: str, theme: dict | None) -> np.ndarray:
    """The sRGB colour of one of our CSS expressions in a theme (None: no variables, the fallbacks), as CSS
    Color 5's color-mix in srgb computes it for opaque colours."""
    def var(text: str) -> np.ndarray:
        name, fallback = VAR.fullmatch(text).groups()
        return _hex((theme or {}).get(name, fallback))

    mixed = MIX.fullmatch(expression)
    if mixed:
        first, share, second = mixed.groups()
        p = int(share) / 100
        return p * var(first) + (1 - p) * var(second)
    return var(expression)


def contrast(text, background) -> float:
    """WCAG 2.1 contrast ratio; ``text`` may have an alpha (blended over the background)."""
    text = np.asarray(text, dtype=float)
    if text.size == 4:
        text = text[:3] * text[3] + np.asarray(background) * (1 - text[3])

    def luminance(rgb) -> float:
        c = np.asarray(rgb) / 255
        c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return float(c @ [0.2126, 0.7152, 0.0722])

    high, low = sorted([luminance(text), luminance(background)], reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark", "no variables"])
def test_text_colours_meet_wcag_aa_on_the_themes_backgrounds(theme):
    variables = {"light": LIGHT, "dark": DARK, "no variables": None}[theme]
    pages = [resolve("var(--jp-layout-color0, #fff)", variables), resolve("var(--jp-layout-color1, #fff)", variables)]
    for colour in (ERROR_TEXT, WARNING_TEXT, INFO_TEXT, LINK_TEXT):
        for page in pages:
            assert contrast(resolve(colour, variables), page) >= 4.5, (theme, colour)
    # the shaded SMD cell keeps the theme's content text (the issue: white on pale yellow in JupyterLab Dark)
    shade = resolve(SHADE_BACKGROUND, variables)
    assert contrast(CONTENT_TEXT["dark" if theme == "dark" else "light"], shade) >= 4.5


def test_the_contrast_figures():
    # pinned: the colours as mixed, and why the theme's colour alone would not do for text
    assert contrast(resolve(ERROR_TEXT, DARK), _hex("#212121")) == pytest.approx(5.79, abs=0.01)
    assert contrast(resolve(WARNING_TEXT, LIGHT), _hex("#ffffff")) == pytest.approx(7.53, abs=0.01)
    assert contrast(CONTENT_TEXT["dark"], resolve(SHADE_BACKGROUND, DARK)) == pytest.approx(10.40, abs=0.01)
    assert contrast(CONTENT_TEXT["dark"], _hex("#ffe0b2")) == pytest.approx(1.27, abs=0.01)  # white on pale yellow
    assert contrast(_hex("#f44336"), _hex("#212121")) < 4.5 and contrast(_hex("#e65100"), _hex("#ffffff")) < 4.5
    np.testing.assert_allclose(resolve(SHADE_BACKGROUND, LIGHT), [252.0, 215.7, 178.5])


def test_formatted_html_takes_its_colours_from_the_theme():
    from crt_widgets.widgets.downloads import download_link
    from crt_widgets.widgets.formatting import message_html, smd_distribution_html, smd_table_html

    baseline = pd.DataFrame({"arm = 0": ["1.0", "2"], "arm = 1": ["2.0", "2"], "SMD": ["0.250", "0.150"]},
                            index=["x (mean (sd))", "y (mean (sd))"])
    spread = pd.DataFrame({"median |SMD|": [0.05, 0.15], "95th percentile |SMD|": [0.25, 0.3]}, index=["x", "y"])
    pieces = [message_html("a", kind) for kind in ("error", "warning", "info")] + [
        smd_table_html(baseline), smd_distribution_html(spread), download_link("a.csv", "x", "text/csv", "A")]
    for piece in pieces:
        assert "var(--jp-" in piece
        # no colour but the variables' fallbacks (for pages without JupyterLab's variables)
        assert not re.search(r"#[0-9a-fA-F]{3,6}\b", VAR.sub("", piece)), piece
    assert SHADE_BACKGROUND in pieces[3] and ERROR_TEXT in pieces[3] and SHADE_BACKGROUND in pieces[4]


def _tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _tree(child)


@pytest.fixture(scope="module")
def app():
    from crt_widgets.widgets.app import TrialApp

    return TrialApp(offline=False)


def test_every_section_reflows_and_its_charts_fill_their_boxes(app):
    import altair as alt
    import ipywidgets as w

    from crt_widgets.widgets.reflow import ChartReflow

    app.analysis.example.value = "dickinson"  # a result, so that its chart has a specification
    for section in (app.design.widget, app.analysis.widget, app.power.widget):
        widgets = list(_tree(section))
        assert "crt-section" in section._dom_classes
        assert any(isinstance(x, ChartReflow) for x in widgets)
        assert any(isinstance(x, w.HTML) and PAGE_CSS in x.value for x in widgets)
        # controls and results: side by side when both fit, one below the other when not
        columns = [x for x in widgets if "crt-columns" in x._dom_classes]
        assert len(columns) == 1 and columns[0].layout.flex_flow == "row wrap"
        left, right = columns[0].children
        assert left.layout.flex.startswith("0 1 ") and left.layout.max_width == "100%"
        assert right.layout.flex.startswith("1 1 ") and right.layout.min_width == "0"
        charts = [x for x in widgets if isinstance(x, alt.JupyterChart)]
        assert charts and all("crt-chart" in c._dom_classes for c in charts)
        assert all(c.spec["width"] == "container" for c in charts), [c.spec.get("width") for c in charts]
        # the charts' menu saves the picture; nothing offers to send the chart and its data to a website
        assert all(c.embed_options["actions"]["editor"] is False for c in charts)
    assert len([x for x in _tree(app.design.widget) if isinstance(x, alt.JupyterChart)]) == 3  # scores, zoom, pairs


def test_chart_specifications_fit_a_narrow_box():
    from crt_widgets.widgets.charts import (full_histogram_spec, histogram_spec, permutation_histogram,
                                            score_histogram, too_many_for_heatmap, zoom_spec)
    from crt_widgets.core.permutation.test import PermutationResult

    bins = pd.DataFrame({"left": [0.0, 1.0], "right": [1.0, 2.0], "total": [5, 3], "kept": [5, 1]})
    zoom = pd.DataFrame({"left": [0.0, 0.5], "right": [0.5, 1.2], "count": [2, 4]})
    full = full_histogram_spec(bins, 1.2, None)
    assert full["width"] == "container" and [r["kept"] for r in full["datasets"]["bins"]] == [5, 1]
    zoomed = zoom_spec(zoom, 1.2, None)
    assert zoomed["width"] == "container" and [r["count"] for r in zoomed["datasets"]["zoom"]] == [2, 4]
    assert "legend" not in str(zoomed).replace("'legend': None", "")  # the full histogram's legend names both
    assert "chosen scheme" not in str(full) + str(zoomed)  # nothing names a scheme before the draw
    # the report keeps both side by side at fixed widths (a page of its own, 960 px wide)
    report = score_histogram(bins, 1.2, 0.5, zoom).to_dict()
    assert [c["width"] for c in report["hconcat"]] == [330, 170]
    # so does histogram_spec, which the multi-period section's order histogram uses
    assert [c["width"] for c in histogram_spec(bins, 1.2, None, zoom)["hconcat"]] == [330, 170]
    r = PermutationResult(1.0, np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]), 4 / 6, {}, "two-sided",
                          "gaussian", 6, 4, 40, 0, np.array([1, 1, 0, 0]), np.arange(4))
    spec = permutation_histogram(r, bins=5).to_dict()
    assert spec["width"] == "container"
    # the observed rule's ink is the colour the dark theme's CSS repaints in the theme's font colour
    from crt_widgets.widgets.charts import PERMUTATION_COLOURS
    from crt_widgets.widgets.theme import INK
    assert PERMUTATION_COLOURS[2] == INK and '{stroke: var(--jp-ui-font-color1)}' in PAGE_CSS.split(INK)[1]
    assert spec["title"] == {"text": "Permutation distribution over 6 schemes", "subtitle": "p = 0.6667, two-sided"}
    text = too_many_for_heatmap(150)
    assert text["width"] == "container" and text["data"]["values"][0]["t"].split("\n") == [
        "150 clusters:", "the pair heatmap is drawn for at most 120;", "the validity table above summarises every pair"]


def test_heatmap_title_puts_its_parenthesis_on_a_second_line(app):
    heat = app.design.outputs.heatmap.spec
    assert heat["width"] == "container"
    assert heat["title"] == {"text": "Pairs in the same arm",
                             "subtitle": "unconstrained: 47%; flag below 25% or above 75%"}


def test_dashboard_theme_option(capsys):
    from crt_widgets.commands import dashboard as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert parser.parse_args([]).theme == "light"
    args = parser.parse_args(["--theme", "dark"])
    served = []
    original = command.os.execve
    command.os.execve = lambda path, argv, env: served.append(argv)
    try:
        command.run(args)
    finally:
        command.os.execve = original
    assert "--theme=dark" in served[0] and "--theme=light" not in served[0]
    with pytest.raises(SystemExit):
        parser.parse_args(["--theme", "solarized"])
    assert "argument --theme: invalid choice: 'solarized'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"^theme: one of light, dark, got 'solarized'$"):
        command.voila_command(command.Path("app.ipynb"), 8866, "127.0.0.1", theme="solarized")
