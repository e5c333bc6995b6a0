"""The dashboard's power tab: set its widgets in code and compare with the core's crt_power."""
from __future__ import annotations

import re

import pytest

from crt_widgets.core.power.analytic import crt_clusters_needed, crt_power
from crt_widgets.widgets import DesignDashboard


@pytest.fixture()
def dash():
    return DesignDashboard(example="dickinson", offline=False)


def _shown_power(dash) -> float:
    return float(re.search(r"Power <b>([0-9.]+)</b>", dash.power.answer.value).group(1))


def test_continuous_power_follows_the_inputs_and_the_arm_counts(dash):
    p = dash.power
    p.effect.value, p.icc.value, p.cluster_size.value, p.cv.value = 0.4, 0.02, 30, 0.5
    expected = crt_power(0.4, icc=0.02, cluster_size=30, cv=0.5, clusters_per_arm=8)
    assert _shown_power(dash) == pytest.approx(expected.power, abs=5e-4)
    assert f"{crt_clusters_needed(0.4, icc=0.02, cluster_size=30, cv=0.5)} clusters per arm" in p.answer.value
    dash.arms.n_treat.value = 6  # 6 treated, 10 control: unequal arms
    unequal = crt_power(0.4, icc=0.02, cluster_size=30, cv=0.5, clusters_per_arm=6, clusters_control=10)
    assert _shown_power(dash) == pytest.approx(unequal.power, abs=5e-4)
    assert "treatment (6 clusters) against control (10)" in p.answer.value and f"t on {unequal.df} df" in p.answer.value


def test_binary_outcome_and_multi_arm_comparison(dash):
    p = dash.power
    p.outcome.value = "binary"
    assert p.effect.layout.display == "none" and p.p_control.layout.display is None
    p.p_control.value, p.p_treatment.value = 0.2, 0.35
    expected = crt_power(0.15, outcome="binary", p_control=0.2, icc=0.05, cluster_size=50, clusters_per_arm=8)
    assert _shown_power(dash) == pytest.approx(expected.power, abs=5e-4)
    dash.arms.n_arms.value = 4  # 16 counties, 4 per arm
    four = crt_power(0.15, outcome="binary", p_control=0.2, icc=0.05, cluster_size=50, clusters_per_arm=4)
    assert _shown_power(dash) == pytest.approx(four.power, abs=5e-4)
    assert "any two of the 4 arms (4 clusters each" in p.answer.value


@pytest.mark.parametrize("field,value,match", [
    ("icc", 1.5, "icc"), ("cluster_size", 0, "cluster_size"), ("alpha", 0, "alpha"), ("effect", 0, "effect"),
    ("cv", -1, "cv"),
])
def test_bad_input_is_a_message_in_the_panel_and_recovers(dash, field, value, match):
    good = getattr(dash.power, field).value
    getattr(dash.power, field).value = value
    assert 'class="crt-error"' in dash.power.answer.value and match in dash.power.answer.value
    getattr(dash.power, field).value = good
    assert "Power <b>" in dash.power.answer.value
