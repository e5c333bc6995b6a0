"""crt_widgets.compat.cvcrand: cvcrand's argument names, defaults and result names."""
from __future__ import annotations

import numpy as np
import pytest
from support import PAPER_CATEGORICAL, PAPER_COVARIATES

from crt_widgets.compat.cvcrand import cvrall, cvrcov
from crt_widgets.core.io.spacefiles import read_space


def test_cvrall_as_in_the_paper(dickinson, tmp_path):
    r = cvrall(clustername=dickinson["county"], balancemetric="l2", x=dickinson[PAPER_COVARIATES],
               ntotal_cluster=16, ntrt_cluster=8, categorical=["location", "incomecat"],
               savedata=str(tmp_path / "dickinson_constrained.csv"), bhist=True, cutoff=0.1, seed=12345,
               check_validity=True)
    for key in ["balancemetric", "allocation", "bscores", "assignment_message", "scheme_message", "cutoff_message",
                "choice_message", "data_CR", "baseline_table", "cluster_coin_des", "cluster_coincidence"]:
        assert key in r
    assert r["bscores"].loc["Mean", "value"] == pytest.approx(24.0)
    assert r["assignment_message"] == ("You have indicated that you want to assign 8 clusters to treatment "
                                       "and 8 to control")
    assert list(r["data_CR"].columns[:2]) == ["arm", "clustername"]
    assert r["cluster_coincidence"].shape == (16, 16)
    saved = read_space(tmp_path / "dickinson_constrained.csv")
    assert len(saved.schemes) == 1288
    np.testing.assert_array_equal(saved.chosen_scheme, r["allocation"])
    counts, edges = r["histogram"]
    assert counts.sum() == 12870


def test_cvrall_column_numbers_numschemes_and_stratify(dickinson):
    r = cvrall(x=dickinson[PAPER_COVARIATES], ntotal_cluster=16, ntrt_cluster=8, categorical=[1, 5],
               numschemes=100, seed=1)
    assert "100 best" in r["cutoff_message"]
    s = cvrall(x=dickinson[PAPER_COVARIATES], ntotal_cluster=16, ntrt_cluster=8, categorical=PAPER_CATEGORICAL,
               stratify="location", seed=1)
    urban = (dickinson["location"] == "Urban").to_numpy()
    assert s["allocation"][urban].sum() == 4


def test_cvrcov_as_in_the_paper(dickinson_numeric):
    r = cvrcov(clustername=dickinson_numeric["county"],
               x=dickinson_numeric[["location", "inciis", "uptodateonimmunizations", "hispanic", "income"]],
               ntotal_cluster=16, ntrt_cluster=8, constraints=["s5", "mf.5", "any", "mf0.2", "mf0.2"],
               categorical=["location"], seed=12345, check_validity=True)
    assert r["overall_allocations"].to_dict() == {"all": 12870, "accepted": 5776}
    assert r["cluster_coin_des"].loc["samecount", "Mean"] == pytest.approx(2695.467, abs=5e-4)


@pytest.mark.parametrize("kwargs,match", [
    ({"ntotal_cluster": 15}, "ntotal_cluster"), ({"ntrt_cluster": 16}, "ntrt_cluster"),
    ({"clustername": [1, 2, 3]}, "clustername"), ({"categorical": [9]}, "categorical"),
])
def test_cvrall_bad_input(dickinson, kwargs, match):
    args = dict(x=dickinson[PAPER_COVARIATES], ntotal_cluster=16, ntrt_cluster=8, categorical=PAPER_CATEGORICAL)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        cvrall(**args)


def test_cvrcov_needs_constraints(dickinson):
    with pytest.raises(ValueError, match="constraints"):
        cvrcov(x=dickinson[["inciis"]], ntotal_cluster=16, ntrt_cluster=8)
    with pytest.raises(ValueError, match="DataFrame"):
        cvrcov(x=[1, 2], ntotal_cluster=16, ntrt_cluster=8, constraints=["any"])


def test_savedata_and_savebscores_are_checked_before_anything_is_written(dickinson, tmp_path):
    """An existing savebscores file was found only after savedata had been written (one of the two files saved),
    and the message said "overwrite=True replaces it", an argument cvrall does not have. Both names are checked
    before the design is built, and the message names cvcrand's argument."""
    (tmp_path / "scores.csv").write_text("mine")
    args = dict(clustername=dickinson["county"], x=dickinson[PAPER_COVARIATES], ntotal_cluster=16, ntrt_cluster=8,
                categorical=["location", "incomecat"], seed=1)
    with pytest.raises(FileExistsError, match=r"^savebscores: .*scores.csv exists already.*another file name"):
        cvrall(savedata=str(tmp_path / "space.csv"), savebscores=str(tmp_path / "scores.csv"), **args)
    assert not (tmp_path / "space.csv").exists() and (tmp_path / "scores.csv").read_text() == "mine"
    with pytest.raises(FileExistsError, match=r"^savedata: .*scores.csv exists already") as error:
        cvrcov(savedata=str(tmp_path / "scores.csv"), constraints=["any", "mf.5", "any", "any", "any"],
               **{k: v for k, v in args.items()})
    assert "overwrite=True" not in str(error.value)
