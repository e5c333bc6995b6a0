"""Greene's constraint syntax (cvrcov), checked against the definitions by brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from crt_widgets import ConstrainedDesign
from crt_widgets.core.randomization.constraints import parse_constraint


@pytest.mark.parametrize("text,on,fraction,bound", [
    ("any", None, False, float("inf")), ("s5", "s", False, 5.0), ("sf.5", "s", True, 0.5),
    ("m10", "m", False, 10.0), ("mf0.2", "m", True, 0.2), ("mf.5", "m", True, 0.5), ("s100", "s", False, 100.0),
    ("ANY", None, False, float("inf")), (" m2.5 ", "m", False, 2.5),
])
def test_parse(text, on, fraction, bound):
    c = parse_constraint(text)
    assert (c.on, c.fraction, c.bound) == (on, fraction, bound)


@pytest.mark.parametrize("bad", ["", "x5", "s", "mf", "m-1", "sf..5", "s5x", "anyx", "f5", 5])
def test_malformed_constraints_name_themselves(bad):
    with pytest.raises(ValueError, match="constraint"):
        parse_constraint(bad)


def _brute(x, n_treat, rules):
    n = len(x)
    kept = 0
    for combo in itertools.combinations(range(n), n_treat):
        t = np.zeros(n, bool)
        t[list(combo)] = True
        ok = True
        for col, (on, frac, bound) in zip(x.T, rules):
            if on is None:
                continue
            if on == "s":
                diff, ref = abs(col[t].sum() - col[~t].sum()), col.sum() / 2
            else:
                diff, ref = abs(col[t].mean() - col[~t].mean()), col.mean()
            ok &= diff <= (bound * abs(ref) if frac else bound) + 1e-9
        kept += ok
    return kept


@pytest.mark.parametrize("n_treat", [4, 3])
@pytest.mark.parametrize("constraints", [["s30", "any"], ["sf.2", "m0.2"], ["mf.1", "mf.5"], ["any", "s0.5"]])
def test_every_form_against_its_definition(small_clusters, n_treat, constraints):
    d = ConstrainedDesign(small_clusters, ["size", "rate"], n_treat, cluster_id="id", constraints=constraints)
    rules = [(c.on, c.fraction, c.bound) for c in map(parse_constraint, constraints)]
    x = small_clusters[["size", "rate"]].to_numpy(float)
    expected = _brute(x, n_treat, rules)
    if expected < 2:
        with pytest.raises(ValueError, match="at least 2"):
            d.space_index
    else:
        assert len(d.space_index) == expected
        assert f"{expected:,} of" in d.cutoff_message


def test_constraint_on_a_categorical_applies_to_each_dummy(small_clusters):
    d = ConstrainedDesign(small_clusters, ["region", "size"], 3, categorical=["region"], cluster_id="id",
                          constraints=["s1", "any"])
    m = d.space.schemes.matrix()
    for level in ("north", "south"):  # "east" is the reference level
        col = (small_clusters["region"] == level).to_numpy()
        treated = m[:, col].sum(axis=1)
        assert np.all(np.abs(treated - (col.sum() - treated)) <= 1)
