"""Every error is a message: OS errors, sizes past the machine's memory, bad addresses, columns that are not
covariates, numbers read as text; and the design's audit ties the result to the input file's own bytes."""
from __future__ import annotations

import hashlib
import json
import os
import re
import time

import numpy as np
import pandas as pd
import pytest

import crt_widgets.core.sizes as sizes
from crt_widgets import ConstrainedDesign, stratified_arms
from crt_widgets.cli import main
from crt_widgets.core.diagnostics.validity import cluster_coincidence
from crt_widgets.core.io.tables import read_table
from crt_widgets.core.spaces.schemes import SchemeSet
from crt_widgets.datasets import load_dickinson


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


# -- files and folders -----------------------------------------------------------------------------------
def test_out_naming_a_file_or_an_unwritable_folder(tmp_path, capsys):
    a_file = tmp_path / "results"
    a_file.write_text("mine")
    code, out, err = _run(capsys, ["design", "--example", "dickinson", "--seed", "1", "--out", str(a_file)])
    assert code == 2 and f"--out: {a_file} is a file" in err and out == ""
    assert a_file.read_text() == "mine"
    code, _, err = _run(capsys, ["design", "--example", "dickinson", "--out", str(a_file / "sub")])
    assert code == 2 and "is a file, so" in err
    if os.access("/sys", os.W_OK) and not _sys_refuses_files():  # pragma: no cover - depends on the machine
        pytest.skip("/sys accepts new files here")
    code, out, err = _run(capsys, ["stratify", "--example", "edlead", "--out", "/sys/crt-widgets-results"])
    assert code == 2 and "--out: cannot write in /sys" in err and out == ""


def _sys_refuses_files() -> bool:
    import tempfile

    try:
        handle, name = tempfile.mkstemp(dir="/sys")
    except OSError:
        return True
    os.close(handle)  # pragma: no cover
    os.unlink(name)  # pragma: no cover
    return False  # pragma: no cover


def test_data_and_space_naming_a_folder(tmp_path, capsys):
    code, _, err = _run(capsys, ["design", "--data", str(tmp_path), "--covariates", "x", "--n-treat", "2"])
    assert code == 2 and f"--data: {tmp_path} is a folder, not a CSV file" in err
    load_dickinson().to_csv(tmp_path / "d.csv", index=False)
    code, _, err = _run(capsys, ["analyze", "--data", str(tmp_path / "d.csv"), "--space", str(tmp_path),
                                 "--outcome", "inciis", "--cluster", "county"])
    assert code == 2 and f"space file {tmp_path}: a folder, not a file" in err


def test_an_os_error_is_one_line(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "r"))

    monkeypatch.setattr("crt_widgets.core.io.files.tempfile.mkstemp", refuse)
    code, _, err = _run(capsys, ["design", "--example", "dickinson", "--seed", "1", "--out", str(tmp_path / "r")])
    assert code == 2 and err.strip() == f"error: --out: cannot write in {tmp_path} (Permission denied)"


def test_dashboard_records_on_a_file_and_an_invalid_address(tmp_path, capsys):
    a_file = tmp_path / "records"
    a_file.write_text("")
    code, _, err = _run(capsys, ["dashboard", "--records", str(a_file)])
    assert code == 2 and f"--records: {a_file} is a file" in err
    with pytest.raises(SystemExit):
        main(["dashboard", "--ip", "999.1.1.1"])
    err = capsys.readouterr().err
    assert "'999.1.1.1' is not a valid IP address" in err and "in use" not in err
    from crt_widgets.commands.dashboard import free_port

    with pytest.raises(ValueError, match="--ip: cannot listen on 192.0.2.1"):  # TEST-NET-1: never this machine
        free_port("192.0.2.1", 8866)


def test_dask_address_where_nothing_listens(monkeypatch, capsys):
    pytest.importorskip("distributed")
    monkeypatch.setattr("crt_widgets.core.parallel.DASK_CONNECT_TIMEOUT", 1)
    start = time.perf_counter()
    code, _, err = _run(capsys, ["power", "design", "--effect", "0.3", "--icc", "0.05", "--cluster-size", "10",
                                 "--n-clusters", "10", "--trials", "2", "--dask", "tcp://127.0.0.1:1"])
    assert code == 2 and "client: no Dask scheduler answered at tcp://127.0.0.1:1 within 1 s" in err
    assert time.perf_counter() - start < 20


