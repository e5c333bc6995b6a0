"""Shared fixtures: the Dickinson example as the cvcrand paper uses it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crt_widgets.datasets import load_dickinson


@pytest.fixture
def dickinson() -> pd.DataFrame:
    return load_dickinson()


@pytest.fixture
def dickinson_numeric(dickinson) -> pd.DataFrame:
    """The cvrcov example's data: location coded Rural = 1, Urban = 0."""
    d = dickinson.copy()
    d["location"] = (d["location"] == "Rural").astype(int)
    return d


@pytest.fixture
def small_clusters() -> pd.DataFrame:
    """Nine clusters with two continuous covariates and a three-level category (for brute force)."""
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "id": [f"c{i}" for i in range(9)],
        "size": rng.normal(100, 20, 9).round(1),
        "rate": rng.uniform(0, 1, 9).round(3),
        "region": ["north", "south", "east", "north", "east", "south", "south", "north", "east"],
    })
