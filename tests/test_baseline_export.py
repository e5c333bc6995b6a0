"""The baseline table exported as CSV and as a Word document (core/io/baseline.py), and as downloads of a draw."""
from __future__ import annotations

import base64
import html
import io
import re
import zipfile

import pandas as pd
import pytest

from crt_widgets.core.io.baseline import (baseline_csv, baseline_docx, docx_table, plain_baseline,
                                          save_baseline_table)
from crt_widgets.widgets import DesignDashboard


@pytest.fixture(scope="module")
def drawn():
    dash = DesignDashboard(example="dickinson", offline=False)
    allocation = dash.state.draw(2024)
    return dash, allocation


def _screen_cells(fragment: str) -> list[list[str]]:
    """The rows of the baseline table the Draw panel shows, as text (the SMD cells lose their colour span)."""
    table = re.search(r'<table[^>]*crt-baseline.*?</table>', fragment, re.S).group(0)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    cells = [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
              for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)] for row in rows]
    return [row for row in cells if any(row)]


def _downloads(dash) -> dict[str, bytes]:
    links = re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', dash.draw.downloads.value)
    return {name: base64.b64decode(b64) for name, b64 in links}


def test_the_csv_download_has_the_numbers_on_screen(drawn):
    dash, allocation = drawn
    files = _downloads(dash)
    csv = pd.read_csv(io.BytesIO(files["baseline_table_seed2024.csv"]), dtype=str, keep_default_na=False)
    assert csv.columns.tolist() == ["Characteristic", "Control", "Treatment", "Standardized mean difference"]
    screen = _screen_cells(dash.draw.result.value)
    body = [row for row in screen if row[0] not in ("", "arm = 0")]  # the header rows of pandas' HTML
    assert len(body) == len(csv) == len(allocation.baseline_table) == 9
    for (label, *cells), (_, row) in zip(body, csv.iterrows()):
        assert cells == [row["Control"], row["Treatment"], row["Standardized mean difference"]]
    assert csv["Characteristic"].tolist()[:3] == ["Clusters (n)", "location = Urban, n (%)", "inciis, mean (SD)"]
    # the numbers themselves: the arm sizes, and the SMD the core computed
    assert csv.loc[0, ["Control", "Treatment"]].tolist() == ["8", "8"]
    smd = allocation.baseline_table.attrs["smd"]["inciis (mean (sd))"]
    assert float(csv.loc[2, "Standardized mean difference"]) == pytest.approx(smd, abs=5e-4)


def test_the_word_download_is_a_table_with_the_same_cells(drawn):
    dash, allocation = drawn
    files = _downloads(dash)
    content = files["baseline_table_seed2024.docx"]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert sorted(archive.namelist()) == ["[Content_Types].xml", "_rels/.rels", "word/document.xml"]
        assert "wordprocessingml.document.main+xml" in archive.read("[Content_Types].xml").decode()
        assert 'Target="word/document.xml"' in archive.read("_rels/.rels").decode()
        assert "seed 2024" in archive.read("word/document.xml").decode()  # the note under the table
    rows = docx_table(content)
    csv = pd.read_csv(io.BytesIO(files["baseline_table_seed2024.csv"]), dtype=str, keep_default_na=False)
    assert rows[0] == csv.columns.tolist()
    assert rows[1:] == csv.to_numpy().tolist()
    assert 'class="crt-download" download="baseline_table_seed2024.docx"' in dash.draw.downloads.value
    assert "Baseline table (Word)" in dash.draw.downloads.value and "Baseline table (CSV)" in dash.draw.downloads.value


def test_the_same_table_gives_the_same_bytes(drawn):
    _, allocation = drawn
    assert baseline_docx(allocation.baseline_table) == baseline_docx(allocation.baseline_table.copy())


def test_multi_arm_headers_and_values():
    dash = DesignDashboard(example="dickinson", offline=False)
    dash.state.n_arms = 4
    allocation = dash.state.draw(11)
    plain = plain_baseline(allocation.baseline_table)
    arms = [c for c in plain.columns if c.startswith("Arm ")]
    assert len(arms) == 4 and plain.columns[-1] == "Largest standardized mean difference between two arms"
    assert plain.iloc[0, 1:5].tolist() == ["4", "4", "4", "4"]
    assert plain.iloc[:, 1:].to_numpy().tolist() == allocation.baseline_table.to_numpy().tolist()


def test_saved_files_are_atomic_and_never_overwritten(drawn, tmp_path):
    _, allocation = drawn
    paths = save_baseline_table(tmp_path, allocation.baseline_table, stem="table1")
    assert sorted(paths) == ["table1.csv", "table1.docx"]
    assert paths["table1.csv"].read_text() == baseline_csv(allocation.baseline_table)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match="never overwritten"):
        save_baseline_table(tmp_path, allocation.baseline_table.iloc[:2], stem="table1")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary file, nothing changed


def test_a_draw_logged_in_a_records_folder_keeps_both_files(tmp_path):
    dash = DesignDashboard(example="dickinson", offline=False, records_dir=str(tmp_path))
    dash.state.draw(3)
    saved = {p.name for p in tmp_path.rglob("baseline_table_*")}
    assert saved == {"baseline_table_seed3.csv", "baseline_table_seed3.docx"}


def test_what_is_not_a_baseline_table_is_refused():
    with pytest.raises(ValueError, match="table: expected a baseline table"):
        baseline_csv(pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="table: expected columns 'arm = ...' and 'SMD'"):
        baseline_docx(pd.DataFrame({"x": ["1"], "SMD": [""]}))
    with pytest.raises(ValueError, match="content: not a Word document"):
        docx_table(b"not a zip")


def test_a_document_without_a_table_is_refused():
    content = io.BytesIO()
    with zipfile.ZipFile(content, "w") as archive:
        archive.writestr("word/document.xml", '<w:document xmlns:w="http://schemas.openxmlformats.org/'
                                              'wordprocessingml/2006/main"><w:body/></w:document>')
    with pytest.raises(ValueError, match="content: the document has no table"):
        docx_table(content.getvalue())


def test_a_stepped_wedge_order_names_its_sequences():
    import crt_widgets as crt
    from crt_widgets.widgets.downloads import allocation_files

    clinics = crt.datasets.simulate_stepped_wedge_clusters(12, seed=8)
    design = crt.SteppedWedgeDesign(clinics, ["size", "baseline", "location"], crt.stepped_wedge(4, 3),
                                    cluster_id="cluster", categorical=["location"], balance="time", size=40_000,
                                    seed=2024)
    allocation = design.draw()
    files = allocation_files(allocation)
    csv = pd.read_csv(io.StringIO(files[f"baseline_table_seed{allocation.seed}.csv"][0]), dtype=str,
                      keep_default_na=False)
    assert csv.columns.tolist() == ["Characteristic", "Sequence 1", "Sequence 2", "Sequence 3", "Sequence 4",
                                    "Largest standardized mean difference between two sequences"]
    assert csv.iloc[:, 1:].to_numpy().tolist() == allocation.baseline_table.to_numpy().tolist()
    rows = docx_table(files[f"baseline_table_seed{allocation.seed}.docx"][0])
    assert rows[0] == csv.columns.tolist() and rows[1] == ["Clusters (n)", "3", "3", "3", "3", ""]
