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
          "--outcome", "count"], "simulation only"),
        (["power", "chapter"], "needs --data"),
        (["power", "chapter", "--data", "no/such.csv"], "no such file"),
    ],
)
def test_bad_input_prints_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
