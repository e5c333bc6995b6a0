"""Benchmark of saving and reading a randomization space of about a million schemes. Prints a table.

The two-arm case is issue 13's: 26 clusters, 13 treated, all 10,400,600 schemes enumerated, the cutoff
q = 0.1 keeping 1,040,060; ``Allocation.save`` writes the allocation CSV, cvcrand's CSV, the JSON space
(format 2, gzip) and the audit (written last, with each space file's SHA-256), each atomically (temporary
name, fsync, rename). The multi-arm case writes and reads a 1,000,000-allocation space of 30 clusters in
3 arms. Times are wall clock, best of ``--repeat`` runs, each save into a fresh folder.

    python bench/bench_spacefiles.py             # best of 3
    python bench/bench_spacefiles.py --repeat 1
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

# the figures the issue measured before this work, on the same 2-core machine (one run)
REFERENCE = {"save": 40.0, "size_mb": 66.0}


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def two_arm(repeat: int) -> list[dict]:
    from crt_widgets import ConstrainedDesign
    from crt_widgets.core.io.spacefiles import read_space

    rng = np.random.default_rng(1)
    data = pd.DataFrame({"id": np.arange(26), "x": rng.normal(size=26), "z": rng.normal(size=26)})
    design = ConstrainedDesign(data, ["x", "z"], 13, cluster_id="id", cutoff=0.1, enumerate=True, seed=1)
    allocation = design.draw()
    n = len(design.space_index)
    folders = []

    def save():
        folders.append(Path(tempfile.mkdtemp()))
        return allocation.save(folders[-1])

    seconds, files = best(save, repeat)
    rows = [{"files": f"all files of the {n:,}-scheme space (Allocation.save)", "write s": seconds,
             "read s": None, "MB": sum(p.stat().st_size for p in files.values()) / 1e6}]
    for kind, label in [("space_cvcrand", "cvcrand CSV"), ("space_json", "JSON space, format 2 (.json.gz)")]:
        path = files[kind]
        read_seconds, space = best(lambda path=path: read_space(path), repeat)  # verified against the audit
        assert len(space.schemes) == n and not space.notes
        rows.append({"files": f"  {label}", "write s": None, "read s": read_seconds, "MB": path.stat().st_size / 1e6})
    rows.append({"files": "  allocation CSV + audit JSON", "write s": None, "read s": None,
                 "MB": (files["allocation"].stat().st_size + files["audit"].stat().st_size) / 1e6})
    return rows


def multi_arm(repeat: int) -> list[dict]:
    from crt_widgets.core.io.spacefiles import read_multiarm_space, write_arm_space

    rng = np.random.default_rng(2)
    space = rng.integers(0, 3, (1_000_000, 30)).astype(np.int8)
    scores = rng.gamma(2.0, size=1_000_000)
    ids = [f"c{i}" for i in range(30)]
    paths = []

    def write():
        paths.append(Path(tempfile.mkdtemp()) / "multiarm_space.csv")
        return write_arm_space(paths[-1], ids, space, ["control", "a", "b"], 17, scores)

    seconds, path = best(write, repeat)
    read_seconds, back = best(lambda: read_multiarm_space(path), repeat)
    assert back.labels.shape == space.shape
    return [{"files": "multi-arm CSV, 1,000,000 allocations x 30 clusters", "write s": seconds,
             "read s": read_seconds, "MB": path.stat().st_size / 1e6}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = [{"files": "reference before this work: all files of the 1,040,060-scheme space",
             "write s": REFERENCE["save"], "read s": None, "MB": REFERENCE["size_mb"]}]
    rows += two_arm(args.repeat) + multi_arm(args.repeat)
    table = pd.DataFrame(rows).set_index("files")
    with pd.option_context("display.width", 140, "display.max_colwidth", 80):
        print(table.to_string(float_format=lambda v: f"{v:,.2f}", na_rep=""))
    print("\ntarget: 2 s for all the files of a 1M-scheme space")


if __name__ == "__main__":
    main()
