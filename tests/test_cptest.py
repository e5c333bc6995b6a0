"""cvcrand's cptest interface: the paper's p-value, cvcrand's result elements and wording, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from crt_widgets.compat._cptest import _r_round4
from crt_widgets.compat.cvcrand import cptest
from crt_widgets.core.io.spacefiles import read_space
from crt_widgets.datasets import dickinson_cvcrand_space_path, load_dickinson_outcome

ADJUST = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]
# the chosen scheme of cvcrand's saved space (row 928 of the file), counties 1..16
FINAL = [0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0]


@pytest.fixture(scope="module")
def outcomes():
    return load_dickinson_outcome()


def _paper_call(outcomes, **changes):
    kwargs = dict(outcome=outcomes["outcome"], clustername=outcomes["county"], z=outcomes[ADJUST],
                  cspacedatname=dickinson_cvcrand_space_path(), outcometype="binary",
                  categorical=["location", "incomecat"])
    return cptest(**(kwargs | changes))


def test_reproduces_the_papers_p_value(outcomes):
    r = _paper_call(outcomes)
    # 54 of the 1,287 schemes are at least as extreme; the paper reports 0.042 (cvcrand rounds to 4 places)
    assert r["pvalue"] == pytest.approx(54 / 1287, abs=1e-15)
    assert r["pvalue_statement"] == "Clustered permutation test p-value = 0.042"
    assert list(r["FinalScheme"].columns) == ["Cluster_ID", "Intervention"]
    assert r["FinalScheme"]["Cluster_ID"].tolist() == list(range(1, 17))
    assert r["FinalScheme"]["Intervention"].tolist() == FINAL
    assert r["result"].n_schemes == 1287


def test_p_value_by_cvcrands_recipe_literally(outcomes):
    """statsmodels' logistic fit, R's dummy coding, cptest's +1/-1 products and its exact comparison."""
    z = pd.get_dummies(outcomes[ADJUST], columns=["location", "incomecat"], drop_first=True).astype(float)
    fit = sm.GLM(outcomes["outcome"], sm.add_constant(z), family=sm.families.Binomial()).fit(tol=1e-12)
    means = (outcomes["outcome"] - fit.fittedvalues).groupby(outcomes["county"]).mean().to_numpy()
    space = read_space(dickinson_cvcrand_space_path())
    diffs = (2.0 * space.schemes.matrix() - 1) @ means
    exact = np.mean(np.abs(diffs) >= np.abs(diffs[space.chosen]))
    assert exact == pytest.approx(54 / 1287)
    # only the chosen scheme and its mirror image (also in the space) tie; the next one is 5e-4 away,
    # so the count does not hinge on the tie tolerance
    gaps = np.abs(np.abs(diffs) - abs(diffs[space.chosen]))
    assert np.sort(gaps)[1] < 1e-12 < 1e-4 < np.sort(gaps)[2]


def test_column_numbers_and_count_outcomes(outcomes):
    by_number = _paper_call(outcomes, categorical=[1, 5])
    assert by_number["pvalue"] == pytest.approx(54 / 1287)
    counts = _paper_call(outcomes, outcome=outcomes["inciis"] // 10, outcometype="count")
    assert 0 < counts["pvalue"] <= 1 and counts["result"].family == "poisson"
    unadjusted = _paper_call(outcomes, z=None, categorical=None)
    assert unadjusted["result"].n_individuals == 4800 and unadjusted["pvalue"] != by_number["pvalue"]


def test_r_formatting_of_the_p_value():
    assert [_r_round4(v) for v in (54 / 1287, 1e-4, 4.9e-4, 0.0012, 1.0, 0.0, 0.5)] == \
        ["0.042", "1e-04", "5e-04", "0.0012", "1", "0", "0.5"]


@pytest.mark.parametrize("changes,match", [
    ({"cspacedatname": None}, "cspacedatname"),
    ({"outcometype": "ordinal"}, "family"),
    ({"categorical": [7]}, "column number 7"),
    ({"categorical": ["nope"]}, "nope not among the covariates"),
    ({"z": None, "categorical": ["location"]}, "without z"),
])
def test_bad_arguments(outcomes, changes, match):
    with pytest.raises(ValueError, match=match):
        _paper_call(outcomes, **changes)


def test_lengths_must_agree(outcomes):
    with pytest.raises(ValueError, match="clustername: 4799 values for 4800"):
        _paper_call(outcomes, clustername=outcomes["county"].iloc[1:])
    with pytest.raises(ValueError, match="z: 4799 rows"):
        _paper_call(outcomes, z=outcomes[ADJUST].iloc[1:])
