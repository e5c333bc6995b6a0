"""The ``crt-widgets power`` subcommand."""
from __future__ import annotations

import json

import pytest

from crt_widgets.cli import main


def test_analytic_power_and_clusters_needed(capsys):
    assert main(["power", "--effect", "0.3", "--icc", "0.05", "--cluster-size", "20", "--clusters-per-arm", "10",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["power"] == pytest.approx(0.5291934022, abs=1e-8)  # R power.t.test, see test_power.py
    assert main(["power", "--effect", "0.3", "--icc", "0.05", "--cluster-size", "20", "--target-power", "0.8",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clusters_per_arm"] == 19


def test_analytic_options_for_every_outcome(capsys):
    from crt_widgets.core.power.analytic import crt_power

    argv = ["power", "--outcome", "binary", "--scale", "ratio", "--p-control", "0.2", "--effect", "0.7", "--icc",
            "0.02", "--clusters-per-arm", "16", "--target-power", "0.8", "--test", "z", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    expected = crt_power(0.7, outcome="binary", scale="ratio", p_control=0.2, icc=0.02, clusters_per_arm=16, power=0.8,
                         test="z")
    assert out["solved_for"] == "cluster_size" and out["cluster_size"] == expected.cluster_size
    assert out["power"] == pytest.approx(expected.power, rel=1e-12)
    argv = ["power", "--outcome", "count", "--rate-control", "0.05", "--rate-cv", "0.25", "--scale", "ratio",
            "--effect", "0.7", "--cluster-size", "100", "--person-time", "2", "--target-power", "0.8"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    k = crt_power(0.7, outcome="count", rate_control=0.05, rate_cv=0.25, scale="ratio", cluster_size=100,
                  person_time=2, power=0.8).clusters_per_arm
    assert text.startswith(f"clusters per arm for power 0.8: {k}\n")
    argv = ["power", "--effect", "0.4", "--icc", "0.05", "--cluster-sizes", "5", "10", "30", "--clusters-per-arm", "3",
            "--n-arms", "3", "--multiplicity", "dunnett", "--r2-cluster", "0.3", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    expected = crt_power(0.4, icc=0.05, cluster_sizes=[5, 10, 30], clusters_per_arm=3, n_arms=3, multiplicity="dunnett",
                         r2_cluster=0.3)
    assert out["power"] == pytest.approx(expected.power, rel=1e-12) and out["df"] == 6


def test_design_simulation_is_reproducible(capsys):
    argv = ["power", "design", "--effect", "0.5", "--icc", "0.05", "--cluster-size", "10", "--n-clusters", "8",
            "--trials", "20", "--seed", "3", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*argv, "--jobs", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert [row["allocation"] for row in first["table"]][:3] == ["simple", "stratified", "pair-matched"]


def test_chapter_simulation_on_the_example(capsys):
    assert main(["power", "chapter", "--example", "callcenter", "--effects", "3", "--calls-per-rep", "10",
                 "--seed", "1"]) == 0
    assert "PowerSimulation" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["power", "--effect", "0.3", "--icc", "0.05"], "needs --cluster-size"),
        (["power", "--effect", "0.3", "--icc", "2", "--cluster-size", "20", "--clusters-per-arm", "5"], "icc must be"),
        (["power", "--effect", "0.3", "--icc", "0.1", "--cluster-size", "20", "--clusters-per-arm", "5",
          "--outcome", "count"], "needs --rate-control, --rate-cv"),
        (["power", "--effect", "0.3", "--icc", "0.1", "--target-power", "0.8"],
         "left out: --cluster-size, --clusters-per-arm"),
        (["power", "--effect", "0.3", "--icc", "0.1", "--cluster-size", "20", "--clusters-per-arm", "5",
          "--test", "permutation"], "--test permutation is for power design"),
        (["power", "design", "--effect", "0.3", "--icc", "0.1", "--cluster-size", "20", "--n-clusters", "8",
          "--test", "z"], "--test z is for power analytic"),
        (["power", "chapter"], "needs --data"),
        (["power", "chapter", "--data", "no/such.csv"], "no such file"),
        # options of another mode were ignored without a word: the power printed was not the one asked for
        (["power", "--effect", "0.3", "--icc", "0.1", "--cluster-size", "20", "--clusters-per-arm", "5",
          "--trials", "100"], "--trials is for power design; power analytic does not use it"),
        (["power", "design", "--effect", "0.3", "--icc", "0.1", "--cluster-size", "20", "--n-clusters", "8",
          "--cv", "0.5", "--clusters-per-arm", "4"], "--cv, --clusters-per-arm are for power analytic; power design"),
        (["power", "chapter", "--example", "callcenter", "--icc", "0.1"], "--icc is for power analytic or design"),
        (["power", "design", "--effect", "0.3", "--icc", "0.1", "--cluster-size", "20.5", "--n-clusters", "8"],
         "--cluster-size: power design simulates whole clusters; got 20.5"),
    ],
)
def test_bad_input_prints_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_the_help_says_what_effect_means_in_each_mode(capsys):
    """--effect's help said "binary: in proportions" for every mode; power design reads a binary effect as a log
    odds ratio and a count effect as a log rate ratio, so 0.1 meant for 10 points was a log odds ratio of 0.1."""
    with pytest.raises(SystemExit):
        main(["power", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the log odds ratio (binary, control proportion 0.3)" in text and "the log rate ratio (count" in text
