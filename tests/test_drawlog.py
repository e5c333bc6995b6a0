"""The draw log and the space's fingerprint: every draw kept, appended whole, never overwritten; one SHA-256
of a space that its saved JSON file reproduces."""
from __future__ import annotations

import hashlib
import json
import multiprocessing

import numpy as np
import pandas as pd
import pytest
from support import PAPER_CATEGORICAL, PAPER_COVARIATES

from crt_widgets import ConstrainedDesign, MultiArmDesign
from crt_widgets.core.io.drawlog import DrawLog, arms_of, draw_entry, draw_seed
from crt_widgets.core.io.spacefiles import read_multiarm_space, read_space, read_space_json
from crt_widgets.core.io.spacehash import sha256_of_space
from crt_widgets.core.spaces.saved import SavedSpace
from crt_widgets.core.spaces.schemes import SchemeSet
from crt_widgets.core.spaces.space import RandomizationSpace


@pytest.fixture(scope="module")
def design():
    from crt_widgets.datasets import load_dickinson

    return ConstrainedDesign(load_dickinson(), PAPER_COVARIATES, 8, categorical=PAPER_CATEGORICAL, cluster_id="county",
                             seed=12345)


# -- seeds of a draw --------------------------------------------------------------------------------
def test_typed_seeds_are_read_and_checked():
    assert draw_seed("20240611") == (20240611, "typed")
    assert draw_seed(" 1_000 ") == (1000, "typed") and draw_seed("1,000") == (1000, "typed")
    assert draw_seed(7) == (7, "typed")
    for bad in ("-3", "4.5", "abc", "1e6", "\u00b2"):
        with pytest.raises(ValueError, match="draw seed: expected a whole number of at least 0"):
            draw_seed(bad)
    with pytest.raises(ValueError, match="draw seed: expected a whole number of at least 0"):
        draw_seed(-1)


def test_an_empty_seed_is_fresh_entropy_each_time():
    seeds = {draw_seed("")[0] for _ in range(20)} | {draw_seed(None)[0], draw_seed("   ")[0]}
    assert len(seeds) == 22 and all(s >= 0 for s in seeds)
    assert max(seeds).bit_length() > 100  # SeedSequence's 128 bits of operating-system entropy
    assert draw_seed("")[1] == "entropy"


# -- the log line ---------------------------------------------------------------------------------------
def test_entry_records_the_draw(design):
    allocation = design.draw(99)
    entry = draw_entry(allocation, number=3, seed_source="entropy", session="s1")
    assert entry["draw"] == 3 and entry["seed"] == 99 and entry["seed_source"] == "entropy"
    assert entry["session"] == "s1" and entry["time"] == allocation.created
    assert entry["space_sha256"] == sha256_of_space(design) and entry["n_schemes"] == 1288
    assert entry["chosen_position"] == allocation.space_position
    assert entry["allocation"] == {"0": [c for c in range(1, 17) if c not in allocation.treated_clusters],
                                   "1": allocation.treated_clusters}
    assert entry["settings"] == design.parameters() and entry["package_version"]
    json.dumps(entry)  # plain JSON values


def test_entry_arguments_are_checked(design):
    allocation = design.draw(1)
    with pytest.raises(ValueError, match="seed_source: expected one of"):
        draw_entry(allocation, number=1, seed_source="guessed")
    with pytest.raises(ValueError, match="number: draws are counted from 1"):
        draw_entry(allocation, number=0, seed_source="typed")


def test_multiarm_allocation_by_arm():
    from crt_widgets.datasets import load_dickinson

    a = MultiArmDesign(load_dickinson(), ["inciis"], 4, cluster_id="county", size=2000, seed=1).draw(5)
    arms = arms_of(a)
    assert sorted(arms) == sorted(map(str, a.arm_labels)) and sum(map(len, arms.values())) == 16
    for label, clusters in arms.items():
        assert clusters == [c for c, arm in zip(range(1, 17), a.arm_label) if str(arm) == label]


