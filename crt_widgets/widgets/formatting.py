"""Small HTML formatters shared by the panels and the report (no widgets here).

>>> message_html("n_treat: too many", "warning").startswith('<div class="crt-warning"')
True
"""
from __future__ import annotations

import html

import pandas as pd

from crt_widgets.widgets.theme import ERROR_TEXT, INFO_TEXT, SHADE_BACKGROUND, WARNING_TEXT


def message_html(text: str, kind: str = "error") -> str:
    """A coloured message line (empty text gives an empty string)."""
    colour = {"error": ERROR_TEXT, "warning": WARNING_TEXT, "info": INFO_TEXT}[kind]  # the theme's, light or dark
    return f'<div class="crt-{kind}" style="color:{colour};margin:4px 0">{html.escape(text)}</div>' if text else ""


SMD_SHADE, SMD_FLAG = 0.1, 0.2  # the usual thresholds for a standardized mean difference


def smd_table_html(table: pd.DataFrame, classes: str = "crt-baseline") -> str:
    """The baseline table with SMDs above 0.1 shaded and above 0.2 in bold red.

    The numbers come from the table's ``attrs["smd"]`` (the core's unrounded SMDs by row) when present,
    else from the printed SMD column.

    >>> t = pd.DataFrame({"arm = 0": ["1.0"], "arm = 1": ["2.0"], "SMD": ["0.250"]}, index=["x (mean (sd))"])
    >>> "crt-smd-high" in smd_table_html(t)
    True
    """
    numbers = table.attrs.get("smd", {})

    def style(row, value) -> str:
        v = numbers.get(row)
        if v is None:
            try:
                v = float(value)
            except (TypeError, ValueError):
                return html.escape(str(value))
        if abs(v) > SMD_FLAG:
            return f'<span class="crt-smd-high" style="color:{ERROR_TEXT};font-weight:bold">{html.escape(str(value))}</span>'
        if abs(v) > SMD_SHADE:
            return f'<span class="crt-smd-mid" style="background:{SHADE_BACKGROUND}">{html.escape(str(value))}</span>'
        return html.escape(str(value))

    out = table.map(lambda v: html.escape(str(v)))
    out.index = [html.escape(str(i)) for i in table.index]
    out["SMD"] = [style(row, v) for row, v in zip(table.index, table["SMD"])]
    return out.to_html(escape=False, border=0, classes=classes)


# results of earlier inputs, kept on screen after an input error: greyed, so they cannot be taken as current
STALE_CSS = ("<style>.crt-stale, .crt-stale-upload{opacity:.35;filter:grayscale(1);pointer-events:none}"
             ".crt-stale-upload{transition:opacity .2s}</style>")


def smd_distribution_html(table: pd.DataFrame, classes: str = "crt-smd-distribution") -> str:
    """The distribution of each covariate's |SMD| over the kept schemes, shaded like the baseline table.

    >>> t = pd.DataFrame({"median |SMD|": [0.05], "95th percentile |SMD|": [0.25]}, index=["x (mean (sd))"])
    >>> "crt-smd-high" in smd_distribution_html(t)
    True
    """
    def cell(v: float) -> str:
        text = f"{v:.3f}"
        if abs(v) > SMD_FLAG:
            return f'<span class="crt-smd-high" style="color:{ERROR_TEXT};font-weight:bold">{text}</span>'
        if abs(v) > SMD_SHADE:
            return f'<span class="crt-smd-mid" style="background:{SHADE_BACKGROUND}">{text}</span>'
        return text

    out = table.map(cell)
    out.index = [html.escape(str(i)) for i in table.index]
    out.columns = [html.escape(str(c)) for c in table.columns]
    n = table.attrs.get("n_schemes")
    caption = "" if n is None else f"<caption style='caption-side:bottom;text-align:left'>over {n:,} schemes</caption>"
    return out.to_html(escape=False, border=0, classes=classes).replace("<thead>", caption + "<thead>", 1)