# -- sizes -----------------------------------------------------------------------------------------------
def test_huge_counts_print_and_the_pair_table_is_bounded():
    big = pd.DataFrame({"id": np.arange(20_000), "x": np.random.default_rng(1).normal(size=20_000)})
    design = ConstrainedDesign(big, ["x"], 10_000, cluster_id="id", size=40, seed=1)
    assert design.scheme_message.startswith("There are about 2.2e6018 possible schemes, more than size = 40")
    assert not design.validity.available
    assert design.validity.unavailable.startswith("20,000 clusters make 199,990,000 pairs; the pair table is "
                                                  "computed up to 3,000 clusters")
    assert design.diagnostics[-1].startswith("validity not checked: 20,000 clusters")
    allocation = design.draw()  # every other result stands
    assert allocation.arm.sum() == 10_000 and len(allocation.summary) > 0
    with pytest.raises(ValueError, match="validity: 20,000 clusters make 199,990,000 pairs"):
        design.validity.table()


def test_the_pair_table_is_refused_past_its_work_bound():
    v = cluster_coincidence(SchemeSet(np.zeros((1_000_000, 125), dtype=np.uint8), 1000))
    assert v.unavailable.startswith("1,000,000 schemes x 499,500 pairs is more than the 2e+11 operations")
    assert v.messages() == [f"validity not checked: {v.unavailable}"]


def test_sizes_past_the_memory_are_refused_with_the_figures(monkeypatch, capsys):
    monkeypatch.setattr(sizes, "available_memory", lambda: 2 * 10**9)  # a machine with 2 GB free
    with pytest.raises(ValueError, match=r"n_draws: 1,000,000,000,000 allocations of 8 units need about "
                                         r"32.0 TB of memory; this machine has 2.0 GB available"):
        stratified_arms(["x"] * 4 + ["y"] * 4, 2, n_draws=10**12, seed=1)
    code, out, err = _run(capsys, ["multiarm", "--example", "edlead", "--size", "10000000000", "--seed", "1"])
    assert code == 2 and "error: size: 10,000,000,000 allocations of 80 units need about" in err and out == ""
    wide = pd.DataFrame({"x": np.arange(20_000.0)})
    with pytest.raises(ValueError, match=r"size: 1,000,000 sampled schemes of 20,000 clusters need about 2.5 GB"):
        ConstrainedDesign(wide, ["x"], 10_000, size=1_000_000)


# -- arguments -------------------------------------------------------------------------------------------
def test_categorical_that_is_not_a_covariate_is_refused(capsys):
    with pytest.raises(ValueError, match=r"categorical: location not among the covariates \(inciis\)"):
        ConstrainedDesign(load_dickinson(), ["inciis"], 8, categorical=["location"])
    code, _, err = _run(capsys, ["design", "--example", "dickinson", "--covariates", "inciis", "--categorical",
                                 "incomecat"])
    assert code == 2 and "categorical: incomecat not among the covariates" in err


def test_stratify_validates_before_any_output(capsys):
    code, out, err = _run(capsys, ["stratify", "--example", "edlead", "--seed", "1", "--verify", "-5"])
    assert code == 2 and out == "" and "--verify: the number of draws to check must be at least 1, got -5" in err


def test_a_fresh_seed_is_printed_and_reproduces_the_draw(capsys):
    code, out, _ = _run(capsys, ["design", "--example", "dickinson"])
    seed = int(re.search(r"a fresh seed was drawn: (\d+) \(repeat this run with --seed \1\)", out).group(1))
    scheme = re.search(r"Scheme ([\d,]+) of the", out).group(1)
    code, again, _ = _run(capsys, ["design", "--example", "dickinson", "--seed", str(seed)])
    assert code == 0 and f"Scheme {scheme} of the" in again and "fresh seed" not in again