# -- the log file ---------------------------------------------------------------------------------------
def test_record_writes_a_new_folder_and_appends_a_line(tmp_path, design):
    log = DrawLog(tmp_path)
    first = log.record(draw_entry(design.draw(1), number=1, seed_source="typed"), {"a.csv": "x\n", "b.bin": b"\x00\x01"})
    second = log.record(draw_entry(design.draw(1), number=1, seed_source="typed"), {"a.csv": "y\n"})
    assert first != second and second.name == first.name + "_2"  # the same stem: a folder of its own
    assert (first / "a.csv").read_text() == "x\n" and (first / "b.bin").read_bytes() == b"\x00\x01"
    assert (second / "a.csv").read_text() == "y\n"
    entries = log.entries()
    assert [e["folder"] for e in entries] == [first.name, second.name]
    assert json.loads((first / "draw.json").read_text())["folder"] == first.name
    assert not list(tmp_path.rglob(".*.part"))  # no temporary file left behind


def test_the_log_is_appended_never_rewritten(tmp_path, design):
    log = DrawLog(tmp_path)
    (tmp_path / "draws.jsonl").write_text('{"draw": 0, "note": "a line from an earlier session"}\n')
    before = (tmp_path / "draws.jsonl").read_bytes()
    log.append(draw_entry(design.draw(2), number=1, seed_source="typed"))
    assert (tmp_path / "draws.jsonl").read_bytes().startswith(before)
    assert [e["draw"] for e in log.entries()] == [0, 1]
    assert "1 draws" not in repr(log) and "2 draws" in repr(log)


def _append_many(args) -> None:
    folder, worker = args
    log = DrawLog(folder)
    for i in range(200):
        log.append({"worker": worker, "i": i, "padding": "x" * (500 + 37 * worker)})


def test_concurrent_appends_keep_every_line_whole(tmp_path):
    """Four processes appending at once: O_APPEND puts each line whole at the end (none cut or interleaved)."""
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(tmp_path, w) for w in range(4)])
    entries = DrawLog(tmp_path).entries()  # json.loads of every line: a cut line would fail here
    assert len(entries) == 800
    for w in range(4):
        assert [e["i"] for e in entries if e["worker"] == w] == list(range(200))


