"""The ``crt-widgets design`` command line."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from crt_widgets import ConstrainedDesign
from crt_widgets.cli import main


def test_example_prints_the_summary_and_writes_files(tmp_path, capsys):
    assert main(["design", "--example", "dickinson", "--seed", "12345", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cutoff score" in out and "7.638" in out and "116.656" in out
    assert "samecount" in out
    alloc = pd.read_csv(tmp_path / "design_allocation.csv")
    assert alloc["arm"].sum() == 8
    assert (tmp_path / "design_space_cvcrand.csv").read_text().startswith('"SchemeChosen"')
    audit = json.loads((tmp_path / "design_audit.json").read_text())
    assert audit["parameters"]["seed"] == 12345


def test_csv_input_with_json_output_equals_the_api(tmp_path, capsys, dickinson):
    path = tmp_path / "clusters.csv"
    dickinson.to_csv(path, index=False)
    args = ["design", "--data", str(path), "--cluster-id", "county", "--n-treat", "6", "--covariates",
            "inciis", "hispanic", "incomecat", "--categorical", "incomecat", "--metric", "l1",
            "--cutoff", "0.2", "--seed", "3", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    api = ConstrainedDesign(dickinson, ["inciis", "hispanic", "incomecat"], 6, categorical=["incomecat"],
                            cluster_id="county", metric="l1", cutoff=0.2, seed=3).draw()
    assert doc["allocation"] == {str(k): int(v) for k, v in zip(dickinson["county"], api.arm)}
    assert doc["bscores"]["cutoff score"] == api.summary.loc["cutoff score", "value"]


def test_constraints_and_n_schemes(capsys, dickinson):
    assert main(["design", "--example", "dickinson", "--n-schemes", "50", "--seed", "1"]) == 0
    assert "50 best schemes" in capsys.readouterr().out
    assert main(["design", "--example", "dickinson", "--covariates", "inciis", "hispanic",
                 "--categorical", "--constraints", "mf.1", "any", "--seed", "1"]) == 0
    assert "satisfy them all" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["design", "--example", "dickinson", "--covariates", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: covariates") and "Traceback" not in err
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["design", "--data", str(bad), "--covariates", "a", "--n-treat", "1"]) == 2
    assert main(["design", "--data", str(tmp_path / "missing.csv"), "--covariates", "a", "--n-treat", "1"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_entry_point_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "crt_widgets", "design", "--example", "dickinson", "--seed", "1"],
                         capture_output=True, text=True, check=True)
    assert "12,870 possible schemes" in out.stdout
