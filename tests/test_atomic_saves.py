"""Nothing drawn is lost: files are written under a temporary name and renamed, never over an existing file
(unless asked), several files all or nothing with the audit last; a failed or interrupted save (Ctrl-C)
leaves no file under a final name."""
from __future__ import annotations

import json

import pytest

import crt_widgets.core.io.spacefiles as spacefiles
from crt_widgets import ConstrainedDesign, MultiArmDesign
from crt_widgets.cli import main
from crt_widgets.core.io.files import FileSet, write_file
from crt_widgets.datasets import load_dickinson, simulate_edlead
from crt_widgets.widgets.downloads import allocation_files


def _allocation(seed: int = 1):
    return ConstrainedDesign(load_dickinson(), ["inciis", "hispanic"], 8, cluster_id="county", seed=seed).draw()


def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_an_existing_file_is_refused_unless_overwrite(tmp_path):
    path = write_file(tmp_path / "a.csv", "x\n1\n")
    with pytest.raises(FileExistsError, match="a.csv exists already: a file the trial produced is never overwritten"):
        write_file(path, "x\n2\n")
    assert path.read_text() == "x\n1\n"
    write_file(path, b"x\n3\n", overwrite=True)
    assert path.read_text() == "x\n3\n" and _names(tmp_path) == ["a.csv"]


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()])
def test_a_writer_that_fails_after_partial_output_leaves_no_file(tmp_path, interruption):
    def half_then_fail(fh):
        fh.write(b"0,1,0,1\n" * 1000)
        raise interruption

    with pytest.raises(type(interruption)):
        write_file(tmp_path / "space.csv", half_then_fail)
    assert _names(tmp_path) == []  # neither the final name nor the temporary one


def test_several_files_are_all_or_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with FileSet(tmp_path) as files:
            files.add("allocation.csv", "a\n")
            files.add("space.csv", "s\n")
            raise KeyboardInterrupt  # Ctrl-C before the audit
    assert _names(tmp_path) == []


def test_ctrl_c_during_a_design_save_leaves_no_file(tmp_path, monkeypatch):
    real = spacefiles.cvcrand_csv_chunks

    def interrupted(*args, **kwargs):
        chunks = real(*args, **kwargs)
        yield next(chunks)  # the header reaches the disk, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr("crt_widgets.core.randomization.constrained.cvcrand_csv_chunks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _allocation().save(tmp_path)
    assert _names(tmp_path) == []


def test_a_second_save_is_refused_and_the_first_files_stay(tmp_path):
    first = _allocation(seed=1).save(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match="design_allocation.csv exists already"):
        _allocation(seed=2).save(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # seed 1's files, untouched
    replaced = _allocation(seed=2).save(tmp_path, overwrite=True)
    assert json.loads(replaced["audit"].read_text())["draw_seed"] == 2
    assert sorted(first) == sorted(replaced) == ["allocation", "audit", "space_cvcrand", "space_json"]


def test_the_audit_is_written_last(tmp_path, monkeypatch):
    order = []
    real = FileSet.commit

    def recording(self):
        order.extend(final.name for _, final, _ in self._staged)
        return real(self)

    monkeypatch.setattr(FileSet, "commit", recording)
    _allocation().save(tmp_path)
    assert order[-1] == "design_audit.json" and len(order) == 4


def test_multiarm_saves_and_save_space_refuse_to_overwrite(tmp_path):
    allocation = MultiArmDesign(simulate_edlead(seed=1), ["volume"], 4, cluster_id="ed", size=2000, seed=1).draw()
    allocation.save(tmp_path)
    with pytest.raises(FileExistsError, match="multiarm_allocation.csv exists already"):
        allocation.save(tmp_path)
    with pytest.raises(FileExistsError, match="multiarm_space.csv exists already"):
        allocation.save_space(tmp_path / "multiarm_space.csv")
    two_arm = _allocation()
    two_arm.save_space(tmp_path / "design_space.json.gz")
    with pytest.raises(FileExistsError, match="design_space.json.gz exists already"):
        two_arm.save_space(tmp_path / "design_space.json.gz")


def test_dashboard_records_are_written_atomically(tmp_path):
    from crt_widgets.core.io.drawlog import DrawLog, draw_entry

    allocation = _allocation()
    files = {name: spec[0] for name, spec in allocation_files(allocation).items()}
    folder = DrawLog(tmp_path).record(draw_entry(allocation, number=1, seed_source="typed"), files)
    audit = json.loads((folder / "audit_seed1.json").read_text())
    assert list(audit["space_files"]) == ["constrained_space_seed1.csv", "constrained_space_seed1.json.gz"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.parametrize("command", [
    ["design", "--example", "dickinson"],
    ["stratify", "--example", "edlead", "--space-size", "20"],
    ["multiarm", "--example", "edlead", "--size", "3000", "--n-best", "50"],
    ["match", "--example", "callcenter"],
])
def test_cli_refuses_an_out_folder_that_holds_a_drawn_allocation(tmp_path, capsys, command):
    out = str(tmp_path / "r")
    assert main([*command, "--seed", "1", "--out", out]) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    capsys.readouterr()
    assert main([*command, "--seed", "2", "--out", out]) == 2
    captured = capsys.readouterr()
    assert "already holds a drawn allocation" in captured.err and "--force" in captured.err
    assert captured.out == ""  # refused before any work
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before
    assert main([*command, "--seed", "2", "--out", out, "--force"]) == 0
    audit = json.loads(next((tmp_path / "r").glob("*_audit.json")).read_text())
    assert 2 in (audit.get("seed"), audit.get("draw_seed"))


def test_saved_files_get_the_permissions_of_any_new_file(tmp_path):
    """Written through mkstemp, every saved file (allocation, spaces, audit) was readable by its owner alone
    (0600): a colleague or the trial master file's shared folder could not open it. The files take the mode an
    ordinary new file gets (0666 less the umask), as open() would give them."""
    import os

    old = os.umask(0o022)
    try:
        saved = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=1).draw().save(tmp_path)
        written = write_file(tmp_path / "single.csv", "a,b\n")
    finally:
        os.umask(old)
    for path in [*saved.values(), written]:
        assert path.stat().st_mode & 0o777 == 0o644, path.name