# -- records ---------------------------------------------------------------------------------------------
def test_design_audit_hashes_the_input_file_and_records_the_command_line(tmp_path, capsys):
    path = tmp_path / "counties.csv"
    path.write_bytes(b"\xef\xbb\xbf" + load_dickinson().to_csv(index=False).encode())  # a spreadsheet's BOM
    argv = ["design", "--data", str(path), "--cluster-id", "county", "--covariates", "inciis", "hispanic",
            "--n-treat", "8", "--seed", "5", "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    audit = json.loads((tmp_path / "r" / "design_audit.json").read_text())
    assert audit["input"] == {"file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert audit["command_line"].startswith("crt-widgets design --data ") and "--seed 5" in audit["command_line"]
    assert audit["data_sha256"] != audit["input"]["sha256"]  # the data as parsed, beside the file's own bytes


# -- numbers read as text --------------------------------------------------------------------------------
def test_read_table_says_which_columns_are_text_and_why(tmp_path, capsys):
    text = "county,inciis,hispanic\n1,12.5,0.1\n2,13..1,0.2\n3,\"14,2\",0.3\n4,15.0,0.4\n"
    frame, notes = read_table(text.encode(), "sites.csv")
    assert not pd.api.types.is_numeric_dtype(frame["inciis"]) and frame["hispanic"].dtype == float
    assert notes == ["column 'inciis' was read as text: it mixes decimal points (row 1: '12.5') and decimal "
                     "commas (row 3: '14,2')"]
    _, notes = read_table(b"county,inciis\n1,12.5\n2,13..1\n3,14.0\n")
    assert notes == ["column 'inciis' was read as text: 1 of 3 values is not a number (row 2: '13..1')"]
    path = tmp_path / "sites.csv"
    path.write_text(text)
    code, _, err = _run(capsys, ["design", "--data", str(path), "--cluster-id", "county", "--covariates",
                                 "hispanic", "--n-treat", "2", "--seed", "1"])
    assert code == 0 and "note: --data sites.csv: column 'inciis' was read as text: it mixes decimal points" in err


def test_the_decimal_mark_of_a_tab_or_semicolon_file_is_read_from_its_cells():
    """A tab-separated export with decimal commas (as European spreadsheets write it) was read with decimal points:
    every such column stayed text, with a note blaming "a comma-separated file"; a semicolon file with decimal
    points was read with decimal commas. A tab or semicolon file's decimal mark is the one its numbers use; a file
    whose only separators could be thousands separators keeps the separator's convention."""
    tabs, notes = read_table(b"site\tsize\trate\nA\t1,5\t12\nB\t2,25\t13\nC\t-3,0\t14\n")
    assert notes == [] and tabs["size"].tolist() == [1.5, 2.25, -3.0]
    semis, notes = read_table(b"site;size;rate\nA;1.5;12\nB;2.25;13\nC;3.0;14\n")
    assert notes == [] and semis["size"].tolist() == [1.5, 2.25, 3.0]
    european, notes = read_table(b"site;size\nA;1,5\nB;2,25\n")
    assert notes == [] and european["size"].tolist() == [1.5, 2.25]
    ambiguous, _ = read_table(b"site;size\nA;1.500\nB;2.250\n")   # thousands in a semicolon file: unchanged
    assert not pd.api.types.is_numeric_dtype(ambiguous["size"]) or ambiguous["size"].tolist() == [1500, 2250]
    mixed, notes = read_table(b"site\tsize\nA\t1,5\nB\t2.5\n")
    assert notes == ["column 'size' was read as text: it mixes decimal points (row 2: '2.5') and decimal commas "
                     "(row 1: '1,5')"]


def test_dashboard_upload_says_which_columns_are_text(tmp_path):
    import datetime as dt

    from crt_widgets.widgets import DesignDashboard

    dash = DesignDashboard(example=None, offline=False)
    lines = load_dickinson().to_csv(index=False).splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index("inciis")] = "9O.1"  # a letter O for a zero
    lines[2] = ",".join(cells)
    raw = ("\n".join(lines) + "\n").encode()
    data_panel = dash.data
    data_panel.upload.value = ({"name": "counties.csv", "type": "text/csv", "size": len(raw),
                                "content": memoryview(raw), "last_modified": dt.datetime(2026, 12, 1)},)
    assert "column &#x27;inciis&#x27; was read as text: 1 of 16 values is not a number (row 2: &#x27;9O.1&#x27;)" \
        in data_panel.message.value
