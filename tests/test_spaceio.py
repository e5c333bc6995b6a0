"""Saved spaces: cvcrand's CSV byte format, our JSON, and bad files."""
from __future__ import annotations

import numpy as np
import pytest

from crt_widgets.core.spaces.schemes import enumerate_schemes
from crt_widgets.core.io.spacefiles import read_cvcrand_csv, read_space, write_cvcrand_csv, write_space_json
from crt_widgets.datasets import dickinson_cvcrand_space_path


def test_cvcrand_file_round_trips_byte_for_byte(tmp_path):
    src = dickinson_cvcrand_space_path()
    space = read_space(src)
    out = write_cvcrand_csv(tmp_path / "copy.csv", space.schemes, space.chosen)
    assert out.read_text().splitlines() == src.read_text().splitlines()


def test_json_round_trip_plain_and_gzip(tmp_path):
    s = enumerate_schemes(10, 4)
    for name in ("s.json", "s.json.gz"):
        path = write_space_json(tmp_path / name, s, 7, [f"k{i}" for i in range(10)], np.arange(len(s)) / 3,
                                seed=5, parameters={"cutoff": 0.1})
        back = read_space(path)
        np.testing.assert_array_equal(back.schemes.packed, s.packed)
        assert back.chosen == 7 and back.metadata["seed"] == 5
        assert back.cluster_ids.tolist() == [f"k{i}" for i in range(10)]
        np.testing.assert_allclose(back.scores, np.arange(len(s)) / 3, rtol=1e-11)


@pytest.mark.parametrize("text,match", [
    ('"SchemeChosen","",""\n0,1,0\n0,0,1\n', "no scheme is marked"),
    ('"SchemeChosen","",""\n1,1,0\n1,0,1\n', "2 schemes are marked"),
    ('"SchemeChosen","",""\n1,1,2\n0,0,1\n', "0 or 1"),
    ('"SchemeChosen",""\n1,1\n', "at least 2 cluster columns"),
    ('', "not a readable CSV"),
])
def test_bad_cvcrand_files(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_space(p)


def test_bad_json_and_missing_files(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a crt-widgets space"):
        read_space(p)
    with pytest.raises(FileNotFoundError):
        read_space(tmp_path / "nope.csv")


def test_cvcrand_csv_reads_back_right_when_the_design_rows_are_not_sorted(tmp_path):
    """cvcrand's CSV has no cluster labels and is read in sorted id order (as cptest does): its columns are
    written in that order, so the test over the file equals the test over the allocation itself."""
    import warnings

    from crt_widgets import ConstrainedDesign, permutation_test
    from crt_widgets.datasets import load_dickinson, load_dickinson_outcome

    shuffled = load_dickinson().sample(frac=1, random_state=4).reset_index(drop=True)
    assert not shuffled["county"].is_monotonic_increasing
    allocation = ConstrainedDesign(shuffled, ["inciis", "hispanic"], 8, cluster_id="county", seed=1).draw()
    files = allocation.save(tmp_path)
    outcomes = load_dickinson_outcome()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = permutation_test(outcomes, "outcome", "county", allocation)
        from_csv = permutation_test(outcomes, "outcome", "county", files["space_cvcrand"])
    assert from_csv.p_value == direct.p_value and from_csv.statistic == pytest.approx(direct.statistic)
    chosen = read_cvcrand_csv(files["space_cvcrand"]).chosen_scheme
    by_county = dict(zip(allocation.design.cluster_ids, allocation.arm))
    assert chosen.tolist() == [by_county[c] for c in sorted(by_county)]
