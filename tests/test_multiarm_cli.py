"""The stratify, multiarm and match subcommands: files written in the documented formats, clear errors."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from crt_widgets.cli import main
from crt_widgets.core.io.spacefiles import read_multiarm_space
from crt_widgets.datasets import simulate_edlead


@pytest.fixture()
def eds_csv(tmp_path):
    path = tmp_path / "eds.csv"
    simulate_edlead(seed=5).to_csv(path, index=False)
    return path


def test_stratify_writes_allocation_and_space(tmp_path, eds_csv, capsys):
    out = tmp_path / "out"
    code = main(["stratify", "--data", str(eds_csv), "--strata", "health_system", "--unit-id", "ed",
                 "--factors", "a", "b", "c", "--seed", "4", "--space-size", "30", "--out", str(out)])
    assert code == 0
    alloc = pd.read_csv(out / "stratify_allocation.csv")
    assert list(alloc.columns) == ["unit", "stratum", "arm", "arm_label", "a", "b", "c"]
    assert (alloc.arm_label.value_counts() == 10).all()
    space = read_multiarm_space(out / "stratify_space.csv")
    assert space.labels.shape == (30, 80) and np.isnan(space.scores).all()
    np.testing.assert_array_equal(space.labels[space.chosen], alloc.arm_label.to_numpy())
    # same seed, same files
    main(["stratify", "--data", str(eds_csv), "--strata", "health_system", "--unit-id", "ed",
          "--factors", "a", "b", "c", "--seed", "4", "--space-size", "30", "--out", str(tmp_path / "again")])
    assert (tmp_path / "again" / "stratify_space.csv").read_text() == (out / "stratify_space.csv").read_text()
    # the audit ties the files to the seed, every argument and the exact input file
    audit = json.loads((out / "stratify_audit.json").read_text())
    assert audit["seed"] == 4 and audit["arguments"]["factors"] == ["a", "b", "c"]
    assert audit["input"] == {"file": str(eds_csv), "sha256": hashlib.sha256(eds_csv.read_bytes()).hexdigest()}
    assert [r["arm_label"] for r in audit["allocation"]] == alloc.arm_label.tolist()
    from crt_widgets.core.randomization.balanced_sampler import count_allocations

    expected = count_allocations(pd.read_csv(eds_csv).health_system, 8)
    assert f"sampler exact; allocations satisfying the rule: {expected:,};" in capsys.readouterr().out


def test_stratify_verification_report(capsys):
    assert main(["stratify", "--example", "edlead", "--seed", "1", "--space-size", "5", "--verify", "4000"]) == 0
    text = capsys.readouterr().out
    assert "Verification on 4,000 draws" in text and "Mean count of each arm per stratum" in text
    assert "HS14" in text and "chi-square min p" in text


def test_multiarm_writes_allocation_and_space(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["multiarm", "--example", "edlead", "--size", "5000", "--n-best", "50", "--seed", "2",
                 "--out", str(out)])
    assert code == 0
    alloc = pd.read_csv(out / "multiarm_allocation.csv")
    assert list(alloc.columns[:4]) == ["ed", "health_system", "arm", "arm_label"]
    space = read_multiarm_space(out / "multiarm_space.csv")
    assert space.labels.shape == (50, 80)
    np.testing.assert_array_equal(space.labels[space.chosen], alloc.arm_label.to_numpy())
    assert np.isfinite(space.scores).all()
    audit = json.loads((out / "multiarm_audit.json").read_text())  # seed and parameters travel with it
    assert audit["parameters"]["seed"] == 2 and audit["parameters"]["n_best"] == 50
    assert audit["allocation"] == dict(zip(alloc["ed"], alloc["arm_label"].astype(str)))
    assert audit["n_constrained"] == 50 and audit["chosen_score"] == pytest.approx(space.scores[space.chosen])
    text = capsys.readouterr().out
    selected = next(line for line in text.splitlines() if line.startswith("score (selected scheme)"))
    assert space.scores[space.chosen] == pytest.approx(float(selected.split()[-1]), abs=5e-5)
    assert "Balance scores" in text and "Baseline table" in text and "Validity" in text


def test_match_writes_allocation_and_space(tmp_path):
    out = tmp_path / "out"
    assert main(["match", "--example", "callcenter", "--seed", "3", "--out", str(out)]) == 0
    alloc = pd.read_csv(out / "match_allocation.csv")
    space = pd.read_csv(out / "match_space.csv")
    assert len(space) == 32 and space.chosen.sum() == 1
    assert (alloc.groupby("group").arm.sum() == 1).all()
    assert list(space.columns[:3]) == ["scheme", "chosen", "score"]  # the one multi-arm space format
    chosen = space.loc[space.chosen == 1].iloc[0, 3:].to_numpy(dtype=int)
    np.testing.assert_array_equal(chosen, alloc.arm.to_numpy())
    audit = json.loads((out / "match_audit.json").read_text())
    assert audit["seed"] == 3 and audit["input"] == {"example": "callcenter"} and audit["n_possible"] == 32
    assert [r["arm"] for r in audit["allocation"]] == alloc.arm.tolist()


def test_matched_space_feeds_the_permutation_test(tmp_path, capsys):
    """The space a matched design saved analyses as written: the two-arm JSON directly, the CSV as arm 1 against
    arm 0; both equal the test over the design object itself."""
    from crt_widgets import MatchedDesign, match_clusters, permutation_test
    from crt_widgets.datasets import load_dickinson, load_dickinson_outcome

    counties, covariates = load_dickinson(), ["inciis", "uptodateonimmunizations", "hispanic"]
    counties.to_csv(tmp_path / "counties.csv", index=False)
    out = tmp_path / "out"
    assert main(["match", "--data", str(tmp_path / "counties.csv"), "--cluster-id", "county", "--covariates",
                 *covariates, "--seed", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    arms = pd.read_csv(out / "match_allocation.csv").set_index("cluster")["arm"]
    design = MatchedDesign(match_clusters(counties, covariates, cluster_id="county"), seed=3)
    outcomes = load_dickinson_outcome()
    direct = permutation_test(outcomes, "outcome", "county", design, observed=arms.to_dict(), family="binomial")
    assert direct.n_schemes == 2 ** 8
    from_json = permutation_test(outcomes, "outcome", "county", out / "match_space.json.gz", family="binomial")
    assert from_json.p_value == direct.p_value and from_json.statistic == pytest.approx(direct.statistic)
    outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
    command = ["analyze", "--data", str(tmp_path / "outcomes.csv"), "--outcome", "outcome", "--cluster", "county",
               "--family", "binary", "--json"]
    for space in (["--space", str(out / "match_space.json.gz")],
                  ["--space", str(out / "match_space.csv"), "--treated-arms", "1"]):
        assert main(command + space) == 0
        assert json.loads(capsys.readouterr().out)["p_value"] == direct.p_value


@pytest.mark.parametrize("argv,message", [
    (["stratify", "--example", "edlead", "--arms", "1"], "n_arms"),
    (["stratify", "--example", "edlead", "--strata", "nope"], "--strata"),
    (["stratify", "--example", "edlead", "--space-size", "0"], "--space-size"),
    (["multiarm", "--example", "edlead", "--cutoff", "2", "--size", "100"], "cutoff"),
    (["multiarm", "--example", "edlead", "--balance", "margins", "--arms", "4", "--size", "100"], "balance"),
    (["match", "--example", "callcenter", "--group-size", "3"], "group_size"),
    (["match", "--data", "/nonexistent.csv"], "no such file"),
])
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err
