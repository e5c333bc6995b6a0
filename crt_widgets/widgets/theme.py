"""Colours from the notebook's theme and a layout that reflows, as CSS (no widgets here).

Colours are CSS expressions over JupyterLab's theme variables (``--jp-*``), so the same HTML reads well in
JupyterLab Light and Dark and in Voila's ``--theme=dark``: each is the theme's own colour mixed with its
strongest font colour (black in a light theme, white in a dark one), which keeps text at WCAG AA contrast
(4.5:1) on the theme's backgrounds in both. Every variable carries a light-theme fallback, for pages
without JupyterLab's variables (the one-file HTML report).

:data:`PAGE_CSS` (a ``<style>`` block each section carries once) lets the sections reflow: boxes of controls
wrap, the controls column and the results column sit side by side when there is room and one below the
other when there is not, wide tables scroll inside their own box, and charts take their container's width.

>>> ERROR_TEXT.startswith("color-mix(in srgb, var(--jp-error-color1")
True
>>> ".crt-chart" in PAGE_CSS and "flex-wrap" in PAGE_CSS
True
"""
from __future__ import annotations

# Text colours: the theme's colour, darkened in a light theme and lightened in a dark one by mixing in
# --jp-ui-font-color0 (opaque black or white); the theme's colour alone is too faint for text on white
# (--jp-warn-color0 #e65100: 3.8:1) or on a dark layout colour (--jp-error-color1 #f44336 on #212121: 4.1:1).
ERROR_TEXT = "color-mix(in srgb, var(--jp-error-color1, #d32f2f) 75%, var(--jp-ui-font-color0, #000))"
WARNING_TEXT = "color-mix(in srgb, var(--jp-warn-color0, #e65100) 65%, var(--jp-ui-font-color0, #000))"
INFO_TEXT = "color-mix(in srgb, var(--jp-success-color0, #1b5e20) 75%, var(--jp-ui-font-color0, #000))"
LINK_TEXT = "var(--jp-content-link-color, #0d47a1)"
# A shaded cell: a little of the theme's warning colour over its page colour (pale orange on white, dark
# amber on a dark page), so the cell keeps the theme's own text colour and its contrast.
SHADE_BACKGROUND = "color-mix(in srgb, var(--jp-warn-color1, #f57c00) 30%, var(--jp-layout-color0, #fff))"

_DARK = '[data-jp-theme-light="false"]'  # set on <body> by JupyterLab and by Voila's lab template
# the permutation histogram's "observed" rule and legend symbol are near-black ink (charts.PERMUTATION_COLOURS),
# unseen on a dark page: there they take the theme's font colour
INK = "#222222"

PAGE_CSS = f"""<style>
/* controls and results side by side when there is room, one below the other when there is not */
.crt-section .widget-hbox {{flex-wrap: wrap; max-width: 100%}}
.crt-section .crt-columns {{gap: 4px 16px}}
.crt-section .crt-columns > * {{min-width: 0; max-width: 100%}}
/* fixed-width controls shrink to a narrow column rather than push it past the screen's edge */
.crt-section .widget-inline-hbox, .crt-section .widget-box, .crt-section .widget-html,
.crt-section .widget-upload, .crt-section .widget-button {{max-width: 100%}}
.crt-section .widget-html-content {{min-width: 0; max-width: 100%; overflow-x: auto}}
.crt-section .jupyter-widget-TabPanel {{min-width: 0; max-width: 100%}}
/* charts: as wide as their box (Vega-Lite's width "container"), never wider */
.crt-chart.vega-embed {{width: 100%; display: flex; min-width: 0}}
.crt-chart.vega-embed details, .crt-chart.vega-embed details summary {{position: relative}}
/* a chart of fixed width (the multi-period grids) scrolls sideways in its own box rather than past the screen */
.crt-section .vega-embed:not(.crt-chart) {{max-width: 100%; overflow-x: auto}}
/* tables in the theme's colours */
.crt-section table {{color: var(--jp-content-font-color1, inherit); border-collapse: collapse}}
.crt-section th, .crt-section td {{padding: 2px 6px}}
/* charts in a dark theme: no white card, text and axes in the theme's colours */
{_DARK} .crt-section .vega-embed svg.marks {{background-color: transparent !important}}
{_DARK} .crt-section .vega-embed svg text {{fill: var(--jp-ui-font-color1)}}
{_DARK} .crt-section .role-axis-domain line, {_DARK} .crt-section .role-axis-tick line {{stroke: var(--jp-ui-font-color2)}}
{_DARK} .crt-section .role-axis-grid line {{stroke: var(--jp-border-color2)}}
{_DARK} .crt-section .vega-embed [stroke="{INK}"] {{stroke: var(--jp-ui-font-color1)}}
{_DARK} .crt-section .vega-embed [fill="{INK}"] {{fill: var(--jp-ui-font-color1)}}
/* a narrow section (a phone, JupyterLab beside its file browser): shorter slider labels, longer tracks */
.crt-section {{container-type: inline-size}}
@container (max-width: 520px) {{
  .crt-section .widget-slider > .widget-label {{width: 110px !important; flex: 0 0 110px !important}}
}}
</style>"""
