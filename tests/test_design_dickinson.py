"""Parity with the published tables of the cvcrand paper (Yu, Li, Gallis, Turner 2019), Dickinson example."""
from __future__ import annotations

import numpy as np
import pytest
from support import PAPER_CATEGORICAL, PAPER_COVARIATES

from crt_widgets import ConstrainedDesign
from crt_widgets.core.io.spacefiles import read_space
from crt_widgets.core.diagnostics.validity import cluster_coincidence
from crt_widgets.datasets import dickinson_cvcrand_space_path

# Design_result$bscores in the paper (all rows but the selected scheme, which depends on R's RNG)
PAPER_BSCORES = {"cutoff score": 7.638, "Mean": 24.000, "SD": 15.775, "Min": 1.161, "5%": 5.826,
                 "10%": 7.638, "20%": 10.849, "25%": 12.221, "30%": 13.840, "50%": 20.578,
                 "75%": 31.621, "95%": 55.486, "Max": 116.656}
# Design_result$cluster_coin_des (over cvcrand's 1,287-scheme space)
PAPER_CVRALL_COIN = [[600.600, 88.807, 368.000, 551.750, 603.000, 648.500, 804.000],
                     [0.467, 0.069, 0.286, 0.429, 0.469, 0.504, 0.625],
                     [686.400, 88.807, 483.000, 638.500, 684.000, 735.250, 919.000],
                     [0.533, 0.069, 0.375, 0.496, 0.531, 0.571, 0.714]]
# Design_cov_result$cluster_coin_des
PAPER_CVRCOV_COIN = [[2695.467, 197.148, 2138.000, 2567.000, 2720.000, 2824.500, 3182.000],
                     [0.467, 0.034, 0.370, 0.444, 0.471, 0.489, 0.551],
                     [3080.533, 197.148, 2594.000, 2951.500, 3056.000, 3209.000, 3638.000],
                     [0.533, 0.034, 0.449, 0.511, 0.529, 0.556, 0.630]]
# arms of the schemes the paper selected (data_CR)
PAPER_CVRALL_ARM = [0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0]
PAPER_CVRCOV_ARM = [0, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1]


@pytest.fixture
def paper_design(dickinson):
    return ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL,
                             cluster_id="county", cutoff=0.1, seed=12345)


def test_bscores_match_the_paper(paper_design):
    summary = paper_design.draw().summary["value"]
    for row, value in PAPER_BSCORES.items():
        assert round(summary[row], 3) == pytest.approx(value, abs=1e-9), row
    assert len(paper_design.scores) == 12870


def test_selected_scheme_of_the_paper_scores_6_764(paper_design):
    # locate the paper's selected scheme among the candidates; its score is the paper's 6.764
    matrix = paper_design.candidates.schemes.matrix()
    row = np.flatnonzero((matrix == PAPER_CVRALL_ARM).all(axis=1))
    assert len(row) == 1
    assert round(paper_design.scores[row[0]], 3) == 6.764


def test_constrained_space_keeps_both_tied_schemes_at_the_cutoff(paper_design):
    """Ours keeps 1,288 schemes: cvcrand's 1,287 plus the mirror image of a scheme tied at the cutoff."""
    cvcrand = read_space(dickinson_cvcrand_space_path())
    ours = {tuple(r) for r in paper_design.space.schemes.matrix().tolist()}
    theirs = {tuple(r) for r in cvcrand.schemes.matrix().tolist()}
    assert len(ours) == 1288 and len(theirs) == 1287
    assert theirs < ours
    (extra,) = ours - theirs
    mirror = tuple(1 - v for v in extra)
    assert mirror in theirs
    scores = dict(zip(map(tuple, paper_design.candidates.schemes.matrix().tolist()), paper_design.scores))
    assert scores[extra] == pytest.approx(paper_design.cutoff_score, rel=1e-12)
    assert cvcrand.chosen_scheme.tolist() == PAPER_CVRALL_ARM


def test_validity_table_of_cvcrands_space_matches_the_paper():
    space = read_space(dickinson_cvcrand_space_path())
    table = cluster_coincidence(space.schemes).table()
    np.testing.assert_allclose(table.round(3).to_numpy(), PAPER_CVRALL_COIN, atol=1e-9)


def test_validity_table_of_our_space_is_cvcrands_plus_one_scheme(paper_design):
    table = paper_design.validity.table()
    assert paper_design.validity.n_schemes == 1288
    np.testing.assert_allclose(table.loc["samefrac"].round(2), np.round(PAPER_CVRALL_COIN[1], 2), atol=0.011)
    assert not paper_design.validity.always_together and not paper_design.validity.never_together


