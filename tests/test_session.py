"""Design sessions saved and re-opened (core/io/session.py, widgets/session_panel.py) and Undo (widgets/undo.py)."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest

from crt_widgets.core.io.session import (INTEGRITY_KEY, canonical_json, read_session, session_json, session_record,
                                         write_session)
from crt_widgets.widgets import DesignDashboard
from crt_widgets.widgets.session_panel import SESSION_FILE, session_settings
from crt_widgets.widgets.state import DESIGN_SETTINGS
from crt_widgets.widgets.undo import SettingsHistory


@pytest.fixture()
def dash():
    return DesignDashboard(example="dickinson", offline=False)


@pytest.fixture()
def distinct_steps(monkeypatch):
    """Each change its own undo step, however quickly the test makes them."""
    monkeypatch.setattr(SettingsHistory, "merge_seconds", 0.0)


def _every_dtype() -> pd.DataFrame:
    return pd.DataFrame({
        "site": ["a", "b", None, "d"],
        "size": [10, 12, 9, 14],
        "small": np.array([1, 2, 3, 4], dtype="int32"),
        "rate": [0.1 + 0.2, 1e-300, np.nan, -3.25],
        "rural": [True, False, True, True],
        "region": pd.Categorical(["n", "s", "n", "e"], categories=["s", "n", "e"]),
        "visits": pd.array([1, None, 3, 4], dtype="Int64"),
        "opened": pd.to_datetime(["2020-01-01", None, "2021-02-03 10:30:01.25", "2019-12-31"], format="ISO8601"),
        "mixed": pd.Series([1, "x", None, 2.5], dtype=object),
        "code": pd.Series(["p", None, "q", "r"], dtype="string"),
    })


def test_every_value_and_dtype_round_trips(tmp_path):
    data = _every_dtype()
    path = write_session(tmp_path / "s.json", data, {"cutoff": 0.05})
    back = read_session(path).data
    pd.testing.assert_frame_equal(back, data)
    assert back["rate"][0] == 0.1 + 0.2 and back["rate"][1] == 1e-300  # floats to the last bit
    assert list(back["region"].cat.categories) == ["s", "n", "e"] and back["mixed"][0] == 1


def test_a_taken_name_gives_a_new_name_and_the_first_file_stays(tmp_path):
    data = pd.DataFrame({"id": [1, 2], "x": [1.0, 2.0]})
    first = write_session(tmp_path / "s.json", data, {"cutoff": 0.1})
    before = first.read_bytes()
    names = [write_session(tmp_path / "s.json", data, {"cutoff": c}).name for c in (0.2, 0.3)]
    assert names == ["s_2.json", "s_3.json"] and first.read_bytes() == before
    assert [read_session(tmp_path / n).settings["cutoff"] for n in ("s.json", *names)] == [0.1, 0.2, 0.3]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_the_integrity_hash_covers_the_content_not_the_layout():
    record = session_record(pd.DataFrame({"id": [1, 2], "x": [1.0, 2.0]}), {"cutoff": 0.1})
    stated = record.pop(INTEGRITY_KEY)
    import hashlib

    assert stated == hashlib.sha256(canonical_json(record)).hexdigest()
    record[INTEGRITY_KEY] = stated
    assert read_session(json.dumps(record).encode()).settings == {"cutoff": 0.1}  # re-indented: still intact


@pytest.mark.parametrize("damage,message", [
    (lambda t: t.replace('"cutoff": 0.1', '"cutoff": 0.2'), "was changed since it was saved"),
    (lambda t: t.replace('"x": 2.0', '"x": 2.5'), "was changed since it was saved"),
    (lambda t: t[: len(t) // 2], "not a readable JSON file"),
    (lambda t: re.sub(r'"content_sha256": "[0-9a-f]+"', '"content_sha256": null', t), "carries no content_sha256"),
    (lambda t: t.replace("crt-widgets design session", "something else"), "not a crt-widgets design session"),
    (lambda t: t.replace('"format_version": 1', '"format_version": 9'), "format version 9"),
    (lambda t: "\x00\x01binary", "not a readable JSON file"),
])
def test_a_damaged_or_edited_file_is_refused(damage, message):
    text = session_json(pd.DataFrame({"id": [1, 2], "x": [1.0, 2.0]}), {"cutoff": 0.1})
    with pytest.raises(ValueError, match=message):
        read_session(damage(text).encode())


def test_bad_data_and_settings_are_refused_before_any_file(tmp_path):
    with pytest.raises(ValueError, match="data: every column name must be text"):
        write_session(tmp_path / "s.json", pd.DataFrame({0: [1], "x": [2]}), {})
    with pytest.raises(ValueError, match="data: column names must be unique"):
        write_session(tmp_path / "s.json", pd.DataFrame([[1, 2]], columns=["x", "x"]), {})
    with pytest.raises(ValueError, match="data: expected a pandas DataFrame"):
        write_session(tmp_path / "s.json", [[1, 2]], {})
    with pytest.raises(ValueError, match="settings: expected a dict"):
        write_session(tmp_path / "s.json", pd.DataFrame({"x": [1]}), [("cutoff", 0.1)])
    with pytest.raises(ValueError, match="settings: a value cannot be saved in JSON"):
        write_session(tmp_path / "s.json", pd.DataFrame({"x": [1]}), {"cutoff": {1, 2}})
    with pytest.raises(ValueError, match="data: a value cannot be saved in JSON"):
        write_session(tmp_path / "s.json", pd.DataFrame({"x": [1], "y": [{1, 2}]}), {})
    with pytest.raises(ValueError, match="session: no such file"):
        read_session(tmp_path / "missing.json")
    assert list(tmp_path.iterdir()) == []


def _session_download(dash) -> bytes:
    text = dash.session.prepare()
    links = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', dash.session.download.value))
    assert base64.b64decode(links[SESSION_FILE]).decode() == text
    return text.encode()


def test_reopening_restores_the_data_and_every_setting_exactly(dash):
    s = dash.state
    dash.weights.sliders["inciis"].value = 2.5
    dash.covariates.covariates.value = ("location", "inciis", "hispanic", "incomecat")
    s.stratify = ["location"]
    s.cutoff, s.metric, s.seed, s.size, s.sampling = 0.2, "l1", 99, 30_000, "enumerate"
    dash.draw.seed.value = "2024"
    q = s.power_inputs
    q.outcome, q.p_control, q.icc, q.icc_band = "binary", 0.25, 0.03, [0.01, 0.06]
    s.simulation.n_trials, s.simulation.covariate_r2 = 321, 0.25
    saved, kept, sha = session_settings(s), s.kept, s.space_sha256
    content = _session_download(dash)

    other = DesignDashboard(example="edlead", offline=False)
    assert other.session.open_bytes(content, "trial.json"), other.session.message.value
    t = other.state
    assert session_settings(t) == saved
    assert [t.settings()[k] for k in DESIGN_SETTINGS] == [saved[k] for k in DESIGN_SETTINGS]
    pd.testing.assert_frame_equal(t.data, s.data)
    assert t.source == s.source and t.kept == kept and t.space_sha256 == sha and t.error == ""
    # the panels show the restored settings too
    assert other.weights.sliders["inciis"].value == 2.5 and other.weights.stratify["location"].value
    assert other.arms.metric.value == "l1" and other.draw.seed.value == "2024" and other.power.icc.value == 0.03
    assert "every setting restored" in other.session.message.value


def test_a_restored_session_shows_no_allocation_until_a_new_draw(dash):
    content = _session_download(dash)
    drawn = dash.state.draw(5)
    assert dash.state.allocation is drawn and "crt-drawn" in dash.draw.result.value
    assert dash.session.open_bytes(content, "s.json")
    assert dash.state.allocation is None and dash.state.pending is None
    assert "crt-drawn" not in dash.draw.result.value and "Treatment:" not in dash.draw.result.value
    assert len(dash.state.draws) == 1  # the draw log stays the record of the session's draws
    again = dash.state.draw(5)
    assert again.treated_clusters == drawn.treated_clusters  # same space and seed: the same scheme


def test_an_edited_session_file_is_a_message_and_changes_nothing(dash):
    content = _session_download(dash).decode().replace('"cutoff": 0.1', '"cutoff": 0.9').encode()
    before = dash.state.settings()
    assert not dash.session.open_bytes(content, "edited.json")
    assert "session: edited.json was changed since it was saved" in dash.session.message.value
    assert 'class="crt-error"' in dash.session.message.value and dash.state.settings() == before


def test_a_session_naming_columns_the_data_lack_is_refused(dash):
    record = json.loads(_session_download(dash))
    record["settings"]["covariates"] = ["inciis", "nosuchcolumn"]
    record.pop(INTEGRITY_KEY)
    import hashlib

    record[INTEGRITY_KEY] = hashlib.sha256(canonical_json(record)).hexdigest()  # intact, but inconsistent
    assert not dash.session.open_bytes(json.dumps(record).encode(), "s.json")
    assert "the data do not have: nosuchcolumn" in dash.session.message.value
    record["settings"]["covariates"], record["settings"]["n_treat"] = ["inciis"], "eight"
    record.pop(INTEGRITY_KEY)
    record[INTEGRITY_KEY] = hashlib.sha256(canonical_json(record)).hexdigest()
    assert not dash.session.open_bytes(json.dumps(record).encode(), "s.json")
    assert "setting &#x27;n_treat&#x27; should be a whole number" in dash.session.message.value


def test_the_upload_widget_reopens_a_session(dash):
    content = _session_download(dash)
    other = DesignDashboard(example=None, offline=False)
    other.session.open.value = ({"name": "s.json", "type": "application/json", "size": len(content),
                                 "content": memoryview(content), "last_modified": dt.datetime(2026, 12, 2)},)
    assert other.state.kept == dash.state.kept == 1288 and other.session.open.value == ()


def test_saving_with_a_records_folder_keeps_every_session(tmp_path):
    dash = DesignDashboard(example="dickinson", offline=False, records_dir=str(tmp_path))
    dash.session.prepare()
    dash.state.cutoff = 0.05
    dash.session.prepare()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["design_session.json", "design_session_2.json"]
    assert read_session(tmp_path / "design_session_2.json").settings["cutoff"] == 0.05
    assert "design_session_2.json" in dash.session.download.value


def test_undo_goes_back_one_change_at_a_time(dash, distinct_steps):
    s = dash.state
    assert dash.session.undo.disabled and s.undo_steps == 0
    first = s.settings()
    s.cutoff = 0.05
    dash.weights.sliders["hispanic"].value = 3.0
    dash.arms.n_treat.value = 7
    dash.covariates.covariates.value = ("location", "inciis", "hispanic")
    assert s.undo_steps == 4 and not dash.session.undo.disabled
    kept = [s.kept]
    dash.session.undo.click()
    assert s.covariates == first["covariates"] and s.n_treat == 7 and s.weights["hispanic"] == 3.0
    assert s.categorical == ["location", "incomecat"]  # the follow-up changes come back with the covariates
    dash.session.undo.click()
    assert s.n_treat == 8 and s.weights["hispanic"] == 3.0 and s.cutoff == 0.05
    dash.session.undo.click()
    assert s.weights["hispanic"] == 1.0 and dash.weights.sliders["hispanic"].value == 1.0 and s.cutoff == 0.05
    dash.session.undo.click()
    assert s.settings() == first and s.kept == 1288 and dash.cutoff.quantile.value == pytest.approx(0.1)
    assert dash.session.undo.disabled and s.undo_steps == 0 and not s.undo()
    assert kept[0] != 1288


def test_undo_of_loading_new_data_brings_the_old_data_back(dash, distinct_steps):
    s = dash.state
    counties = s.data
    dash.data.example.value = "edlead"
    assert s.data is not counties and s.cluster_id != "county"
    s.undo()
    assert s.data is counties and s.cluster_id == "county" and s.kept == 1288 and s.source.startswith("Dickinson")


def test_a_slider_drag_undoes_as_one_step(dash):
    s = dash.state
    for value in (1.2, 1.4, 1.6, 1.8, 2.0):  # one drag: changes of one setting in quick succession
        dash.weights.sliders["inciis"].value = value
    assert s.undo_steps == 1
    s.undo()
    assert s.weights["inciis"] == 1.0


def test_undo_never_shows_a_drawn_scheme_again(dash, distinct_steps):
    s = dash.state
    s.cutoff = 0.05
    s.draw(9)
    s.undo()
    assert s.allocation is None and s.cutoff == 0.1 and "crt-drawn" not in dash.draw.result.value


def test_the_history_is_bounded():
    history = SettingsHistory(limit=3)
    for step in range(10):
        history.record({"cutoff": step}, now=float(step) * 10)
    assert len(history) == 3
    assert [history.undo()["cutoff"] for _ in range(3)] == [8, 7, 6] and history.undo() is None
    with pytest.raises(ValueError, match="limit: at least 1 step"):
        SettingsHistory(limit=0)


def _resealed(record: dict) -> bytes:
    """A session record with its integrity hash recomputed (intact, but changed by hand)."""
    import hashlib

    record = {k: v for k, v in record.items() if k != INTEGRITY_KEY}
    record[INTEGRITY_KEY] = hashlib.sha256(canonical_json(record)).hexdigest()
    return json.dumps(record).encode()


@pytest.mark.parametrize("edit,message", [
    (lambda r: r.pop("settings"), "lacks its settings or its data"),
    (lambda r: r["data"].pop("records"), "the data part is incomplete"),
    (lambda r: r["data"]["records"][0].pop("x"), "the data part is inconsistent"),
    (lambda r: r["data"]["records"][0].update(x="text"), "column 'x' cannot be read as float64"),
])
def test_a_resealed_but_broken_file_is_refused(edit, message):
    record = session_record(pd.DataFrame({"id": [1, 2], "x": [1.0, 2.0]}), {"cutoff": 0.1})
    edit(record)
    with pytest.raises(ValueError, match=message):
        read_session(_resealed(record))


def test_too_many_rows_are_refused(monkeypatch):
    from crt_widgets.core.io import session as session_module

    monkeypatch.setattr(session_module, "MAX_SESSION_ROWS", 3)
    with pytest.raises(ValueError, match="data: 4 rows; a design session holds cluster-level data"):
        session_json(pd.DataFrame({"id": [1, 2, 3, 4]}), {})


def test_panel_messages_for_every_refusal(dash, tmp_path, monkeypatch):
    from crt_widgets.widgets import session_panel

    record = json.loads(_session_download(dash))
    del record["settings"]["metric"]
    assert not dash.session.open_bytes(_resealed(record), "s.json")
    assert "the file lacks the setting(s) metric" in dash.session.message.value
    record = json.loads(_session_download(dash))
    record["settings"]["power"]["nonsense"] = 1
    assert not dash.session.open_bytes(_resealed(record), "s.json")
    assert "the power settings are not this version" in dash.session.message.value
    monkeypatch.setattr(session_panel, "UPLOAD_LIMIT_BYTES", 10)
    assert not dash.session.open_bytes(b"x" * 2_000_000, "big.json")
    assert "big.json is 2.0 MB, more than the 0 MB one upload can carry" in dash.session.message.value
    empty = DesignDashboard(example=None, offline=False)
    assert empty.session.prepare() == "" and "Save session: load the clusters first." in empty.session.message.value
    blocked = tmp_path / "file"
    blocked.write_text("a file where the records folder should be")
    dash.state.records_dir = str(blocked)
    assert dash.session.prepare()  # the download is offered all the same
    assert "Could not save a copy on disk" in dash.session.download.value
    assert "Download the session (JSON)" in dash.session.download.value


def test_a_multi_arm_session_round_trips(dash):
    dash.state.n_arms = 3
    dash.state.cutoff = 0.2
    kept, sha = dash.state.kept, dash.state.space_sha256
    content = _session_download(dash)
    other = DesignDashboard(example=None, offline=False)
    assert other.session.open_bytes(content, "three.json")
    assert other.state.n_arms == 3 and other.state.kept == kept and other.state.space_sha256 == sha
