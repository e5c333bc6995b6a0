"""The simulated ED-LEAD data: the trial's system sizes, reproducible, sensible covariates, bad input."""
from __future__ import annotations

import pandas as pd
import pytest

from crt_widgets.datasets import simulate_edlead
from crt_widgets.datasets.edlead import EDLEAD_SYSTEM_SIZES


def test_shape_and_system_sizes():
    eds = simulate_edlead(seed=1)
    assert list(eds.columns) == ["ed", "health_system", "volume", "location"]
    assert len(eds) == 80 and eds.ed.is_unique
    sizes = eds.groupby("health_system", sort=True).size().tolist()
    assert sizes == list(EDLEAD_SYSTEM_SIZES)
    assert eds.location.cat.categories.tolist() == ["rural", "urban"]
    assert (eds.volume > 0).all() and eds.volume.dtype.kind == "i"


def test_reproducible_and_seed_dependent():
    pd.testing.assert_frame_equal(simulate_edlead(seed=3), simulate_edlead(seed=3))
    assert not simulate_edlead(seed=3).volume.equals(simulate_edlead(seed=4).volume)


def test_urban_eds_are_busier_on_average():
    eds = pd.concat([simulate_edlead(seed=s) for s in range(20)])
    ratio = eds.groupby("location", observed=True).volume.median()
    assert 1.4 < ratio["urban"] / ratio["rural"] < 2.3  # default urban_ratio 1.8


def test_custom_sizes_and_bad_input():
    eds = simulate_edlead(seed=1, system_sizes=[3, 2])
    assert len(eds) == 5 and eds.health_system.tolist() == ["HS01"] * 3 + ["HS02"] * 2
    with pytest.raises(ValueError, match="system_sizes"):
        simulate_edlead(system_sizes=[3, 0])
    with pytest.raises(ValueError, match="median_volume"):
        simulate_edlead(median_volume=-1)


def test_docstring_example():
    import doctest

    import crt_widgets.datasets.edlead as edlead

    assert doctest.testmod(edlead).failed == 0
