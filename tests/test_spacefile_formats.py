"""The space files built with numpy are byte for byte what the plain writers give, and read back exactly."""
from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pandas as pd
import pytest

from crt_widgets.core.io.spacefiles import (arm_space_chunks, read_multiarm_space, read_space, space_json_bytes,
                                            write_arm_space, write_cvcrand_csv, write_space_json)
from crt_widgets.core.spaces.schemes import SchemeSet


def _random_schemes(n_schemes: int, n_clusters: int, seed: int = 1) -> SchemeSet:
    return SchemeSet.from_matrix(np.random.default_rng(seed).integers(0, 2, (n_schemes, n_clusters)))


def _reference_cvcrand(schemes: SchemeSet, chosen: int, order: np.ndarray) -> str:
    """cvcrand's CSV written the plain way (one formatted line per scheme)."""
    m = schemes.matrix()[:, order]
    lines = ['"SchemeChosen",' + ",".join(['""'] * schemes.n_clusters)]
    lines += [",".join(map(str, [int(i == chosen), *row])) for i, row in enumerate(m.tolist())]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("n_clusters", [2, 8, 9, 27])
def test_cvcrand_csv_is_byte_for_byte_the_plain_format(tmp_path, n_clusters):
    schemes = _random_schemes(500, n_clusters)
    ids = np.random.default_rng(2).permutation(n_clusters) * 3
    path = write_cvcrand_csv(tmp_path / "s.csv", schemes, 123, ids)
    assert path.read_text() == _reference_cvcrand(schemes, 123, np.argsort(ids, kind="stable"))
    back = read_space(path)
    np.testing.assert_array_equal(back.schemes.matrix(), schemes.matrix()[:, np.argsort(ids, kind="stable")])
    assert back.chosen == 123
    assert write_cvcrand_csv(io.StringIO(), schemes, 123, ids).getvalue() == path.read_text()


def test_cvcrand_csv_from_windows_and_with_spaces_reads_the_same(tmp_path):
    schemes = _random_schemes(50, 6)
    text = write_cvcrand_csv(io.StringIO(), schemes, 7).getvalue()
    for variant in (text.replace("\n", "\r\n"), "\ufeff" + text, text.replace(",", ", ")):
        path = tmp_path / "variant.csv"
        path.write_bytes(variant.encode("utf-8"))
        back = read_space(path)
        np.testing.assert_array_equal(back.schemes.packed, schemes.packed)
        assert back.chosen == 7


def test_json_space_version_2_round_trips_exactly_and_is_reproducible(tmp_path):
    schemes = _random_schemes(3000, 21)
    scores = np.random.default_rng(3).gamma(2.0, size=3000)
    first = space_json_bytes(schemes, 5, [f"c{i}" for i in range(21)], scores, seed=9)
    assert first == space_json_bytes(schemes, 5, [f"c{i}" for i in range(21)], scores, seed=9)  # no time stamp
    path = write_space_json(tmp_path / "s.json.gz", schemes, 5, [f"c{i}" for i in range(21)], scores, seed=9)
    back = read_space(path)
    np.testing.assert_array_equal(back.schemes.packed, schemes.packed)
    assert back.scores.tobytes() == scores.tobytes()  # every bit of every score
    assert back.metadata["seed"] == 9 and back.metadata["format_version"] == 2
    with gzip.open(path, "rt") as fh:  # any gzip reader, streaming, reads the members as one document
        assert json.load(fh)["n_schemes"] == 3000
    plain = write_space_json(tmp_path / "s.json", schemes, 5, range(21), scores)
    assert json.loads(plain.read_text())["schemes_encoding"] == "packed-bits-little/base64"


def _reference_arm_space(unit_ids, space, labels, chosen, scores) -> str:
    table = pd.DataFrame(np.asarray(labels, dtype=object)[space], columns=[str(u) for u in unit_ids])
    table.insert(0, "score", scores if scores is not None else np.nan)
    table.insert(0, "chosen", (np.arange(len(space)) == chosen).astype(int))
    table.insert(0, "scheme", np.arange(1, len(space) + 1))
    return table.to_csv(index=False, float_format="%.9e")


@pytest.mark.parametrize("labels", [["none", "a", "b", "a+b"], ["0", "1", "2"], ["arm, one", 'say "two"', "x"]])
def test_multiarm_csv_is_what_pandas_writes_and_reads_back(tmp_path, labels):
    rng = np.random.default_rng(4)
    space = rng.integers(0, len(labels), (1200, 13))
    scores = rng.gamma(1.5, size=1200) * 10.0 ** rng.integers(-3, 4, 1200)
    ids = [f"u{i}" for i in range(13)]
    written = b"".join(arm_space_chunks(ids, space, labels, 17, scores, rows=500)).decode()
    assert written == _reference_arm_space(ids, space, labels, 17, scores)
    path = write_arm_space(tmp_path / "m.csv", ids, space, labels, 17, scores)
    back = read_multiarm_space(path)
    assert back.chosen == 17 and back.unit_ids == ids
    np.testing.assert_array_equal(back.labels, np.asarray(labels, dtype=object)[space])
    np.testing.assert_allclose(back.scores, scores, rtol=5e-10)
    no_scores = b"".join(arm_space_chunks(ids, space[:3], labels, 0)).decode()
    assert no_scores == _reference_arm_space(ids, space[:3], labels, 0, None).replace(",nan,", ",,")


@pytest.mark.parametrize("labels", [["ctrl", "a", "late"], ["treatment A", "treatment B", "control arm"]])
def test_multiarm_reader_blocks_and_long_labels(tmp_path, labels):
    """A label first met past the first block of rows keeps every earlier code; labels longer than a word go
    through pandas; both read back the labels written."""
    space = np.zeros((70_000, 5), dtype=np.int8)
    space[1::2, 1] = 1
    space[65_000, 3] = 2  # the third label appears only in the third block of 32,768 rows
    path = write_arm_space(tmp_path / "m.csv", list("vwxyz"), space, labels, 3)
    back = read_multiarm_space(path)
    np.testing.assert_array_equal(back.labels, np.asarray(labels, dtype=object)[space])
    assert back.arms == sorted(labels) and back.chosen == 3 and np.isnan(back.scores).all()
    np.testing.assert_array_equal(back.arm_indices(labels), space)
