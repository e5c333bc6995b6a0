"""The design matrix of a multi-period trial as a clusters x periods grid, and the balance of a constrained
order, as offline Altair specifications (the data inside the specification, SVG rendered without a network)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import vl_convert as vlc

import crt_widgets as crt
from crt_widgets.widgets.multiperiod_charts import design_matrix_chart, time_balance_chart


def rows_of(spec: dict) -> list[dict]:
    return spec["datasets"][spec["data"]["name"]]


def test_the_grid_of_a_drawn_order():
    clusters = crt.datasets.simulate_stepped_wedge_clusters(8, seed=2)
    allocation = crt.SteppedWedgeDesign(clusters, ["size"], 4, cluster_id="cluster", seed=1).draw()
    spec = design_matrix_chart(allocation).to_dict()
    rows = rows_of(spec)
    assert len(rows) == 8 * 5 and spec["encoding"]["y"]["sort"] == clusters.cluster.tolist()
    treated = {r["cluster"]: 0 for r in rows}
    for r in rows:
        treated[r["cluster"]] += r["condition"] == "treatment"
    assert [treated[c] for c in clusters.cluster] == allocation.time_on_treatment.astype(int).tolist()
    assert "url" not in json.dumps(spec["data"])  # nothing fetched
    assert vlc.vegalite_to_svg(spec).startswith("<svg")


def test_conditions_and_colours():
    transition = design_matrix_chart(crt.stepped_wedge(3, 2, transition_periods=1)).to_dict()
    assert transition["encoding"]["color"]["scale"]["domain"] == ["control", "treatment", "not observed"]
    levels = design_matrix_chart(crt.MultiPeriodDesign([[0, 1, 2], [0, 0, 1]], 1)).to_dict()
    assert levels["encoding"]["color"]["scale"]["domain"] == ["control", "treatment", "treatment level 2"]
    fractions = design_matrix_chart(crt.MultiPeriodDesign([[0, 0.5, 1], [0, 0, 0.5]], 1)).to_dict()
    scale = fractions["encoding"]["color"]["scale"]
    assert scale["domain"][1] == "treatment (50% of the effect)" and scale["range"][1] != scale["range"][2]


def test_the_balance_chart_and_bad_input():
    clusters = crt.datasets.simulate_stepped_wedge_clusters(8, seed=2)
    design = crt.SteppedWedgeDesign(clusters, ["size", "baseline"], 4, cluster_id="cluster", seed=1)
    spec = time_balance_chart(design.balance_comparison()).to_dict()
    values = {(r["covariate"], r["space"], r["statistic"]): r["value"] for r in rows_of(spec)}
    table = design.balance_comparison()["|r| with time on treatment"]
    assert values[("size", "constrained", "median")] == pytest.approx(table.loc["size", "constrained median"])
    assert len(values) == 8 and vlc.vegalite_to_svg(spec).startswith("<svg")
    with pytest.raises(ValueError, match="grid: expected a MultiPeriodDesign"):
        design_matrix_chart(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="comparison: expected the table of SteppedWedgeDesign.balance_comparison"):
        time_balance_chart(clusters)
