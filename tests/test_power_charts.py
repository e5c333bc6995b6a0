"""The power-curve chart: an Altair specification with its data inline (renders offline), band and target."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from crt_widgets.core.power.analytic import power_curve
from crt_widgets.widgets.power_charts import power_curve_chart


def test_chart_layers_data_and_no_external_urls():
    curve = power_curve(0.3, against="cluster_size", values=[5, 10, 20, 40, 80], icc=0.05, clusters_per_arm=[6, 10],
                        band=(0.02, 0.1))
    spec = power_curve_chart(curve, target=0.9, title="Power").to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["area", "line", "rule"]
    text = json.dumps(spec)
    # the only address in the spec is Vega-Lite's schema identifier, which nothing downloads
    assert '"url"' not in text and text.count("http") == text.count("vega.github.io/schema")
    datasets = spec["datasets"]
    rows = max(datasets.values(), key=len)
    assert len(rows) == 10 and {"power", "power_low", "power_high", "line", "band"} <= set(rows[0])
    assert rows[0]["band"] == "icc from 0.02 to 0.1"
    assert spec["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"  # cluster sizes on a log axis
    target = [d for d in datasets.values() if len(d) == 1 and "target" in d[0]]
    assert target == [[{"target": 0.9}]]


def test_a_single_line_has_no_legend_and_the_axis_is_found():
    curve = power_curve(0.3, against="icc", values=[0.0, 0.05, 0.1], cluster_size=20, clusters_per_arm=10)
    spec = power_curve_chart(curve, target=None).to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line"]
    assert spec["layer"][0]["encoding"]["x"]["field"] == "icc"
    assert spec["layer"][0]["encoding"]["color"]["legend"] is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(curve=pd.DataFrame({"x": [1]})), "curve: give power_curve"),
    (dict(target=1.5), "target must be in"),
    (dict(against="alpha"), "against: 'alpha' is not a column"),
    (dict(curve=pd.DataFrame({"x": [1], "power": [0.5]})), "against: the curve has none"),
])
def test_bad_input(kwargs, message):
    args = dict(curve=power_curve(0.3, against="icc", values=[0.0, 0.1], cluster_size=20, clusters_per_arm=10)) | kwargs
    with pytest.raises(ValueError, match=message):
        power_curve_chart(args.pop("curve"), **args)