def test_a_draw_folder_is_new_and_its_files_all_or_nothing(tmp_path, design):
    log = DrawLog(tmp_path)
    entry = draw_entry(design.draw(1), number=1, seed_source="typed")
    taken = log.new_folder("20240101000000_draw1_seed1")
    assert taken.name == "20240101000000_draw1_seed1" and log.new_folder(taken.name).name == taken.name + "_2"

    def fails(fh):
        fh.write(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        log.record(entry, {"allocation.csv": "county,arm\n", "space.csv": fails, "audit_seed1.json": "{}"})
    folder = tmp_path / log.entries()[-1]["folder"]
    assert list(folder.iterdir()) == []  # nothing under a final name, no temporary file left
    assert log.entries()[-1]["files_error"] == "disk full"


def test_a_files_error_is_logged_with_the_draw(tmp_path, design, monkeypatch):
    import crt_widgets.core.io.drawlog as drawlog

    class Refusing:
        def __init__(self, folder):
            raise OSError("disk full")

    monkeypatch.setattr(drawlog, "FileSet", Refusing)
    with pytest.raises(OSError, match="disk full"):
        DrawLog(tmp_path).record(draw_entry(design.draw(5), number=1, seed_source="typed"), {"a.csv": "x"})
    (entry,) = DrawLog(tmp_path).entries()
    assert entry["seed"] == 5 and entry["files_error"] == "disk full"


# -- the space's SHA-256 ------------------------------------------------------------------------------------
def test_the_saved_json_space_hashes_like_the_design(tmp_path, design):
    allocation = design.draw(3)
    path = allocation.save_space(tmp_path / "space.json.gz")
    saved = read_space_json(path)
    digest = sha256_of_space(design)
    assert sha256_of_space(saved) == digest == sha256_of_space(allocation) == allocation.audit()["space"]["sha256"]
    assert digest == design.space.sha256(design.parameters()) != design.space.sha256()  # the settings count
    # by hand: the documented content, in order
    h = hashlib.sha256(b"crt-widgets/randomization-space/1\0")
    h.update("\0".join(str(c) for c in range(1, 17)).encode() + b"\1" + b"0\x001" + b"\1")
    h.update(design.space.schemes.packed.tobytes())
    h.update(b"\2" + json.dumps(json.loads(json.dumps(design.parameters())), sort_keys=True,
                                 separators=(",", ":")).encode())
    assert h.hexdigest() == digest


def test_the_hash_changes_with_any_part(design):
    base = sha256_of_space(design)
    space, settings = design.space, design.parameters()
    assert sha256_of_space(design.rescore(cutoff=0.2)) != base                                  # other schemes
    assert space.sha256({**settings, "seed": 1}) != base                                      # settings
    reversed_ids = RandomizationSpace.from_schemes(space.schemes, space.unit_ids[::-1])
    assert reversed_ids.sha256(settings) != base                                              # ids
    order = np.arange(len(space))[::-1]
    assert RandomizationSpace.from_schemes(space.schemes.take(order), space.unit_ids).sha256(settings) != base
    assert space.sha256() != base                                                             # no settings


def test_unused_bits_do_not_count():
    schemes = SchemeSet.from_matrix(np.array([[1, 0, 1], [0, 1, 1]]))
    noisy = SchemeSet(schemes.packed | np.uint8(0b11111000), 3)
    assert (RandomizationSpace.from_schemes(noisy, ["a", "b", "c"]).sha256()
            == RandomizationSpace.from_schemes(schemes, ["a", "b", "c"]).sha256())
    assert (RandomizationSpace.from_schemes(schemes, [1, 2, 3]).sha256()
            == RandomizationSpace.from_schemes(schemes, ["1", "2", "3"]).sha256())  # ids as text


def test_a_cvcrand_csv_hashes_its_bits(tmp_path, design):
    path = design.draw(3).save_space(tmp_path / "space.csv")
    saved = read_space(path)
    assert sha256_of_space(saved) == RandomizationSpace.from_schemes(saved.schemes, np.arange(1, 17)).sha256()
    assert sha256_of_space(saved) != sha256_of_space(design)  # no ids to name, no settings


def test_multiarm_spaces_hash_with_their_labels(tmp_path):
    from crt_widgets.datasets import load_dickinson

    d = MultiArmDesign(load_dickinson(), ["inciis"], 3, cluster_id="county", size=2000, seed=1)
    assert sha256_of_space(d) == d.space.sha256(d.parameters())
    saved = read_multiarm_space(d.draw(2).save_space(tmp_path / "arms.csv"))
    assert sha256_of_space(saved) == RandomizationSpace.from_arms(
        saved.arm_indices(saved.arms), saved.unit_ids, arm_labels=saved.arms).sha256()


def test_a_comparison_hashes_its_left_out_clusters():
    treated = SchemeSet.from_matrix(np.array([[1, 0, 0], [0, 1, 0]]))
    control = SchemeSet.from_matrix(np.array([[0, 1, 0], [1, 0, 0]]))
    assert sha256_of_space(SavedSpace(treated, 0)) != sha256_of_space(SavedSpace(treated, 0, control=control))
    assert sha256_of_space(SavedSpace(treated, 0, control=control)) == RandomizationSpace.from_arms(
        [[1, 0, 2], [0, 1, 2]], [1, 2, 3], arm_labels=("0", "1", "left out")).sha256()


def test_an_unknown_object_is_a_message():
    with pytest.raises(ValueError, match="space: cannot fingerprint a DataFrame"):
        sha256_of_space(pd.DataFrame())
    with pytest.raises(TypeError, match="settings: object is not a JSON value"):
        RandomizationSpace.from_arms([[0, 1]]).sha256({"x": object()})
