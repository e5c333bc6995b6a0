"""``crt-widgets analyze``: the paper's example, JSON, the interval and companions, the simple space, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from crt_widgets import permutation_test
from crt_widgets.cli import main
from crt_widgets.commands.analyze import DICKINSON
from crt_widgets.core.analysis.trial import analyze_trial
from crt_widgets.core.io.spacefiles import read_space
from crt_widgets.datasets import dickinson_cvcrand_space_path, load_dickinson_outcome

ADJUST = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]


@pytest.fixture(scope="module")
def outcomes_csv(tmp_path_factory):
    """cvcrand's outcomes with each county's arm (the chosen scheme) as a column."""
    outcomes = load_dickinson_outcome()
    arm = read_space(dickinson_cvcrand_space_path()).chosen_scheme
    path = tmp_path_factory.mktemp("analyze") / "outcomes.csv"
    outcomes.assign(arm=arm[outcomes["county"] - 1]).to_csv(path, index=False)
    return path


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_the_papers_example_as_json(capsys, outcomes_csv):
    doc = _json(capsys, ["analyze", "--example", "dickinson", "--json"])
    assert doc["p_value"] == pytest.approx(54 / 1287) and doc["n_schemes"] == 1287
    assert doc["FinalScheme"]["4"] == 1 and doc["FinalScheme"]["1"] == 0 and doc["n_individuals"] == 4800
    # the same from files, every option spelled out
    doc = _json(capsys, ["analyze", "--data", str(outcomes_csv), "--space", str(dickinson_cvcrand_space_path()),
                         "--outcome", "outcome", "--cluster", "county", "--family", "binary",
                         "--covariates", *ADJUST, "--categorical", "location", "incomecat", "--json"])
    assert doc["p_value"] == pytest.approx(54 / 1287)
    assert doc["p_values"]["greater"] <= doc["p_value"]  # the observed effect is positive


def test_interval_and_model_based_companions(capsys):
    doc = _json(capsys, ["analyze", "--example", "dickinson", "--ci", "--json"])
    lo, hi = doc["conf_int"]
    assert lo < doc["estimate"] < hi and lo > 0  # p = 0.042 < 0.05: the 95% interval excludes 0
    methods = [row["method"] for row in doc["estimates"]]
    assert methods[0].startswith("Clustered permutation") and any("GEE" in m for m in methods)
    from crt_widgets.core.io.spacehash import sha256_of_space

    # cvcrand's CSV names no clusters: its space hashes over the columns numbered 1..16, with no settings
    assert doc["space_sha256"] == sha256_of_space(read_space(dickinson_cvcrand_space_path()))
    assert any("Mixed model" in m for m in methods)
    assert main(["analyze", "--example", "dickinson", "--ci"]) == 0
    text = capsys.readouterr().out
    assert "95% CI" in text and "log odds ratio" in text and "GEE" in text


def test_one_sided_and_count_outcomes(capsys):
    assert main(["analyze", "--example", "dickinson", "--alternative", "greater"]) == 0
    assert "greater p-value = " in capsys.readouterr().out
    # with the models too, their p-values are for the same side as the test's
    doc = _json(capsys, ["analyze", "--example", "dickinson", "--alternative", "greater", "--ci", "--json"])
    report = analyze_trial(load_dickinson_outcome(), "outcome", "county", dickinson_cvcrand_space_path(),
                           DICKINSON["covariates"], DICKINSON["categorical"], "binomial", alternative="greater")
    gee = next(e for e in doc["estimates"] if e["method"].startswith("GEE"))
    assert gee["p_value (greater)"] == pytest.approx(report.gee.one_sided("greater"))
    assert doc["p_value"] == pytest.approx(report.permutation.p_values["greater"])
    doc = _json(capsys, ["analyze", "--example", "dickinson", "--family", "count", "--outcome", "hispanic",
                         "--covariates", "inciis", "--categorical", "--json"])
    direct = permutation_test(load_dickinson_outcome(), "hispanic", "county", dickinson_cvcrand_space_path(),
                              ["inciis"], family="poisson")
    assert doc["family"] == "poisson" and doc["p_value"] == pytest.approx(direct.p_value)


def test_simple_space(capsys, outcomes_csv):
    doc = _json(capsys, ["analyze", "--data", str(outcomes_csv), "--space", "simple", "--treatment", "arm",
                         "--outcome", "outcome", "--cluster", "county", "--family", "binomial", "--json"])
    arm = read_space(dickinson_cvcrand_space_path()).chosen_scheme
    direct = permutation_test(load_dickinson_outcome(), "outcome", "county", "simple", family="binomial",
                              observed=dict(zip(range(1, 17), arm)))
    assert doc["n_schemes"] == 12870 and doc["p_value"] == pytest.approx(direct.p_value)
    # sampled instead of enumerated: reproducible from --seed
    args = ["analyze", "--data", str(outcomes_csv), "--space", "simple", "--treatment", "arm", "--outcome",
            "outcome", "--cluster", "county", "--simple-size", "3000", "--seed", "5", "--json"]
    first, second = _json(capsys, args), _json(capsys, args)
    # 3,000 draws from 12,870 schemes repeat some (about 330 expected); repeats are dropped
    assert 2500 < first["n_schemes"] < 3000 and first["p_value"] == second["p_value"]
    assert "seed 5" in first["notes"][0]


@pytest.mark.parametrize("argv,message", [
    (["--outcome", "nope"], "column(s) not found: nope"),
    (["--space", "simple"], "--treatment"),
    (["--family", "binomial", "--outcome", "inciis"], "0 or 1"),
    (["--covariates", "inciis", "--categorical", "location"], "categorical: location not among the covariates"),
    (["--covariates", "location", "--categorical"], "covariate 'location' is not numeric (str); declare it categorical"),
    (["--space", "no/such/space.csv"], "no/such/space.csv"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    assert main(["analyze", "--example", "dickinson", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_data_without_space_or_columns(capsys, outcomes_csv, tmp_path):
    assert main(["analyze", "--data", str(outcomes_csv), "--outcome", "outcome", "--cluster", "county"]) == 2
    assert "--space" in capsys.readouterr().err
    assert main(["analyze", "--data", str(outcomes_csv), "--space", str(dickinson_cvcrand_space_path())]) == 2
    assert "--outcome and --cluster" in capsys.readouterr().err
    missing = tmp_path / "with_gaps.csv"
    frame = load_dickinson_outcome()
    frame.loc[np.arange(7), "outcome"] = np.nan
    frame.to_csv(missing, index=False)
    assert main(["analyze", "--data", str(missing), "--space", str(dickinson_cvcrand_space_path()),
                 "--outcome", "outcome", "--cluster", "county", "--family", "binomial"]) == 0
    assert "note: 7 row(s) with missing values were dropped" in capsys.readouterr().out


def test_json_with_an_unbounded_interval_is_strict_json(capsys, tmp_path):
    """Four clusters: no 95% interval is possible; the limits print as "-inf"/"inf", not bare Infinity."""
    rng = np.random.default_rng(1)
    path = tmp_path / "tiny.csv"
    import pandas as pd

    pd.DataFrame({"y": rng.normal(size=40), "cl": np.repeat(np.arange(4), 10),
                  "arm": np.repeat([1, 0, 1, 0], 10)}).to_csv(path, index=False)
    assert main(["analyze", "--data", str(path), "--space", "simple", "--treatment", "arm", "--outcome", "y",
                 "--cluster", "cl", "--ci", "--json"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert doc["conf_int"] == ["-inf", "inf"] and "too small" in doc["notes"][0]


def test_treatment_column_is_checked_against_a_saved_space(capsys, tmp_path, outcomes_csv):
    """--treatment with a saved space was ignored without a word (a column that disagreed with the space's used
    allocation gave the space's p-value), and text arms were "invalid literal for int() with base 10"."""
    import pandas as pd

    data = pd.read_csv(outcomes_csv)
    space = str(dickinson_cvcrand_space_path())
    argv = ["analyze", "--space", space, "--outcome", "outcome", "--cluster", "county", "--family", "binomial",
            "--treatment", "arm", "--data"]
    assert main([*argv, str(outcomes_csv)]) == 0
    assert "p-value = 0.004662" in capsys.readouterr().out  # unadjusted (cvcrand's 0.042 adjusts for 5 covariates)
    swapped = tmp_path / "swapped.csv"
    data.assign(arm=1 - data["arm"]).to_csv(swapped, index=False)
    assert main([*argv, str(swapped)]) == 2
    assert "observed: the allocation given is not the one the space marks as used" in capsys.readouterr().err
    text = tmp_path / "text.csv"
    data.assign(arm=data["arm"].map({0: "control", 1: "treated"})).to_csv(text, index=False)
    assert main(["analyze", "--space", "simple", "--outcome", "outcome", "--cluster", "county", "--treatment", "arm",
                 "--data", str(text)]) == 2
    assert "--treatment: 'arm' must hold each cluster's arm as 0 or 1, got 'control', 'treated'" in \
        capsys.readouterr().err