def test_cvrcov_accepts_5776_schemes_and_matches_the_paper(dickinson_numeric):
    design = ConstrainedDesign(dickinson_numeric, ["location", "inciis", "uptodateonimmunizations", "hispanic", "income"],
                               8, categorical=["location"], cluster_id="county",
                               constraints=["s5", "mf.5", "any", "mf0.2", "mf0.2"], seed=12345)
    assert len(design.space_index) == 5776
    assert len(design.scores) == 12870
    np.testing.assert_allclose(design.validity.table().round(3).to_numpy(), PAPER_CVRCOV_COIN, atol=1e-9)
    matrix = design.space.schemes.matrix()
    assert (matrix == PAPER_CVRCOV_ARM).all(axis=1).sum() == 1  # the paper's choice is in our space


def test_baseline_table_matches_the_paper_for_its_selected_schemes(dickinson, dickinson_numeric):
    from crt_widgets.core.diagnostics.tables import baseline_table

    t = baseline_table(dickinson, PAPER_COVARIATES, PAPER_CATEGORICAL, np.array(PAPER_CVRALL_ARM))
    assert t.loc["n"].tolist()[:2] == ["8", "8"]
    assert t.loc["location = Urban (%)"].tolist()[:2] == ["3 (37.5)", "5 (62.5)"]
    assert t.loc["inciis (mean (sd))"].tolist()[:2] == ["87.00 (6.59)", "87.00 (8.45)"]
    assert t.loc["uptodateonimmunizations (mean (sd))"].tolist()[:2] == ["39.38 (7.65)", "42.25 (9.18)"]
    assert t.loc["hispanic (mean (sd))"].tolist()[:2] == ["22.25 (13.77)", "22.38 (12.94)"]
    assert t.loc["   High"].tolist()[:2] == ["2 (25.0)", "3 (37.5)"]
    assert t.loc["   Med"].tolist()[:2] == ["3 (37.5)", "3 (37.5)"]
    assert float(t.loc["inciis (mean (sd))", "SMD"]) == pytest.approx(0.0, abs=1e-12)
    t2 = baseline_table(dickinson_numeric, ["location", "inciis", "income"], ["location"], np.array(PAPER_CVRCOV_ARM))
    assert t2.loc["location = 1 (%)"].tolist()[:2] == ["4 (50.0)", "4 (50.0)"]
    assert t2.loc["income (mean (sd))"].tolist()[:2] == ["54899.12 (19130.82)", "52063.75 (12800.82)"]
    # SMD of the continuous covariate from its definition
    inc = dickinson_numeric["income"].to_numpy(float)
    a = np.array(PAPER_CVRCOV_ARM) == 1
    smd = abs(inc[a].mean() - inc[~a].mean()) / np.sqrt((inc[a].var(ddof=1) + inc[~a].var(ddof=1)) / 2)
    assert float(t2.loc["income (mean (sd))", "SMD"]) == pytest.approx(smd, abs=5e-4)


def test_stratified_design_balances_location_exactly(dickinson):
    design = ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL,
                               cluster_id="county", stratify="location", seed=12345)
    urban = (dickinson["location"] == "Urban").to_numpy()
    m = design.candidates.schemes.matrix()
    assert len(m) == 70 * 70  # C(8,4)^2: 8 rural and 8 urban counties, 4 of each treated
    assert (m[:, urban].sum(axis=1) == 4).all() and (m[:, ~urban].sum(axis=1) == 4).all()
    arm = design.draw().arm
    assert arm[urban].sum() == 4
    # the score ignores location (balanced by construction): equal to a design without it
    other = ConstrainedDesign(dickinson, [c for c in PAPER_COVARIATES if c != "location"], 8,
                              categorical=["incomecat"], cluster_id="county")
    full = {tuple(r): s for r, s in zip(other.candidates.schemes.matrix().tolist(), other.scores)}
    mine = [full[tuple(r)] for r in m.tolist()]
    np.testing.assert_allclose(design.scores, mine, rtol=1e-12)


def test_weight_1000_approximates_stratification(dickinson):
    """cvcrand's alternative: a large weight on location; at q = 0.1 every kept scheme balances location."""
    design = ConstrainedDesign(dickinson, PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL,
                               cluster_id="county", weights=[1000, 1, 1, 1, 1], cutoff=0.1)
    urban = (dickinson["location"] == "Urban").to_numpy()
    assert (design.space.schemes.matrix()[:, urban].sum(axis=1) == 4).all()
