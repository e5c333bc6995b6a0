"""Damaged files are refused: a space file is checked against the audit saved with it (SHA-256 and scheme
count), a JSON space against its own count and checksum, and a truncated, edited or binary file is a message
in the API, the command line, cptest and the analysis dashboard, never a traceback or a silently wrong p-value."""
from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import shutil

import numpy as np
import pytest

from crt_widgets import ConstrainedDesign, MultiArmDesign, permutation_test
from crt_widgets.cli import main
from crt_widgets.compat.cvcrand import cptest
from crt_widgets.core.io.spacefiles import read_multiarm_space, read_space, write_space_json
from crt_widgets.core.spaces.schemes import enumerate_schemes
from crt_widgets.datasets import (dickinson_cvcrand_space_path, load_dickinson, load_dickinson_outcome,
                                  simulate_edlead)
from support import PAPER_CATEGORICAL, PAPER_COVARIATES


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The Dickinson design (paper settings, seed 12345) saved with its audit: 1,288 schemes."""
    folder = tmp_path_factory.mktemp("saved")
    design = ConstrainedDesign(load_dickinson(), PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL,
                               cluster_id="county", seed=12345)
    return design.draw().save(folder)


def _copy(saved, tmp_path) -> dict:
    """A fresh copy of the saved folder (each test edits its own)."""
    folder = tmp_path / "copy"
    shutil.copytree(saved["audit"].parent, folder)
    return {k: folder / p.name for k, p in saved.items()}


def _test(space, **kwargs):
    return permutation_test(load_dickinson_outcome(), "outcome", "county", space, PAPER_COVARIATES,
                            PAPER_CATEGORICAL, "binomial", **kwargs)


def test_the_audit_records_each_space_file(saved):
    audit = json.loads(saved["audit"].read_text())
    for kind in ("space_cvcrand", "space_json"):
        entry = audit["space_files"][saved[kind].name]
        assert entry["sha256"] == hashlib.sha256(saved[kind].read_bytes()).hexdigest()
        assert entry["n_schemes"] == 1288 and entry["bytes"] == saved[kind].stat().st_size


def test_intact_files_are_verified_and_give_the_same_test(saved):
    by_csv, by_json = _test(saved["space_cvcrand"]), _test(saved["space_json"])
    assert by_csv.n_schemes == by_json.n_schemes == 1288
    assert by_csv.p_value == by_json.p_value and by_csv.notes == by_json.notes == []


def test_a_csv_cut_at_a_line_boundary_is_refused(saved, tmp_path):
    files = _copy(saved, tmp_path)
    lines = files["space_cvcrand"].read_bytes().splitlines(keepends=True)
    files["space_cvcrand"].write_bytes(b"".join(lines[:-100]))  # 1,188 schemes left, a valid-looking CSV
    message = "space file design_space_cvcrand.csv: its SHA-256 is not the one design_audit.json recorded"
    with pytest.raises(ValueError, match=message):
        read_space(files["space_cvcrand"])
    with pytest.raises(ValueError, match="1,188 schemes read, 1,288 saved"):
        _test(files["space_cvcrand"])


def test_a_json_space_with_rows_removed_is_refused_even_alone(saved, tmp_path):
    doc = json.loads(gzip.decompress(saved["space_json"].read_bytes()))
    packed = base64.b64decode(doc["schemes"])
    doc["schemes"] = base64.b64encode(packed[: -2 * 10]).decode()  # 10 schemes of 2 bytes gone
    alone = tmp_path / "edited.json"
    alone.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="edited.json: it says 1,288 schemes but holds 1,278"):
        read_space(alone)
    doc["schemes"] = base64.b64encode(packed[::-1]).decode()  # same count, other schemes
    alone.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="edited.json: the schemes do not match their stored checksum"):
        read_space(alone)


def test_a_version_1_json_space_is_read_and_its_count_checked(tmp_path):
    schemes = enumerate_schemes(6, 3)
    doc = {"format": "crt-widgets/space", "format_version": 1, "n_clusters": 6, "n_schemes": 20,
           "cluster_ids": list("abcdef"), "chosen": 4, "scores": list(np.arange(20) / 7),
           "schemes": ["".join(map(str, row)) for row in schemes.matrix().tolist()]}
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(doc))
    back = read_space(path)
    np.testing.assert_array_equal(back.schemes.packed, schemes.packed)
    assert back.chosen == 4 and back.scores[3] == 3 / 7
    doc["schemes"] = doc["schemes"][:-5]  # rows removed, the stated count left as it was
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="v1.json: it says 20 schemes but holds 15"):
        read_space(path)


def test_a_truncated_json_gz_is_a_message_everywhere(saved, tmp_path, capsys):
    cut = tmp_path / "cut_space.json.gz"
    cut.write_bytes(saved["space_json"].read_bytes()[:2000])
    with pytest.raises(ValueError, match="cut_space.json.gz: the compressed file is cut short or damaged"):
        read_space(cut)
    data = load_dickinson_outcome()
    with pytest.raises(ValueError, match="cut short or damaged"):
        cptest(outcome=data["outcome"], clustername=data["county"], cspacedatname=str(cut), outcometype="binary")
    assert main(["analyze", "--data", str(_outcomes_csv(tmp_path)), "--space", str(cut), "--outcome", "outcome",
                 "--cluster", "county"]) == 2
    err = capsys.readouterr().err
    assert "cut short or damaged" in err and "Traceback" not in err


def _outcomes_csv(tmp_path):
    path = tmp_path / "outcomes.csv"
    if not path.exists():
        load_dickinson_outcome().to_csv(path, index=False)
    return path


def test_a_csv_cut_mid_line_and_a_binary_file_are_messages(tmp_path, capsys):
    raw = dickinson_cvcrand_space_path().read_bytes()
    cut = tmp_path / "cut.csv"
    cut.write_bytes(raw[: len(raw) // 2 + 7])
    with pytest.raises(ValueError, match=r"cut.csv: the last line is cut short \(\d+ of 17 entries\)"):
        read_space(cut)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="binary.csv: not a text CSV"):
        read_space(binary)
    data = load_dickinson_outcome()
    with pytest.raises(ValueError, match="not a text CSV"):
        cptest(outcome=data["outcome"], clustername=data["county"], cspacedatname=str(binary))
    for bad in (cut, binary):
        assert main(["analyze", "--data", str(_outcomes_csv(tmp_path)), "--space", str(bad), "--outcome",
                     "outcome", "--cluster", "county"]) == 2
        assert f"space file {bad.name}" in capsys.readouterr().err


def test_a_csv_without_its_audit_is_read_with_a_notice(capsys):
    result = _test(dickinson_cvcrand_space_path())
    assert result.p_value == 54 / 1287  # cvcrand's file, as R's cptest reads it
    assert result.notes == ["dickinson_constrained_cvcrand.csv could not be verified: no audit record beside it "
                            "lists its SHA-256 (a CSV space has no checksum of its own)"]
    assert main(["analyze", "--example", "dickinson"]) == 0
    assert "note: dickinson_constrained_cvcrand.csv could not be verified" in capsys.readouterr().out


def test_an_audit_given_explicitly(saved, tmp_path, capsys):
    files = _copy(saved, tmp_path)
    elsewhere = tmp_path / "moved_space.csv"
    shutil.copy(files["space_cvcrand"], elsewhere)  # renamed, away from its audit
    assert _test(elsewhere).notes[0].startswith("moved_space.csv could not be verified")
    assert _test(elsewhere, audit=files["audit"]).notes == []  # found in the audit by its SHA-256
    other = tmp_path / "other_audit.json"
    other.write_text(json.dumps({"space_files": {}}))
    with pytest.raises(ValueError, match="audit: other_audit.json does not list the space file moved_space.csv"):
        _test(elsewhere, audit=other)
    elsewhere.write_bytes(elsewhere.read_bytes().replace(b"\n1,", b"\n0,", 1).replace(b"\n0,", b"\n1,", 1))
    assert main(["analyze", "--data", str(_outcomes_csv(tmp_path)), "--space", str(elsewhere), "--audit",
                 str(files["audit"]), "--outcome", "outcome", "--cluster", "county"]) == 2
    assert "audit: design_audit.json does not list the space file moved_space.csv" in capsys.readouterr().err


def test_an_edited_multiarm_space_is_refused(tmp_path, capsys):
    allocation = MultiArmDesign(simulate_edlead(seed=1), ["volume"], factors=["a", "b"], strata="health_system",
                                cluster_id="ed", size=3000, n_best=100, seed=3).draw()
    files = allocation.save(tmp_path)
    assert json.loads(files["audit"].read_text())["space_files"]["multiarm_space.csv"]["n_schemes"] == 100
    assert read_multiarm_space(files["space"]).notes == ()
    lines = files["space"].read_text().splitlines(keepends=True)
    files["space"].write_text("".join(lines[:-1]))  # the last allocation removed
    with pytest.raises(ValueError, match="multiarm_space.csv: its SHA-256 is not the one multiarm_audit.json"):
        read_multiarm_space(files["space"])


def test_a_multiarm_space_cut_before_its_chosen_row_names_the_cut_not_the_chosen_count(tmp_path):
    """Cut above the chosen allocation's row, the multi-arm reader said "expected exactly one chosen allocation,
    found 0" before checking the audit; the audit (as for the cvcrand CSV) says what happened to the file."""
    allocation = MultiArmDesign(simulate_edlead(seed=1), ["volume"], factors=["a", "b"], strata="health_system",
                                cluster_id="ed", size=3000, n_best=100, seed=3).draw()
    files = allocation.save(tmp_path)
    lines = files["space"].read_text().splitlines(keepends=True)
    chosen = next(i for i, line in enumerate(lines) if line.split(",")[1] == "1")
    files["space"].write_text("".join(lines[:chosen]))
    with pytest.raises(ValueError, match="multiarm_space.csv: its SHA-256 is not the one multiarm_audit.json"):
        read_multiarm_space(files["space"])
    files["audit"].unlink()  # without the audit: the chosen count, naming the file as every space message does
    with pytest.raises(ValueError, match="^space file multiarm_space.csv: expected exactly one chosen allocation"):
        read_multiarm_space(files["space"])


