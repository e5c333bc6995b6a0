"""Chart widgets whose "..." menu exports and never sends the trial's data away.

vega-embed's default menu offers "Open in Vega Editor", which posts the chart's specification, data
included, to an outside web site; the app's charts offer only the export to SVG and PNG, under a file
name that says what the chart is (``crt_score_histogram.svg``, not ``visualization.svg``).

>>> embed_options("crt_score_histogram")["actions"]
{'export': True, 'source': False, 'compiled': False, 'editor': False}
>>> chart_widget("crt_power_by_icc").embed_options["downloadFileName"]
'crt_power_by_icc'
"""
from __future__ import annotations

import re

import altair as alt
import pandas as pd

ACTIONS = {"export": True, "source": False, "compiled": False, "editor": False}


def embed_options(file_name: str) -> dict:
    """vega-embed options: export only, downloaded as ``file_name``.svg / .png."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", file_name or ""):
        raise ValueError(f"file_name: letters, digits, '_', '-' and '.' only, got {file_name!r}")
    return {"actions": dict(ACTIONS), "downloadFileName": file_name}


def chart_widget(file_name: str, mark: str = "bar") -> alt.JupyterChart:
    """An empty :class:`altair.JupyterChart` (its ``spec`` is set later) with :func:`embed_options`."""
    empty = getattr(alt.Chart(pd.DataFrame({"x": []})), f"mark_{mark}")()
    return alt.JupyterChart(empty, embed_options=embed_options(file_name))