def test_dashboard_upload_of_damaged_files_clears_the_results(saved, tmp_path):
    from crt_widgets.widgets.analysis import AnalysisDashboard

    dash = AnalysisDashboard(example="dickinson", offline=False)
    assert dash.state.result is not None
    for name, content in [("space.json.gz", saved["space_json"].read_bytes()[:3000]),
                          ("space.csv", bytes(range(256)) * 4)]:
        dash.upload_space.value = _file(name, content)
        assert name in dash.message.value and dash.state.result is None and dash.statement.value == ""
        dash.example.value = ""
        dash.example.value = "dickinson"  # back to a result before the next damaged file
        assert dash.state.result is not None


def test_dashboard_verifies_a_space_uploaded_with_its_audit(saved, tmp_path):
    from crt_widgets.widgets.analysis import AnalysisDashboard

    dash = AnalysisDashboard(example="dickinson", offline=False)
    space, audit = saved["space_cvcrand"], saved["audit"]
    dash.upload_space.value = _file(space.name, space.read_bytes()) + _file(audit.name, audit.read_bytes())
    assert dash.state.result.permutation.n_schemes == 1288 and "could not be verified" not in dash.statement.value
    edited = b"".join(space.read_bytes().splitlines(keepends=True)[:-1])
    dash.upload_space.value = _file(space.name, edited) + _file(audit.name, audit.read_bytes())
    assert "its SHA-256 is not the one" in dash.message.value and dash.state.result is None
    dash.upload_space.value = _file(space.name, space.read_bytes())  # alone: read, with the notice
    assert "could not be verified" in dash.statement.value


def _file(name: str, content: bytes) -> tuple[dict]:
    return ({"name": name, "type": "text/csv", "size": len(content), "content": memoryview(content),
             "last_modified": dt.datetime(2026, 12, 1)},)


def test_json_space_written_by_the_api_checks_itself(tmp_path):
    s = enumerate_schemes(10, 5)
    path = write_space_json(tmp_path / "s.json.gz", s, 3, range(10))
    assert read_space(path).notes == ()
    assert json.loads(gzip.decompress(path.read_bytes()))["schemes_sha256"] == hashlib.sha256(
        s.packed.tobytes()).hexdigest()
